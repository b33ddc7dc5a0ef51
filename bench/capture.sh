#!/usr/bin/env bash
# Benchmarks the capture proxy side by side with an nginx reverse proxy and a
# bare Go relay (bench/copyrelay, the floor for a proxy on Go's network
# poller) and the same relay on an event loop (bench/looprelay, gnet), on the
# same static target, in one run: added latency at a fixed rate (vegeta) and the
# highest request rate (wrk), recording on. Loopback only.
#
#   bash bench/capture.sh            # defaults: 10 s per measurement, 3 rounds, 1,000 req/s on each path
#   DURATION=20s RATE=500 bash bench/capture.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-1000}
CONNS=${CONNS:-64}
TARGET_PORT=18081 NGINX_PORT=18082 THRIVE_PORT=18083 RELAY_PORT=18084 LOOP_PORT=18085 TLOOP_PORT=18086

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
go build -o "$work/copyrelay" ./bench/copyrelay
(cd bench/looprelay && go build -o "$work/looprelay" .)

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
"$work/thrive" capture --quiet --event-loop --listen 127.0.0.1:$TLOOP_PORT --target http://127.0.0.1:$TARGET_PORT \
	--out "$work/bench-loop.thrv" --session-idle 2s >"$work/capture-loop.log" 2>&1 &
pids+=($!)
"$work/copyrelay" -listen 127.0.0.1:$RELAY_PORT -target 127.0.0.1:$TARGET_PORT &
pids+=($!)
"$work/looprelay" -listen 127.0.0.1:$LOOP_PORT -target 127.0.0.1:$TARGET_PORT &
pids+=($!)
for port in $TARGET_PORT $NGINX_PORT $THRIVE_PORT $TLOOP_PORT $RELAY_PORT $LOOP_PORT; do
	for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/api/projects/7/" >/dev/null && break; sleep 0.1; done
	curl -fs "http://127.0.0.1:$port/api/projects/7/" >/dev/null || { echo "nothing answers on port $port" >&2; exit 1; }
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

port_of() { case $1 in direct) echo $TARGET_PORT ;; nginx) echo $NGINX_PORT ;; gorelay) echo $RELAY_PORT ;; looprelay) echo $LOOP_PORT ;; thrive) echo $THRIVE_PORT ;; thriveloop) echo $TLOOP_PORT ;; esac; }
names=(direct nginx gorelay looprelay thrive thriveloop)
for name in "${names[@]}"; do
	targets "$(port_of $name)" >"$work/targets-$name.txt"
	# Warm up connections and caches.
	vegeta attack -targets "$work/targets-$name.txt" -rate 500 -duration 2s >/dev/null
done
# Latency drifts by tens of microseconds from one minute to the next here,
# more than the proxies differ. So the three paths are measured in the same
# run: vegeta takes the targets in turn, each path at RATE,
# and the results are split by port. ROUNDS runs, medians compared.
for i in $(seq 0 999); do
	for name in "${names[@]}"; do
		printf 'GET http://127.0.0.1:%s/api/projects/7/\nCookie: sessionid=user%s\n\n' "$(port_of "$name")" "$i"
	done
done >"$work/targets-mixed.txt"
: >"$work/latency.txt"
for round in $(seq "$ROUNDS"); do
	vegeta attack -targets "$work/targets-mixed.txt" -rate $((${#names[@]} * RATE)) -duration "$DURATION" -keepalive=true |
		vegeta encode --to csv | python3 -c '
import csv, sys
ports = dict(zip(sys.argv[3:9], ("direct", "nginx", "gorelay", "looprelay", "thrive", "thriveloop")))
lat = {n: [] for n in ports.values()}
for row in csv.reader(sys.stdin):
    assert row[1] == "200", row
    lat[ports[row[10].split(":")[2].split("/")[0]]].append(int(row[2]) / 1000)
for name, v in lat.items():
    v.sort()
    print(name, sys.argv[1], v[len(v) // 2], v[len(v) * 99 // 100])' "$round" x $TARGET_PORT $NGINX_PORT $RELAY_PORT $LOOP_PORT $THRIVE_PORT $TLOOP_PORT >>"$work/latency.txt"
done
rps=()
for name in "${names[@]}"; do
	rps+=($(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$work/users.lua" "http://127.0.0.1:$(port_of $name)/api/projects/7/" | awk '/Requests\/sec/ {print $2}'))
done

kill -TERM "${pids[0]}" "${pids[1]}"; wait "${pids[0]}" "${pids[1]}" || true
summary=$(grep -E '^(captured|sessions|exchanges)' "$work/capture.log" | tr -s ' ')
summary_loop=$(grep -E '^(captured|sessions|exchanges)' "$work/capture-loop.log" | tr -s ' ')

python3 - "$work/latency.txt" "$RATE" "$DURATION" "$CONNS" "$ROUNDS" "${names[@]}" "${rps[@]}" <<'PY'
import statistics, sys
path, rate, dur, conns, rounds = sys.argv[1:6]
n = (len(sys.argv) - 6) // 2
names, rps = sys.argv[6:6 + n], dict(zip(sys.argv[6:6 + n], map(float, sys.argv[6 + n:])))
lat = {}
for line in open(path):
    name, rnd, p50, p99 = line.split()
    lat.setdefault(name, []).append((float(p50), float(p99)))
med = {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for k, v in lat.items()}
print(f"capture proxy vs nginx reverse proxy and bare Go relays (goroutines; event loop), static 1 KB JSON target, loopback, {dur} per measurement")
print(f"latency at a fixed {rate} req/s each, all interleaved request by request in one vegeta run (keep-alive), µs, median of {rounds} rounds;")
print(f"max rate (wrk, 2 threads, {conns} connections)")
print(f"{'':9} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10} {'req/s':>10}   p50 by round")
d50, d99 = med["direct"]
for name in names:
    a, b = med[name]
    rounds_ = " ".join(f"{x:.0f}" for x, _ in lat[name])
    print(f"{name:9} {a:8.0f} {b:8.0f} {a-d50:10.0f} {b-d99:10.0f} {rps[name]:10.0f}   {rounds_}")
added = {k: max(med[k][0] - d50, 1) for k in names}
print("added p50 against nginx's: " + ", ".join(f"{k} {added[k]/added['nginx']:.2f}" for k in names if k not in ("direct", "nginx"))
      + " (goal <= 1.5 for thrive)")
print(f"max rate: thrive {rps['thrive']:.0f} req/s, thrive --event-loop {rps['thriveloop']:.0f} (goal >= 20000); nginx {rps['nginx']:.0f}")
PY
echo "capture: $summary"
echo "capture --event-loop: $summary_loop"
