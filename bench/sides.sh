#!/usr/bin/env bash
# Does side-by-side replay cancel drift? (issue 29: "the same build on
# both sides, run while the machine is loaded by something else in
# bursts, gives a smaller p95 difference side by side than in two
# sequential runs"; "side-by-side mode finds a 20% slowdown on one
# endpoint that two sequential runs under bursty noise miss or blur".)
#
# Two demo backends, A (the base) and B (the candidate: the same build, or
# with SLOW set, one whose ENDPOINT is SLOW times as slow), each computing a
# BUSY share of its modelled latency (demo serve --busy; latencies scaled by
# SCALE), as a backend that renders or serializes does, so that other load
# on the machine stretches them; a hog that loads the machine in bursts of
# random length (HOGS busy loops, 1 to 6 s on, as long off), as other
# tenants of a shared machine do. Nothing is pinned to a core: pinned, the
# two builds meet the load unequally (thrive's share of each core differs),
# or, on one core, each request and its twin contend. ROUNDS times:
#   sequential:   replay against A for DURATION s, then against B;
#   side by side: replay --target A --candidate B for DURATION s.
# Each pair is compared (thrive compare) and the script prints, per round
# and as medians: the p95 change of all requests; the median over the
# other endpoints of their absolute p95 change; ENDPOINT's p95 change and
# verdict; and how many other endpoints were called a regression (false
# alarms). The bursts are drawn afresh for each run, so sequential runs
# meet different noise; side by side, both sides meet the same. Loopback
# only; every run and the hog are bounded in time.
#
#   bash bench/sides.sh                        # the same build: 30 users, 20 s, 5 rounds (about 8 minutes)
#   SLOW=1.2 bash bench/sides.sh               # the candidate 20% slower on GET /api/projects/
#   ROUNDS=1 DURATION=5 bash bench/sides.sh    # a quick check that it runs
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-30}
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-5}
HOGS=${HOGS:-4}
BUSY=${BUSY:-0.3}
SCALE=${SCALE:-0.1}
SLOW=${SLOW:-}
# The endpoint the candidate slows; with no SLOW, none: every endpoint's
# regression is a false alarm.
if [ -z "$SLOW" ]; then
	ENDPOINT=""
elif [ -z "${ENDPOINT:-}" ]; then
	ENDPOINT='GET /api/projects/'
fi
PORT_A=18140
PORT_B=18141
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
"$work/thrive" demo --sessions 60 --time-scale 1000 --out "$work/d.thrv" --users 1 --run-time 1s >/dev/null 2>&1
candidate=(--busy "$BUSY" --latency-scale "$SCALE")
[ -n "$SLOW" ] && candidate+=(--slow "$ENDPOINT=$SLOW")
"$work/thrive" demo serve --listen "127.0.0.1:$PORT_A" --rate-limit 0 --busy "$BUSY" --latency-scale "$SCALE" >"$work/serve-a.log" 2>&1 &
pids+=($!)
"$work/thrive" demo serve --listen "127.0.0.1:$PORT_B" --rate-limit 0 "${candidate[@]}" >"$work/serve-b.log" 2>&1 &
pids+=($!)
for port in $PORT_A $PORT_B; do
	answering "http://127.0.0.1:$port/metrics"
done

# hog loads the machine in bursts until it has run for $1 seconds: HOGS
# busy loops, on for 1 to 6 s, then off as long.
hog() {
	local until=$((SECONDS + $1))
	while ((SECONDS < until)); do
		local on off
		on=$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", 1 + 5 * r / 32767 }')
		off=$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", 1 + 5 * r / 32767 }')
		for _ in $(seq "$HOGS"); do
			timeout "$on" sh -c 'while :; do :; done' &
		done
		wait
		sleep "$off"
	done
}

# play runs one replay of DURATION seconds, with a hog of its own, with
# the rest of the arguments, and writes its result to the file $1.
play() {
	local out=$1
	shift
	hog "$DURATION" &
	local hogpid=$!
	timeout $((DURATION + 60)) "$work/thrive" replay "$work/d.thrv" --users "$USERS" --run-time "${DURATION}s" \
		--scale-time 0.2 --seed 1 --quiet --out "$out" "$@" >/dev/null 2>&1 || true
	kill "$hogpid" 2>/dev/null || true
	wait "$hogpid" 2>/dev/null || true
}

