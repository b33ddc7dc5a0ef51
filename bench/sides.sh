#!/usr/bin/env bash
# Does side-by-side replay cancel drift? (issue 29: "the same build on
# both sides, run while the machine is loaded by something else in
# bursts, gives a smaller p95 difference side by side than in two
# sequential runs".) Two instances of the same demo backend (the same
# build) on core 0; a hog that loads that core in bursts of random length
# (HOGS busy loops, 1 to 6 s on, as long off), as other tenants of a
# shared machine do; and, ROUNDS times:
#   sequential: replay against A for DURATION s, then again (another seed's
#               worth of nothing: the same seed) against A;
#   side by side: replay --target A --candidate B for DURATION s.
# Each pair is compared (thrive compare) and the script prints the p95
# difference of all requests and the median over endpoints of the absolute
# p95 difference, per round and as medians, and their ratio. The bursts are
# drawn afresh each round, so runs meet different noise; side by side, both
# sides meet the same. Loopback only; every run and the hog are bounded in
# time.
#
#   bash bench/sides.sh                       # 100 users, 15 s, 3 rounds
#   ROUNDS=1 DURATION=5 bash bench/sides.sh   # a quick check that it runs
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-100}
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
HOGS=${HOGS:-3}
PORT_A=18140
PORT_B=18141
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
"$work/thrive" demo --sessions 60 --time-scale 1000 --out "$work/d.thrv" --users 1 --run-time 1s >/dev/null 2>&1
for port in $PORT_A $PORT_B; do
	taskset -c 0 "$work/thrive" demo serve --listen "127.0.0.1:$port" --rate-limit 0 >"$work/serve-$port.log" 2>&1 &
	pids+=($!)
done
for port in $PORT_A $PORT_B; do
	for _ in $(seq 50); do
		curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break
		sleep 0.1
	done
done

# hog loads the backends' core in bursts until it has run for $1 seconds:
# HOGS busy loops on core 0, on for 1 to 6 s, then off as long.
hog() {
	local until=$((SECONDS + $1))
	while ((SECONDS < until)); do
		local on off
		on=$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", 1 + 5 * r / 32767 }')
		off=$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", 1 + 5 * r / 32767 }')
		for _ in $(seq "$HOGS"); do
			timeout "$on" taskset -c 0 sh -c 'while :; do :; done' &
		done
		wait
		sleep "$off"
	done
}

# play runs one replay of $1 seconds with the rest of the arguments and
# writes its result to the file $out.
play() {
	local secs=$1 out=$2
	shift 2
	timeout $((secs + 60)) "$work/thrive" replay "$work/d.thrv" --users "$USERS" --run-time "${secs}s" --scale-time 0.2 \
		--seed 1 --quiet --out "$out" "$@" >/dev/null 2>&1 || true
}

# diffs prints the p95 change of all requests and the median over
# endpoints of the absolute p95 change, in percent, of a compare --format
# json on stdin.
diffs() {
	python3 -c '
import json, statistics, sys
c = json.load(sys.stdin)
eps = [abs(e["p95_change"]) for e in c["endpoints"] if e["verdict"] != "too few requests"]
print("%.1f %.1f" % (100 * abs(c["overall"]["p95_change"]), 100 * statistics.median(eps)))'
}

seq_all=() seq_eps=() side_all=() side_eps=()
printf "%-6s %-13s %12s %18s\n" round mode "|Δp95| all" "median |Δp95| eps"
for r in $(seq "$ROUNDS"); do
	hog $((3 * DURATION + 5)) &
	hogpid=$!
	play "$DURATION" "$work/s1.json" --target http://127.0.0.1:$PORT_A
	play "$DURATION" "$work/s2.json" --target http://127.0.0.1:$PORT_A
	play "$DURATION" "$work/side.json" --target http://127.0.0.1:$PORT_A --candidate http://127.0.0.1:$PORT_B
	kill "$hogpid" 2>/dev/null || true
	wait "$hogpid" 2>/dev/null || true
	read -r a e < <("$work/thrive" compare "$work/s1.json" "$work/s2.json" --format json | diffs)
	seq_all+=("$a") seq_eps+=("$e")
	printf "%-6s %-13s %11s%% %17s%%\n" "$r" sequential "$a" "$e"
	read -r a e < <("$work/thrive" compare "$work/side.json" --format json | diffs)
	side_all+=("$a") side_eps+=("$e")
	printf "%-6s %-13s %11s%% %17s%%\n" "$r" "side by side" "$a" "$e"
done
median() { printf "%s\n" "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sa=$(median "${seq_all[@]}") se=$(median "${seq_eps[@]}") ba=$(median "${side_all[@]}") be=$(median "${side_eps[@]}")
echo
printf "medians: sequential |Δp95| all %s%%, endpoints %s%%; side by side all %s%%, endpoints %s%%\n" "$sa" "$se" "$ba" "$be"
awk -v s="$se" -v b="$be" 'BEGIN { if (b > 0) printf "side by side / sequential, endpoints: %.2f (%s)\n", b / s, (b < s ? "smaller side by side" : "NOT smaller") }'
