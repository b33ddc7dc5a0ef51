#!/usr/bin/env bash
# Benchmark 6 of issue 5: replay at the asked speed. 20,000 requests in 20
# sessions, recorded over about 1 s (and, for comparison, over 10 s), are
# replayed with --scale-time 0.1 and recorded pacing, with --run-time 2%
# over the asked time (users spawn a little after the run's start): a replay
# that keeps up sends every request of the first sessions, none later than
# 1% of the asked time (its schedule lag). Target on core 0, thrive on
# core 1. Then GoReplay captures 20,000 requests sent in about 1 s from the
# loopback interface and replays its capture at |1000%, timed until the
# target has answered them all. Loopback only.
#
#   bash bench/replay-speed.sh                  # installs libpcap-dev and GoReplay if missing
#   GOREPLAY=0 bash bench/replay-speed.sh       # thrive only
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=18105
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
go build -o "$work/target" ./bench/target
taskset -c 0 "$work/target" -listen 127.0.0.1:$PORT &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/count" >/dev/null && break; sleep 0.1; done

echo "20,000 requests in 20 sessions replayed with recorded pacing; target on core 0, thrive on core 1"
printf '%-10s %6s %9s %9s %9s %11s %11s %8s\n' recorded scale asked sent "req/s" "lag p99 ms" "lag max ms" verdict
# case GAP SCALE: sessions of 1,000 requests GAP apart, replayed at SCALE.
run_case() {
	local gap=$1 scale=$2
	go run ./bench/mktrace -out "$work/speed.thrv" -sessions 20 -requests 1000 -gap "$gap" -gap-max "$gap"
	local asked
	asked=$(python3 -c "import sys; g=float(sys.argv[1].rstrip('ms'))/1000; print(f'{1000*g*float(sys.argv[2])*1000:.0f}ms')" "$gap" "$scale")
	local runtime
	runtime=$(python3 -c "import sys; print(f'{float(sys.argv[1].rstrip(\"ms\")) * 1.02:.0f}ms')" "$asked")
	taskset -c 1 "$work/thrive" replay "$work/speed.thrv" --target "http://127.0.0.1:$PORT" --users 20 \
		--run-time "$runtime" --scale-time "$scale" --pacing recorded --quiet --stop-timeout 5s --out "$work/speed.json" >/dev/null
	python3 - "$work/speed.json" "$gap" "$scale" "$asked" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
gap, scale, asked = sys.argv[2:5]
secs = float(asked.rstrip("ms")) / 1000
rec = f"{1000 * float(gap.rstrip('ms')) / 1000:.0f} s"
lag = r["lag_ms"]
# Every request of the sessions but their first is GET /gap/{id}; users that
# finish early may begin a second session, whose first request is extra.
sent = sum(e["requests"] for e in r["endpoints"] if e["name"] == "GET /gap/{id}") + 20
# Kept up: every request sent, and the latest no later than 1% of the asked time.
ok = sent >= 20000 and lag["max"] <= 10 * secs
print(f"{rec:10} {scale:>6} {asked:>9} {sent:9} {sent / secs:9.0f} {lag['p99']:11.2f} {lag['max']:11.2f} {'met' if ok else 'NOT met':>8}")
PY
}
run_case 1ms 1
run_case 10ms 0.1
run_case 1ms 0.1

[ "${GOREPLAY:-1}" = 0 ] && exit 0
dpkg -s libpcap-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libpcap-dev >/dev/null; }
need goreplay || go install github.com/buger/goreplay@v1.3.2
# GoReplay records 20,000 requests sent in about 1 s by hey (20 workers at
# 1,000 req/s each).
need hey || { apt-get update -qq && apt-get install -y -qq hey >/dev/null; }
goreplay --input-raw "127.0.0.1:$PORT" --output-file "$work/cap.gor" --output-file-append >"$work/gor-capture.log" 2>&1 &
gor=$!
sleep 2 # the capture has no ready signal; it opens the interface within this
taskset -c 1 hey -n 20000 -c 20 -q 1000 "http://127.0.0.1:$PORT/api/projects/7/" >/dev/null
sleep 1
kill -INT "$gor"; wait "$gor" || true
captured=$(cat "$work"/cap*.gor | grep -c "^1 " || true)
c0=$(curl -fs "http://127.0.0.1:$PORT/count")
t0=$(date +%s.%N)
taskset -c 1 goreplay --input-file "$(ls "$work"/cap*.gor | head -1)|1000%" --output-http "http://127.0.0.1:$PORT" --exit-after 120s >"$work/gor-replay.log" 2>&1 &
gor=$!
while c=$(curl -fs "http://127.0.0.1:$PORT/count") && [ $((c - c0)) -lt "$captured" ] && kill -0 "$gor" 2>/dev/null; do sleep 0.05; done
t1=$(date +%s.%N)
kill "$gor" 2>/dev/null || true
python3 -c "
import sys
n, sent, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
print(f'GoReplay v1.3.2, its capture of 1 s of traffic ({n} requests) at |1000% (asked 0.1 s): {sent} answered in {secs:.2f} s, {sent / secs:.0f} req/s')
" "$captured" "$((c - c0))" "$(echo "$t1 - $t0" | bc)"
