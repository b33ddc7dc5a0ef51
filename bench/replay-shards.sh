#!/usr/bin/env bash
# Benchmark 4 of issue 5: 100,000 concurrent users with 1–5 s think times on
# this 2-core machine. A process may hold at most 20,000 open files here, so
# the users run as local shards (--shard i/n, one shared --start-at) against
# demo backend processes sharing one port (SO_REUSEPORT), and connections
# leave from eight loopback addresses (--source-ips) so that ephemeral ports
# do not run out. Reports the shards' summed requests, their worst lag p99,
# their summed peak RSS per user, and the CPU time of shards and backends.
# Loopback only.
#
#   bash bench/replay-shards.sh                      # 100,000 users, 7 shards, 60 s
#   USERS=20000 SHARDS=2 DURATION=30 bash bench/replay-shards.sh
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-100000}
SHARDS=${SHARDS:-7}
BACKENDS=${BACKENDS:-8}
DURATION=${DURATION:-60}
SPAWN=${SPAWN:-5000}
PORT=18106
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
go run ./bench/mktrace -out "$work/think.thrv" -sessions 500 -requests 100 -gap 1s -gap-max 5s -same-path -path /api/projects/7/
"$work/thrive" demo serve --listen 127.0.0.1:$PORT --processes "$BACKENDS" --rate-limit 0 >"$work/demo.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/api/projects/7/" >/dev/null && break; sleep 0.1; done

start=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%S.%NZ)
shard_pids=()
for i in $(seq 0 $((SHARDS - 1))); do
	/usr/bin/time -f '%U %S %M' -o "$work/shard-$i.time" \
		"$work/thrive" replay "$work/think.thrv" --target "http://127.0.0.1:$PORT" --users "$USERS" --shard "$i/$SHARDS" \
		--start-at "$start" --spawn-rate "$SPAWN" --run-time "${DURATION}s" --pacing think --stop-timeout 5s \
		--source-ips 127.0.0.2-127.0.0.9 --quiet --out "$work/shard-$i.json" >"$work/shard-$i.log" 2>&1 &
	shard_pids+=($!)
done
for p in "${shard_pids[@]}"; do wait "$p" || true; done
# What is left running is the demo backend: its processes' CPU seconds and RSS.
read -r backend_cpu backend_rss < <(ps -C thrive -o times=,rss= | awk '{c += $1; r += $2} END {print c + 0, r + 0}')
[ -n "${SHOW:-}" ] && cat "$work/shard-0.log" "$work/demo.log"
python3 - "$work" "$SHARDS" "$USERS" "$DURATION" "$backend_cpu" "$backend_rss" "$BACKENDS" <<'PY'
import json, sys
work, shards, users, dur = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
backend_cpu, backend_kb, backends = float(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
res = [json.load(open(f"{work}/shard-{i}.json")) for i in range(shards)]
times = [list(map(float, open(f"{work}/shard-{i}.time").read().split()[-3:])) for i in range(shards)]
req = sum(r["requests"] for r in res)
fail = sum(r["failures"] for r in res)
gen_cpu = sum(u + s for u, s, _ in times)
rss_kb = sum(m for _, _, m in times)
print(f"{users} users in {shards} shards, think 1–5 s, against {backends} demo backend processes; {dur:.0f} s")
for i, r in enumerate(res):
    print(f"  shard {i}: {r['requests']} requests, {r['failures']} failures, lag p99 {r['lag_ms']['p99']:.2f} ms, max {r['lag_ms']['max']:.1f} ms")
worst = max(r["lag_ms"]["p99"] for r in res)
print(f"summed: {req} requests ({req / dur:.0f} req/s), {fail} failures; worst shard lag p99 {worst:.2f} ms (goal <= 10 ms)")
print(f"peak RSS of the shards {rss_kb / 1024:.0f} MB = {rss_kb / users:.1f} KiB per user (goal <= 16 KiB); backends {backend_kb / 1024:.0f} MB")
print(f"CPU: shards {gen_cpu:.0f} s ({1e6 * gen_cpu / max(req, 1):.0f} µs per request), backends {backend_cpu:.0f} s "
      f"({1e6 * backend_cpu / max(req, 1):.0f} µs per request); the machine has {2 * dur:.0f} core-seconds in the run")
PY
