#!/usr/bin/env bash
# Benchmark 1 of issue 5: the highest request rate and the generator's CPU per
# request with 50 users and no gaps, thrive next to wrk, hey, vegeta and
# Locust (FastHttpUser), on the same fasthttp target. The target runs on
# core 0 and each generator on core 1; the tools take turns, ROUNDS times,
# and the medians are compared. Loopback only.
#
#   bash bench/replay.sh                 # 3 rounds of 10 s each
#   ROUNDS=5 DURATION=20 bash bench/replay.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
USERS=${USERS:-50}
PORT=18100
URL="http://127.0.0.1:$PORT/api/projects/7/"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need hey || ! need locust; then
	apt-get update -qq && apt-get install -y -qq wrk hey python3-locust >/dev/null
fi
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
go build -o "$work/target" ./bench/target
go run ./bench/mktrace -out "$work/flat.thrv" -requests 1000 -gap 0
taskset -c 0 "$work/target" -listen 127.0.0.1:$PORT &
pids+=($!)
for _ in $(seq 50); do curl -fs "$URL" >/dev/null && break; sleep 0.1; done

cat >"$work/locustfile.py" <<'PY'
from locust import task
from locust.contrib.fasthttp import FastHttpUser

class Reader(FastHttpUser):
    @task
    def detail(self):
        self.client.get("/api/projects/7/")
PY

declare -A rps cpu_us
add() { rps[$1]+="$2 "; cpu_us[$1]+="$3 "; }

for round in $(seq "$ROUNDS"); do
	# thrive: USERS users replaying a session of back-to-back requests.
	c=$(cpu "$work/thrive" replay "$work/flat.thrv" --target "http://127.0.0.1:$PORT" --users "$USERS" \
		--run-time "${DURATION}s" --pacing think --quiet --out "$work/r.json" --stop-timeout 2s)
	# The rate counts the requests sent within the run time, not those of the
	# sessions that finish after it; the CPU per request counts them all.
	read -r n all < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(s["requests"] for s in r["series"] if s["offset_s"] < int(sys.argv[2])), r["requests"])' "$work/r.json" "$DURATION")
	add thrive "$(python3 -c "print($n/$DURATION)")" "$(python3 -c "print($c/$all*1e6)")"

	c=$(cpu wrk -t1 -c"$USERS" -d"${DURATION}s" "$URL")
	n=$(awk '/requests in/ {print $1}' "$work/out")
	add wrk "$(python3 -c "print($n/$DURATION)")" "$(python3 -c "print($c/$n*1e6)")"

	c=$(cpu hey -z "${DURATION}s" -c "$USERS" "$URL")
	n=$(awk '/\[200\]/ {print $2}' "$work/out")
	add hey "$(python3 -c "print($n/$DURATION)")" "$(python3 -c "print($c/$n*1e6)")"

	c=$(cpu sh -c "echo 'GET $URL' | vegeta attack -rate=0 -max-workers=$USERS -duration=${DURATION}s | vegeta report -type json")
	n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$work/out")
	add vegeta "$(python3 -c "print($n/$DURATION)")" "$(python3 -c "print($c/$n*1e6)")"

	c=$(cpu locust -f "$work/locustfile.py" --headless -u "$USERS" -r "$USERS" -t "${DURATION}s" \
		--host "http://127.0.0.1:$PORT" --csv "$work/locust" --only-summary)
	n=$(python3 -c 'import csv,sys; print([r for r in csv.DictReader(open(sys.argv[1])) if r["Name"]=="Aggregated"][0]["Request Count"])' "$work/locust_stats.csv")
	add locust "$(python3 -c "print($n/$DURATION)")" "$(python3 -c "print($c/$n*1e6)")"
done

python3 - "$USERS" "$DURATION" "$ROUNDS" "${rps[thrive]}" "${cpu_us[thrive]}" "${rps[wrk]}" "${cpu_us[wrk]}" \
	"${rps[hey]}" "${cpu_us[hey]}" "${rps[vegeta]}" "${cpu_us[vegeta]}" "${rps[locust]}" "${cpu_us[locust]}" <<'PY'
import statistics, sys
users, dur, rounds = sys.argv[1:4]
vals = sys.argv[4:]
names = ["thrive", "wrk", "hey", "vegeta", "locust"]
med = {}
for i, n in enumerate(names):
    r = [float(x) for x in vals[2*i].split()]
    c = [float(x) for x in vals[2*i+1].split()]
    med[n] = (statistics.median(r), statistics.median(c))
print(f"max rate, {users} users, no gaps, target on core 0, generator on core 1; medians of {rounds} rounds of {dur} s")
print(f"{'tool':8} {'req/s':>10} {'CPU µs/req':>11} {'req/s vs wrk':>13} {'CPU vs wrk':>11}")
w = med["wrk"]
for n in names:
    r, c = med[n]
    print(f"{n:8} {r:10.0f} {c:11.1f} {r/w[0]:13.2f} {c/w[1]:11.2f}")
t = med["thrive"]
print(f"goals: req/s >= 0.8x wrk: {t[0]/w[0]:.2f}; CPU per request <= 2x wrk: {t[1]/w[1]:.2f}")
PY
