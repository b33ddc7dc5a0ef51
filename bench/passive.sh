#!/usr/bin/env bash
# Passive capture under load (issue 27): a constant GET load on loopback at
# each rate of RATES, watched at the same time by thrive's live capture
# (thrive capture --interface lo, an AF_PACKET socket) and by GoReplay's
# (goreplay --input-raw, libpcap); each one's complete exchanges against the
# target's own count of what it answered, and each one's CPU per captured
# exchange. Then the import's speed: a pcap that tcpdump recorded of the same
# load, read into a trace by thrive import on one core (taskset -c 1), in MB
# of pcap per CPU second.
#
#   bash bench/passive.sh                       # 10 s per rate, RATES="5000 20000 40000"
#   DURATION=5s RATES="5000 20000" bash bench/passive.sh
#   LOAD=vegeta bash bench/passive.sh           # vegeta as the generator (see below)
#
# Nothing is pinned: the target, the generator and both captures share the
# machine's cores, and each capture's CPU is its own process's, user and
# system, from start to exit (the end of the load, GoReplay's 2 s wait for a
# message's last packet, and writing everything out included). The
# captures start fresh for each rate and see only that rate's load: the
# target's count is read before they start and after they have stopped.
#
# The generator is bench/loopsend (LOAD=loopsend, the default): one gnet
# event loop writing a fixed GET on each of RATE/100 keep-alive connections
# every 10 ms without waiting for the answers (pipelined when the target
# falls behind) and counting the answers, at a fraction of vegeta's CPU; or
# vegeta at a constant rate over at most CONNS keep-alive connections
# (LOAD=vegeta), which on this 2-core machine, beside the target and two
# captures, reached about half of 20,000 req/s. The rate reached is the
# target's count over the load's time: Go's timers wake late, so loopsend
# falls short of the asked rate too.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RATES=${RATES:-5000 20000 40000}
CONNS=${CONNS:-64}                 # vegeta's keep-alive connections
LOAD=${LOAD:-loopsend}             # loopsend or vegeta
GOR_ENGINE=${GOR_ENGINE:-libpcap}  # GoReplay's --input-raw-engine: libpcap (its default) or raw_socket
SOCKET_BUFFER=${SOCKET_BUFFER:-64mb} # GoReplay's --input-raw-buffer-size: thrive's socket buffer is 64 MiB
IMPORT_RATE=${IMPORT_RATE:-20000}  # the load tcpdump records for the import
IMPORT_SECS=${IMPORT_SECS:-4}
PORT=18120

if ! [[ $DURATION =~ ^[1-9][0-9]*[sm]$ ]]; then
	echo "passive.sh: DURATION must be whole seconds or minutes, as 10s or 1m (got $DURATION)" >&2
	exit 2
fi
secs=${DURATION%?}
[[ $DURATION == *m ]] && secs=$((secs * 60))
case $LOAD in vegeta | loopsend) ;; *)
	echo "passive.sh: LOAD is vegeta or loopsend (got $LOAD)" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "passive.sh: live captures need CAP_NET_RAW: run it as root" >&2
	exit 2
fi

need() { command -v "$1" >/dev/null 2>&1; }
gopath=$(go env GOPATH)
export PATH="$PATH:$gopath/bin"
if ! need tcpdump || ! dpkg -s libpcap-dev >/dev/null 2>&1; then
	apt-get update -qq && apt-get install -y -qq libpcap-dev tcpdump >/dev/null
fi
need vegeta || go install github.com/tsenart/vegeta/v12@v12.13.0
need goreplay || go install github.com/buger/goreplay@v1.3.2

work=$(mktemp -d)
pids=() # the target and, while a rate runs, both captures
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM HUP
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "$(ss -Htln "sport = :$PORT")" ]; then
	echo "passive.sh: port $PORT is taken already; stop what listens there and run again:" >&2
	ss -Htlnp "sport = :$PORT" >&2
	exit 1
fi

go build -o "$work/thrive" ./cmd/thrive
go build -o "$work/target" ./bench/target
[ "$LOAD" = loopsend ] && (cd bench/loopsend && go build -o "$work/loopsend" .)
gor=$(command -v goreplay)

"$work/target" -listen 127.0.0.1:$PORT 2>"$work/target.log" &
pids+=($!)
end=$((SECONDS + 10))
until curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/count"; do
	if ((SECONDS >= end)); then
		echo "passive.sh: the target does not answer on 127.0.0.1:$PORT after 10 s" >&2
		exit 1
	fi
	sleep 0.1
done
count() { curl -fs --max-time 5 "http://127.0.0.1:$PORT/count"; }

