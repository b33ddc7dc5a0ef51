#!/usr/bin/env bash
# Benchmarks the capture proxy side by side with an nginx reverse proxy, on
# the same static target, in one run: added latency at a fixed rate (vegeta)
# and the highest request rate (wrk), recording on. Loopback only.
#
#   bash bench/capture.sh            # defaults: 10 s per measurement, 3 rounds, 2,000 req/s fixed rate
#   DURATION=20s RATE=5000 bash bench/capture.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-2000}
CONNS=${CONNS:-64}
TARGET_PORT=18081 NGINX_PORT=18082 THRIVE_PORT=18083

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
	apt-get update -qq && apt-get install -y -qq nginx-light wrk >/dev/null
fi
export PATH="$PATH:$(go env GOPATH)/bin"
need vegeta || go install github.com/tsenart/vegeta/v12@v12.13.0

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	nginx -p "$work" -c nginx.conf -s stop 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/thrive" ./cmd/thrive

# A static JSON answer of about 1 KB, as an API detail view, served by
# nginx from memory.
body=$(python3 -c 'import json; print(json.dumps({"id": 7, "title": "Video summary agent", "description": "word " * 150, "tags": ["agent", "video"], "stars": 1234}))')

cat >"$work/nginx.conf" <<CONF
worker_processes 2;
error_log $work/error.log warn;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  upstream target { server 127.0.0.1:$TARGET_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$TARGET_PORT;
    location / { default_type application/json; return 200 '$body'; }
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://target;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF
mkdir -p "$work/logs"
nginx -p "$work" -c nginx.conf

"$work/thrive" capture --quiet --listen 127.0.0.1:$THRIVE_PORT --target http://127.0.0.1:$TARGET_PORT \
	--out "$work/bench.thrv" --session-idle 2s >"$work/capture.log" 2>&1 &
pids+=($!)
for port in $TARGET_PORT $NGINX_PORT $THRIVE_PORT; do
	for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/api/projects/7/" >/dev/null && break; sleep 0.1; done
done

# 1,000 users: each request carries one of 1,000 session cookies, so the
# capture records 1,000 sessions rather than one endless one.
cat >"$work/users.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/projects/7/", { Cookie = "sessionid=user" .. (n % 1000) })
end
LUA
targets() {
	for i in $(seq 0 999); do
		printf 'GET http://127.0.0.1:%s/api/projects/7/\nCookie: sessionid=user%s\n\n' "$1" "$i"
	done
}

port_of() { case $1 in direct) echo $TARGET_PORT ;; nginx) echo $NGINX_PORT ;; thrive) echo $THRIVE_PORT ;; esac; }
names=(direct nginx thrive)
for name in "${names[@]}"; do
	targets "$(port_of $name)" >"$work/targets-$name.txt"
	# Warm up connections and caches.
	vegeta attack -targets "$work/targets-$name.txt" -rate 500 -duration 2s >/dev/null
done
# Latency varies by tens of microseconds from one minute to the next here,
# so the three are measured in turn, ROUNDS times, and the medians compared.
: >"$work/latency.txt"
for round in $(seq "$ROUNDS"); do
	for name in "${names[@]}"; do
		vegeta attack -targets "$work/targets-$name.txt" -rate "$RATE" -duration "$DURATION" -keepalive=true >"$work/$name.bin"
		vegeta report -type json <"$work/$name.bin" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["success"] == 1.0, r.get("errors")
print(sys.argv[1], sys.argv[2], r["latencies"]["50th"] / 1000, r["latencies"]["99th"] / 1000)' "$name" "$round" >>"$work/latency.txt"
	done
done
declare -A rps
for name in "${names[@]}"; do
	rps[$name]=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$work/users.lua" "http://127.0.0.1:$(port_of $name)/api/projects/7/" | awk '/Requests\/sec/ {print $2}')
done

kill -TERM "${pids[0]}"; wait "${pids[0]}" || true
summary=$(grep -E '^(captured|sessions|exchanges)' "$work/capture.log" | tr -s ' ')

python3 - "$work/latency.txt" "${rps[direct]}" "${rps[nginx]}" "${rps[thrive]}" "$RATE" "$DURATION" "$CONNS" "$ROUNDS" <<'PY'
import statistics, sys
path, drps, nrps, trps = sys.argv[1], *map(float, sys.argv[2:5])
rate, dur, conns, rounds = sys.argv[5:]
lat = {}
for line in open(path):
    name, rnd, p50, p99 = line.split()
    lat.setdefault(name, []).append((float(p50), float(p99)))
med = {n: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for n, v in lat.items()}
print(f"capture proxy vs nginx reverse proxy, static 1 KB JSON target, loopback, {dur} per measurement")
print(f"latency at a fixed {rate} req/s (vegeta, keep-alive), µs, median of {rounds} interleaved rounds;")
print(f"max rate (wrk, 2 threads, {conns} connections)")
print(f"{'':8} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10} {'req/s':>10}   p50 by round")
d50, d99 = med["direct"]
for name, r in (("direct", drps), ("nginx", nrps), ("thrive", trps)):
    a, b = med[name]
    rounds_ = " ".join(f"{x:.0f}" for x, _ in lat[name])
    print(f"{name:8} {a:8.0f} {b:8.0f} {a-d50:10.0f} {b-d99:10.0f} {r:10.0f}   {rounds_}")
add_t, add_n = max(med["thrive"][0] - d50, 1), max(med["nginx"][0] - d50, 1)
print(f"added p50 thrive/nginx = {add_t/add_n:.2f} (goal <= 1.5); max rate thrive/nginx = {trps/nrps:.2f}; thrive {trps:.0f} req/s (goal >= 20000)")
PY
echo "capture: $summary"
