#!/usr/bin/env bash
# Benchmarks the capture proxy side by side with an nginx reverse proxy, on
# the same static target, in one run: added latency at a fixed rate (vegeta)
# and the highest request rate (wrk), recording on. Loopback only.
#
#   bash bench/capture.sh            # defaults: 10 s per measurement, 2,000 req/s fixed rate
#   DURATION=20s RATE=5000 bash bench/capture.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
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

declare -A p50 p99 rps
for name in direct nginx thrive; do
	case $name in direct) port=$TARGET_PORT ;; nginx) port=$NGINX_PORT ;; thrive) port=$THRIVE_PORT ;; esac
	targets $port >"$work/targets-$name.txt"
	# Warm up connections and caches.
	vegeta attack -targets "$work/targets-$name.txt" -rate 500 -duration 2s >/dev/null
	vegeta attack -targets "$work/targets-$name.txt" -rate "$RATE" -duration "$DURATION" -keepalive=true >"$work/$name.bin"
	read -r p50[$name] p99[$name] < <(vegeta report -type json <"$work/$name.bin" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["success"] == 1.0, r.get("errors")
print(r["latencies"]["50th"] / 1000, r["latencies"]["99th"] / 1000)')
	rps[$name]=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$work/users.lua" "http://127.0.0.1:$port/api/projects/7/" | awk '/Requests\/sec/ {print $2}')
done

kill -INT "${pids[0]}"; wait "${pids[0]}" || true
summary=$(grep -E '^(captured|sessions|exchanges)' "$work/capture.log" | tr -s ' ')

python3 - "${p50[direct]}" "${p99[direct]}" "${rps[direct]}" "${p50[nginx]}" "${p99[nginx]}" "${rps[nginx]}" \
	"${p50[thrive]}" "${p99[thrive]}" "${rps[thrive]}" "$RATE" "$DURATION" "$CONNS" <<'PY'
import sys
d50, d99, drps, n50, n99, nrps, t50, t99, trps = map(float, sys.argv[1:10])
rate, dur, conns = sys.argv[10:]
print(f"capture proxy vs nginx reverse proxy, static 1 KB JSON target, loopback, {dur} per measurement")
print(f"latency at a fixed {rate} req/s (vegeta, keep-alive), µs; max rate (wrk, 2 threads, {conns} connections)")
print(f"{'':8} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10} {'req/s':>10}")
for name, a, b, r in (("direct", d50, d99, drps), ("nginx", n50, n99, nrps), ("thrive", t50, t99, trps)):
    print(f"{name:8} {a:8.0f} {b:8.0f} {a-d50:10.0f} {b-d99:10.0f} {r:10.0f}")
add_t, add_n = max(t50 - d50, 1), max(n50 - d50, 1)
print(f"added p50 thrive/nginx = {add_t/add_n:.2f} (goal <= 1.5); max rate thrive/nginx = {trps/nrps:.2f}; thrive {trps:.0f} req/s (goal >= 20000)")
PY
echo "capture: $summary"
