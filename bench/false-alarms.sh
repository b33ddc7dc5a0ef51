#!/usr/bin/env bash
# How often does thrive compare cry wolf? (issue 29: "the unchanged backend
# against itself, 50 times with different seeds, reports no regression in
# >= 49".) One demo backend (the same build throughout) on core 0; one
# replay of a demo trace with seed 1 as the base, then RUNS more with seeds
# 2, 3, ...; each compared with the base (thrive compare, latency and
# answers). The script prints each comparison's verdict and what it
# flagged, then how many of RUNS found a regression and how many listed a
# change in the answers. With SIDE=1, a second instance of the same build
# beside the first, and each run is side by side (replay --candidate, the
# second instance) with its seed, compared within itself: the same
# question of side-by-side replay. Loopback only; every run is bounded in
# time.
#
#   bash bench/false-alarms.sh                       # 50 runs of 5 s, 50 users: about 6 minutes
#   SIDE=1 bash bench/false-alarms.sh                # the same, side by side
#   RUNS=5 DURATION=3 bash bench/false-alarms.sh     # a quick check that it runs
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-50}
USERS=${USERS:-50}
DURATION=${DURATION:-5}
SIDE=${SIDE:-}
PORT=18150
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
"$work/thrive" demo --sessions 60 --time-scale 1000 --out "$work/d.thrv" --users 1 --run-time 1s >/dev/null 2>&1
ports=("$PORT")
[ -n "$SIDE" ] && ports+=($((PORT + 1)))
for port in "${ports[@]}"; do
	taskset -c 0 "$work/thrive" demo serve --listen "127.0.0.1:$port" --rate-limit 0 --latency job=60ms >"$work/serve-$port.log" 2>&1 &
	pids+=($!)
	answering "http://127.0.0.1:$port/metrics"
done

# play replays the trace with seed $1 into the result file $2, with the
# rest of the arguments.
play() {
	local seed=$1 out=$2
	shift 2
	timeout $((DURATION + 60)) taskset -c 1 "$work/thrive" replay "$work/d.thrv" --target "http://127.0.0.1:$PORT" --users "$USERS" \
		--run-time "${DURATION}s" --scale-time 0.2 --seed "$seed" --quiet --out "$out" "$@" >/dev/null 2>&1 || true
}

[ -z "$SIDE" ] && play 1 "$work/base.json"
regressions=0 changes=0
for i in $(seq "$RUNS"); do
	seed=$((i + 1))
	if [ -n "$SIDE" ]; then
		play "$seed" "$work/r.json" --candidate "http://127.0.0.1:$((PORT + 1))"
		"$work/thrive" compare "$work/r.json" --format json >"$work/c.json" || true
	else
		play "$seed" "$work/r.json"
		"$work/thrive" compare "$work/base.json" "$work/r.json" --format json >"$work/c.json" || true
	fi
	read -r verdict flagged listed < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
flagged = [e["name"] + " " + e.get("profile", "") for e in c["endpoints"] if e["verdict"] == "regression"]
flagged += [d["name"] + " " + d["what"] + " " + d["detail"] for d in c["behaviour"] if d["verdict"] == "regression"]
print(c["verdict"].replace(" ", "_"), len(flagged), len(c["behaviour"]))' "$work/c.json")
	[[ $verdict == regression ]] && regressions=$((regressions + 1))
	((listed > 0)) && changes=$((changes + 1))
	printf "seed %3d: %-12s regressions flagged %d, answers' differences listed %d\n" "$seed" "${verdict//_/ }" "$flagged" "$listed"
done
echo
echo "$regressions of $RUNS comparisons of the same build${SIDE:+ side by side} found a regression; $changes listed a difference in the answers"
