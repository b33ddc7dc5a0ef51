#!/usr/bin/env bash
# Benchmark 2 of issue 5: the generator's CPU per request at a fixed
# 2,000 req/s (50 users, one request each 25 ms), thrive next to hey, vegeta
# and Locust (FastHttpUser with constant_throughput), on the same fasthttp
# target, and bench/loopsend: a bare sender on an event loop that parses and
# records nothing, the floor for a generator in Go. Target on core 0, generator on core 1, tools taking turns, medians
# of ROUNDS rounds. Loopback only.
#
#   bash bench/replay-fixed.sh            # 3 rounds of 10 s
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
USERS=50
RATE=2000 # = USERS requests every 25 ms
PORT=18103
URL="http://127.0.0.1:$PORT/api/projects/7/"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need hey || ! need locust; then
	apt-get update -qq && apt-get install -y -qq hey python3-locust >/dev/null
fi
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
go build -o "$work/target" ./bench/target
(cd bench/loopsend && go build -o "$work/loopsend" .)
# One session of requests 25 ms apart, long enough to outlast the run.
go run ./bench/mktrace -out "$work/paced.thrv" -requests $((DURATION * 40 + 400)) -gap 25ms
taskset -c 0 "$work/target" -listen 127.0.0.1:$PORT &
pids+=($!)
for _ in $(seq 50); do curl -fs "$URL" >/dev/null && break; sleep 0.1; done

cat >"$work/locustfile.py" <<'PY'
from locust import task, constant_throughput
from locust.contrib.fasthttp import FastHttpUser

class Reader(FastHttpUser):
    wait_time = constant_throughput(40)
    @task
    def detail(self):
        self.client.get("/api/projects/7/")
PY

count() { curl -fs "http://127.0.0.1:$PORT/count"; }

declare -A us rps
for round in $(seq "$ROUNDS"); do
	for tool in thrive hey vegeta locust loopsend; do
		before=$(count)
		case $tool in
		thrive) c=$(cpu "$work/thrive" replay "$work/paced.thrv" --target "http://127.0.0.1:$PORT" --users $USERS \
			--run-time "${DURATION}s" --quiet --stop-timeout 0s) ;;
		hey) c=$(cpu hey -z "${DURATION}s" -c $USERS -q 40 "$URL") ;;
		vegeta) echo "GET $URL" >"$work/targets"
			c=$(cpu vegeta attack -targets "$work/targets" -rate $RATE -duration "${DURATION}s" -output /dev/null) ;;
		loopsend) c=$(cpu "$work/loopsend" -addr 127.0.0.1:$PORT -conns $USERS -every 25ms -d "${DURATION}s") ;;
		locust) c=$(cpu locust -f "$work/locustfile.py" --headless -u $USERS -r $USERS -t "${DURATION}s" \
			--host "http://127.0.0.1:$PORT" --only-summary) ;;
		esac
		n=$(( $(count) - before - 0 ))
		us[$tool]+="$(python3 -c "print($c/$n*1e6)") "
		rps[$tool]+="$(python3 -c "print($n/$DURATION)") "
	done
done

python3 - "$ROUNDS" "$DURATION" "${us[thrive]}" "${rps[thrive]}" "${us[hey]}" "${rps[hey]}" "${us[vegeta]}" "${rps[vegeta]}" "${us[locust]}" "${rps[locust]}" "${us[loopsend]}" "${rps[loopsend]}" <<'PY'
import statistics, sys
rounds, dur = sys.argv[1:3]
v = sys.argv[3:]
names = ["thrive", "hey", "vegeta", "locust", "loopsend"]
med = {n: (statistics.median(map(float, v[2*i].split())), statistics.median(map(float, v[2*i+1].split()))) for i, n in enumerate(names)}
print(f"fixed 2,000 req/s (50 users), target on core 0, generator on core 1; medians of {rounds} rounds of {dur} s")
print(f"{'tool':8} {'req/s seen':>11} {'CPU µs/req':>11} {'vs hey':>7}")
for n in names:
    c, r = med[n]
    print(f"{n:8} {r:11.0f} {c:11.1f} {c/med['hey'][0]:7.2f}")
print(f"goal: thrive's CPU per request <= 0.5x hey's: {med['thrive'][0]/med['hey'][0]:.2f}"
      f" (loopsend, which only writes and counts: {med['loopsend'][0]/med['hey'][0]:.2f})")
PY
