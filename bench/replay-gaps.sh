#!/usr/bin/env bash
# Benchmark 5 of issue 5: timing fidelity at 10,000 users. The trace's
# sessions name each recorded gap in their paths (bench/mktrace -sessions);
# the target measures, per connection, |arrival gap − recorded gap| and
# reports its distribution for the steady part of the run (after every user
# has started). thrive replays with recorded pacing, target on core 0,
# generator on core 1. Loopback only.
#
#   bash bench/replay-gaps.sh                 # 10,000 users, gaps 1–3 s, 40 s
#   USERS=2000 DURATION=20 bash bench/replay-gaps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-10000}
DURATION=${DURATION:-40}
SPAWN=${SPAWN:-2000}
PORT=18103
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
go build -o "$work/target" ./bench/target
go run ./bench/mktrace -out "$work/gaps.thrv" -sessions 500 -requests 40 -gap 1s -gap-max 3s
taskset -c 0 "$work/target" -listen 127.0.0.1:$PORT &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/count" >/dev/null && break; sleep 0.1; done

taskset -c 1 "$work/thrive" replay "$work/gaps.thrv" --target "http://127.0.0.1:$PORT" --users "$USERS" \
	--spawn-rate "$SPAWN" --run-time "${DURATION}s" --pacing recorded --quiet --out "$work/result.json" >"$work/replay.out" 2>&1 &
gen=$!
# Measure from when every user has started (plus a second) to 2 s before the end.
ramp=$(( USERS / SPAWN + 1 ))
sleep "$ramp"; curl -fs "http://127.0.0.1:$PORT/gaps" >/dev/null
sleep $(( DURATION - ramp - 2 )); gaps=$(curl -fs "http://127.0.0.1:$PORT/gaps")
wait "$gen" || { cat "$work/replay.out"; exit 1; }
[ -n "${SHOW:-}" ] && cat "$work/replay.out"

python3 - "$gaps" "$work/result.json" "$USERS" "$DURATION" <<'PY'
import json, sys
g = json.loads(sys.argv[1])
r = json.load(open(sys.argv[2]))
users, dur = sys.argv[3:5]
print(f"{users} users, recorded gaps 1–3 s, recorded pacing, {dur} s; target on core 0, thrive on core 1")
print(f"gaps measured at the target: {g['count']}")
print(f"|replayed gap − recorded gap| µs: p50 {g['p50_us']}, p90 {g['p90_us']}, p99 {g['p99_us']}, max {g['max_us']}")
print(f"thrive: {r['requests']} requests, {r['failures']} failures; schedule lag ms p50 {r['lag_ms']['p50']:.2f}, p99 {r['lag_ms']['p99']:.2f}")
print(f"gap error p99 = {g['p99_us']/1000:.2f} ms (goal <= 2 ms)")
PY
