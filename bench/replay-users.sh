#!/usr/bin/env bash
# Benchmark 3 of issue 5: 10,000 concurrent users in one process, each
# waiting on a 1 s answer, so 10,000 req/s are offered. Reports the share of
# that rate the target saw after the first second, and the generator's peak
# RSS per user, for thrive next to wrk, hey and vegeta (Locust cannot hold
# 10,000 users on one core and is left out). Target on core 0, generator on
# core 1. Loopback only.
#
#   bash bench/replay-users.sh            # 20 s per tool
#   TOOLS=thrive bash bench/replay-users.sh
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-10000}
DURATION=${DURATION:-20}
PORT=18102
URL="http://127.0.0.1:$PORT/api/projects/7/"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need hey; then
	apt-get update -qq && apt-get install -y -qq wrk hey >/dev/null
fi
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
go build -o "$work/target" ./bench/target
go run ./bench/mktrace -out "$work/flat.thrv" -requests 100 -gap 0
taskset -c 0 "$work/target" -listen 127.0.0.1:$PORT -delay 1s &
pids+=($!)
for _ in $(seq 50); do curl -fs "$URL" >/dev/null && break; sleep 0.1; done

# run NAME CMD...: runs a generator on core 1 for DURATION seconds, samples
# its peak RSS, and reads from the target how many requests it answered in
# seconds 2..DURATION (after every user has sent its first request).
run() {
	local name=$1; shift
	taskset -c 1 "$@" >"$work/$name.out" 2>&1 &
	local pid=$! peak=0 c1 c2
	sleep 1.5; c1=$(curl -fs "http://127.0.0.1:$PORT/count")
	local t1=$(date +%s.%N)
	while kill -0 "$pid" 2>/dev/null; do
		local hwm; hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		[ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
		if [ -z "${c2:-}" ] && [ "$(echo "$(date +%s.%N) - $t1 > $DURATION - 3" | bc)" = 1 ]; then
			c2=$(curl -fs "http://127.0.0.1:$PORT/count"); t2=$(date +%s.%N)
		fi
		sleep 0.2
	done
	wait "$pid" || true
	python3 -c "
import sys
c1, c2, t1, t2, peak, users = map(float, sys.argv[1:7])
rate = (c2 - c1) / (t2 - t1)
print(f'{sys.argv[7]:8} {rate:10.0f} {100*rate/users:9.1f}% {peak/1024:9.0f} {peak/users:10.1f}')
" "$c1" "$c2" "$t1" "$t2" "$peak" "$USERS" "$name"
}

echo "$USERS users, each waiting on a 1 s answer ($USERS req/s offered), $DURATION s; target on core 0, generator on core 1"
printf '%-8s %10s %10s %9s %10s\n' tool "req/s" "kept" "peak MB" "KiB/user"
TOOLS=${TOOLS:-thrive wrk hey vegeta}
want() { [[ " $TOOLS " == *" $1 "* ]]; }
want thrive && run thrive "$work/thrive" replay "$work/flat.thrv" --target "http://127.0.0.1:$PORT" --users "$USERS" --run-time "${DURATION}s" --pacing think --quiet --stop-timeout 2s
want wrk && run wrk wrk -t1 -c"$USERS" -d"${DURATION}s" --timeout 10s "$URL"
want hey && run hey hey -z "${DURATION}s" -c "$USERS" -t 10 "$URL"
echo "GET $URL" >"$work/targets"
want vegeta && run vegeta vegeta attack -targets "$work/targets" -rate "$USERS" -max-workers "$USERS" -duration "${DURATION}s" -output /dev/null
