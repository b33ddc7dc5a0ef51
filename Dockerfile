# thrive in a small image: a static binary on busybox, whose /bin/sh the
# Kubernetes manifests (deploy/kubernetes) use to pass their environment.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /thrive ./cmd/thrive

FROM busybox:1.37
COPY --from=build /thrive /usr/local/bin/thrive
RUN mkdir -p /data/results
ENTRYPOINT ["thrive"]