# seconds FILE: the user and system time of the children in FILE, the
# output of the shell's times.
seconds() {
	awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); sub("s", "", u[2]); sub("s", "", s[2]); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"
}
# timed NAME COMMAND...: runs COMMAND in the background, its pid in
# $work/NAME.pid; once it has exited, the CPU seconds it used (user and
# system, from the shell's times) are in $work/NAME.cpu.
timed() {
	local name=$1
	shift
	(
		"$@" &
		echo $! >"$work/$name.pid"
		wait $! || true
		# times in a pipeline would run in a subshell of its own, which has
		# no children.
		times >"$work/$name.times"
		seconds "$work/$name.times" >"$work/$name.cpu"
	) &
	pids+=($!)
}
# waitfor FILE PATTERN: at most 10 s for a line matching PATTERN in FILE.
waitfor() {
	local end=$((SECONDS + 10))
	until grep -q "$2" "$1" 2>/dev/null; do
		if ((SECONDS >= end)); then
			echo "passive.sh: no \"$2\" in $1 after 10 s:" >&2
			cat "$1" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# load RATE SECONDS: the constant load, killed if still running 30 s after
# its time; prints the seconds from its start to its last answer.
load() {
	local rate=$1 s=$2 t0 t1
	t0=$(date +%s.%N)
	case $LOAD in
	vegeta)
		echo "GET http://127.0.0.1:$PORT/api/projects/7/" |
			timeout --foreground -k 5 $((s + 30)) vegeta attack -keepalive=true -connections "$CONNS" -max-connections "$CONNS" \
				-rate "$rate" -duration "${s}s" >"$work/vegeta.bin"
		# vegeta's own span: from its first request to its last answer.
		vegeta report -type json <"$work/vegeta.bin" | python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["duration"] / 1e9 + r["wait"] / 1e9)'
		;;
	loopsend)
		# A request on each connection every 10 ms.
		timeout --foreground -k 5 $((s + 30)) "$work/loopsend" -addr 127.0.0.1:$PORT -conns "$(((rate + 99) / 100))" \
			-every 10ms -d "${s}s" >"$work/loopsend.txt"
		t1=$(date +%s.%N)
		awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
		;;
	esac
}

# gorcount FILE...: GoReplay's payloads (a header line "1 ID TIME LATENCY"
# for a request, "2 ..." for its response, each payload ended by a line of
# 🐵🙈🙉): prints the requests, and those with a response.
gorcount() {
	cat "$@" | LC_ALL=C awk '
		(NR == 1 || sep) && ($1 == "1" || $1 == "2") { if ($1 == "1") req[$2] = 1; else resp[$2] = 1 }
		{ sep = ($0 == "🐵🙈🙉") }
		END { for (k in req) { n++; if (k in resp) m++ } print n + 0, m + 0 }'
}

# step RATE: both captures watch RATE req/s for DURATION; appends a line of
# figures to $work/results.txt.
step() {
	local rate=$1 c0 c1 span tpid gpid
	rm -f "$work"/step.thrv "$work"/step*.gor "$work"/*.pid "$work"/*.cpu
	c0=$(count)
	timed thrive "$work/thrive" capture --quiet --interface lo --port $PORT --out "$work/step.thrv" >"$work/thrive-$rate.log" 2>&1
	timed gor "$gor" --input-raw ":$PORT" --input-raw-engine "$GOR_ENGINE" --input-raw-buffer-size "$SOCKET_BUFFER" \
		--input-raw-track-response --output-file "$work/step.gor" --output-file-append >"$work/gor-$rate.log" 2>&1
	waitfor "$work/thrive-$rate.log" '^capturing HTTP'
	waitfor "$work/gor-$rate.log" 'Interface: lo'
	sleep 1 # GoReplay's listener starts after it prints its filter
	span=$(load "$rate" "$secs")
	# GoReplay hands a message on once no packet of it came for 2 s
	# (--input-raw-expire) and flushes its file every second.
	sleep 4
	tpid=$(cat "$work/thrive.pid")
	gpid=$(cat "$work/gor.pid")
	kill -INT "$tpid" "$gpid"
	for _ in $(seq 300); do
		[ -s "$work/thrive.cpu" ] && [ -s "$work/gor.cpu" ] && break
		sleep 0.1
	done
	if ! [ -s "$work/thrive.cpu" ] || ! [ -s "$work/gor.cpu" ]; then
		echo "passive.sh: a capture is still running 30 s after SIGINT: killing it" >&2
		kill -KILL "$tpid" "$gpid" 2>/dev/null || true
		sleep 1
	fi
	c1=$(count)
	# thrive: "captured N sessions, E exchanges, ..." and "lo: the kernel
	# passed P packets to the capture and dropped D".
	local tex tinc tdrop treq tpairs
	tex=$(sed -n 's/^captured [0-9]* sessions*, \([0-9]*\) exchanges.*/\1/p' "$work/thrive-$rate.log")
	tinc=$(sed -n 's/^lo: .* \([0-9]*\) incomplete.*/\1/p' "$work/thrive-$rate.log")
	tdrop=$(sed -n 's/^lo: the kernel passed [0-9]* packets to the capture and dropped \([0-9]*\).*/\1/p' "$work/thrive-$rate.log")
	if [ -z "$tex" ]; then
		echo "passive.sh: thrive's capture at $rate req/s said no summary:" >&2
		cat "$work/thrive-$rate.log" >&2
		exit 1
	fi
	# traces inspect agrees with the summary, or the figures are not the file's.
	local inspected
	inspected=$("$work/thrive" traces inspect --json "$work/step.thrv" | python3 -c 'import json, sys; print(json.load(sys.stdin)["exchanges"])')
	if [ "$inspected" != "$tex" ]; then
		echo "passive.sh: thrive said $tex exchanges at $rate req/s, its trace holds $inspected" >&2
		exit 1
	fi
	read -r treq tpairs < <(gorcount "$work"/step*.gor)
	echo "$rate $((c1 - c0)) $span $tex ${tinc:-0} ${tdrop:-0} $(cat "$work/thrive.cpu") $treq $tpairs $(cat "$work/gor.cpu")" >>"$work/results.txt"
	echo "$rate req/s asked: the target answered $((c1 - c0)); thrive captured $tex (${tinc:-0} incomplete, kernel drops ${tdrop:-0}); GoReplay $tpairs requests with their response, $treq requests" >&2
	rm -f "$work"/step.thrv "$work"/step*.gor
}