# figures prints, of a compare --format json on stdin: the p95 change of
# all requests, the median over the endpoints other than ENDPOINT of the
# absolute p95 change (percent), ENDPOINT's p95 change (percent) and
# verdict, and the number of other endpoints called a regression.
figures() {
	ENDPOINT="$ENDPOINT" python3 -c '
import json, os, statistics, sys
c = json.load(sys.stdin)
ep = os.environ["ENDPOINT"]
others = [e for e in c["endpoints"] if e["name"] != ep and e["verdict"] != "too few requests"]
# An endpoint is compared per profile: ENDPOINT is its profile with the most requests.
mine = sorted((e for e in c["endpoints"] if e["name"] == ep), key=lambda e: -e["base_requests"])[:1]
slow = "%+.1f %s" % (100 * mine[0]["p95_change"], mine[0]["verdict"].replace(" ", "_")) if mine else "- -"
print("%.1f %.1f %s %d" % (100 * abs(c["overall"]["p95_change"]), 100 * statistics.median(abs(e["p95_change"]) for e in others),
	slow, sum(e["verdict"] == "regression" for e in others)))'
}

declare -A col
printf "%-6s %-13s %10s %13s %12s %-12s %13s\n" round mode "|Δp95| all" "others |Δp95|" "endpoint Δp95" verdict "false alarms"
for r in $(seq "$ROUNDS"); do
	play "$work/s1.json" --target http://127.0.0.1:$PORT_A
	play "$work/s2.json" --target http://127.0.0.1:$PORT_B
	play "$work/side.json" --target http://127.0.0.1:$PORT_A --candidate http://127.0.0.1:$PORT_B
	for mode in sequential side; do
		if [ $mode = sequential ]; then
			json=$("$work/thrive" compare "$work/s1.json" "$work/s2.json" --format json || true)
		else
			json=$("$work/thrive" compare "$work/side.json" --format json || true)
		fi
		read -r all eps slow verdict alarms < <(figures <<<"$json")
		col[$mode.all]+="$all " col[$mode.eps]+="$eps " col[$mode.slow]+="$slow " col[$mode.alarms]+="$alarms "
		[ "$verdict" = regression ] && col[$mode.found]=$((${col[$mode.found]:-0} + 1))
		printf "%-6s %-13s %9s%% %12s%% %11s%% %-12s %13s\n" "$r" "$mode" "$all" "$eps" "$slow" "$verdict" "$alarms"
	done
done
median() { printf "%s\n" $1 | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { printf "%s\n" $1 | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s to %s", lo, hi }'; }
sum() { printf "%s\n" $1 | awk '{ s += $1 } END { print s }'; }
echo
if [ -n "$SLOW" ]; then
	echo "B is $SLOW times as slow on $ENDPOINT; both builds compute $BUSY of their latency; $HOGS hog loops in bursts"
else
	echo "the same build on both sides, computing $BUSY of its latency; $HOGS hog loops in bursts"
fi
for mode in sequential side; do
	printf "%-13s |Δp95| all %s%%, endpoints %s%%" "$mode" "$(median "${col[$mode.all]}")" "$(median "${col[$mode.eps]}")"
	[ -n "$SLOW" ] && printf "; %s Δp95 median %s%% (%s%%), a regression in %d of %d rounds" "$ENDPOINT" "$(median "${col[$mode.slow]}")" \
		"$(spread "${col[$mode.slow]}")" "${col[$mode.found]:-0}" "$ROUNDS"
	printf "; false alarms %d\n" "$(sum "${col[$mode.alarms]}")"
done
awk -v s="$(median "${col[sequential.eps]}")" -v b="$(median "${col[side.eps]}")" \
	'BEGIN { if (s > 0) printf "side by side / sequential, endpoints |Δp95|: %.2f (%s)\n", b / s, (b < s ? "smaller side by side" : "NOT smaller") }'