: >"$work/results.txt"
# A warm-up: connections, caches, the target's first allocations.
load 2000 2 >/dev/null
for rate in $RATES; do
	step "$rate"
done

# The import: tcpdump records IMPORT_SECS s of IMPORT_RATE req/s (its
# buffer of 64 MiB, as thrive's socket), and thrive import reads it on one
# core.
tcpdump -i lo -s 0 -B 65536 -w "$work/load.pcap" "tcp port $PORT" 2>"$work/tcpdump.log" &
tcpdump=$!
pids+=("$tcpdump")
waitfor "$work/tcpdump.log" 'listening on'
load "$IMPORT_RATE" "$IMPORT_SECS" >/dev/null
sleep 1
kill -INT "$tcpdump"
wait "$tcpdump" || true
tcpdrops=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$work/tcpdump.log")
( taskset -c 1 "$work/thrive" import "$work/load.pcap" --port $PORT --out "$work/import.thrv" >"$work/import.log" 2>&1; times >"$work/import.times" ) &
imp=$!
ts0=$(date +%s.%N)
wait "$imp"
ts1=$(date +%s.%N)
importcpu=$(seconds "$work/import.times")
imported=$("$work/thrive" traces inspect --json "$work/import.thrv" | python3 -c 'import json, sys; print(json.load(sys.stdin)["exchanges"])')
pcapbytes=$(stat -c %s "$work/load.pcap")

python3 - "$work/results.txt" "$DURATION" "$CONNS" "$LOAD" "$GOR_ENGINE" "$SOCKET_BUFFER" \
	"$pcapbytes" "$importcpu" "$ts0" "$ts1" "$imported" "$IMPORT_RATE" "$IMPORT_SECS" "${tcpdrops:-?}" <<'PY'
import sys
path, dur, conns, load, engine, sockbuf, pcapbytes, importcpu, ts0, ts1, imported, irate, isecs, tcpdrops = sys.argv[1:]
print(f"passive capture on lo: thrive capture --interface against GoReplay --input-raw ({engine}, buffer {sockbuf}, --input-raw-track-response),")
conns = "RATE/100 keep-alive connections, a request on each every 10 ms" if load == "loopsend" else f"{conns} keep-alive connections"
print(f"both watching the same load at once; {load} at a constant rate over {conns}, {dur} per rate, nothing pinned")
print(f"{'asked':>7} {'reached':>8} {'answered':>9} | {'thrive':>8} {'%':>7} {'drops':>6} {'CPU µs/ex':>9} | {'GoReplay':>8} {'%':>7} {'CPU µs/ex':>9} | {'thrive/GoReplay CPU':>19}")
for line in open(path):
    f = line.split()
    rate, answered, span = int(f[0]), int(f[1]), float(f[2])
    tex, tinc, tdrop, tcpu = int(f[3]), int(f[4]), int(f[5]), float(f[6])
    greq, gpairs, gcpu = int(f[7]), int(f[8]), float(f[9])
    reached = answered / span
    tus = tcpu / tex * 1e6 if tex else float("inf")
    gus = gcpu / gpairs * 1e6 if gpairs else float("inf")
    print(f"{rate:7d} {reached:8.0f} {answered:9d} | {tex:8d} {100 * tex / answered:6.2f}% {tdrop:6d} {tus:9.1f} | {gpairs:8d} {100 * gpairs / answered:6.2f}% {gus:9.1f} | {tus / gus:19.2f}")
print("reached: the target's count over the load's span (vegeta's: its first request to its last answer; loopsend's: its whole run); answered: the target's count;")
print("thrive: exchanges in its trace (its kernel drops beside); GoReplay: requests in its file with their response; CPU: each process's user+system, start to exit")
mb = int(pcapbytes) / 1e6
cpu, wall = float(importcpu), float(ts1) - float(ts0)
print(f"import: {mb:.1f} MB pcap ({irate} req/s for {isecs} s, tcpdump, {tcpdrops} dropped by the kernel), {imported} exchanges: "
      f"taskset -c 1 thrive import in {cpu:.2f} CPU s ({wall:.2f} s wall): {mb / cpu:.0f} MB/s of pcap per core (goal >= 200)")
PY
