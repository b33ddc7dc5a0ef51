#!/usr/bin/env bash
# Benchmarks the capture proxy side by side with an nginx reverse proxy and a
# bare Go relay (bench/copyrelay, the floor for a proxy on Go's network
# poller) and the same relay on an event loop (bench/looprelay, gnet), on the
# same static target, in one run: added latency at a fixed rate (vegeta) and the
# highest request rate (wrk), recording on. Loopback only.
#
#   bash bench/capture.sh            # defaults: 10 s per measurement, 3 rounds, 1,000 req/s on each path
#   DURATION=20s RATE=500 bash bench/capture.sh
#   DURATION=3s ROUNDS=1 bash bench/capture.sh     # a quick check that it runs
#
# Socket budget. Every connection that closes leaves a socket in TIME-WAIT
# for 60 s on the side that closed first, holding its local port. vegeta
# binds its sockets before connecting, and bind() takes no port that any
# socket holds: once the ephemeral port range is used up it fails with
# "bind: address already in use", and a relay that cannot reach the target
# closes its client's connection unanswered (the client sees EOF). So the
# connections stay few and stay open: at most CONNS per path for vegeta too
# (unbounded, it opened about 2,000 per path when this shared machine
# stalled it, and closed them all when it exited), the relays pin one
# target connection to each client connection for as long as the client
# keeps it, and nginx closes no keep-alive connection after 1,000 requests.
# Before each measurement the script counts the ports held and waits (at
# most TW_WAIT s) for TIME-WAIT sockets to expire if too few are free, or
# stops and says what to do; after it, it prints the TIME-WAIT count.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-1000}
CONNS=${CONNS:-64}               # connections per path: wrk's, and vegeta's at most
TW_WAIT=${TW_WAIT:-75}           # s to wait at most for ports in TIME-WAIT to come free (they take 60 s)
PORT_RESERVE=${PORT_RESERVE:-1000} # ephemeral ports left to the rest of this shared machine
TARGET_PORT=18081 NGINX_PORT=18082 THRIVE_PORT=18083 RELAY_PORT=18084 LOOP_PORT=18085 TLOOP_PORT=18086
names=(direct nginx gorelay looprelay thrive thriveloop)
port_of() { case $1 in direct) echo $TARGET_PORT ;; nginx) echo $NGINX_PORT ;; gorelay) echo $RELAY_PORT ;; looprelay) echo $LOOP_PORT ;; thrive) echo $THRIVE_PORT ;; thriveloop) echo $TLOOP_PORT ;; esac; }
bench_ports=" $TARGET_PORT $NGINX_PORT $THRIVE_PORT $RELAY_PORT $LOOP_PORT $TLOOP_PORT "

# vegeta and wrk take Go's and their own durations; a whole number of
# seconds or minutes suits both, and bounds each load run with timeout.
if ! [[ $DURATION =~ ^[1-9][0-9]*[sm]$ ]]; then
	echo "capture.sh: DURATION must be whole seconds or minutes, as 10s or 1m (got $DURATION)" >&2
	exit 2
fi
secs=${DURATION%?}
[[ $DURATION == *m ]] && secs=$((secs * 60))

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
	apt-get update -qq && apt-get install -y -qq nginx-light wrk >/dev/null
fi
export PATH="$PATH:$(go env GOPATH)/bin"
need vegeta || go install github.com/tsenart/vegeta/v12@v12.13.0

work=$(mktemp -d)
pids=()       # servers started in the background
nginx_pids=() # nginx's master and workers: it puts itself in the background
nginx_started=0
# alive PID: a process that has exited but is not reaped yet is a zombie,
# which kill -0 still finds.
alive() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]
}
# stop PID...: TERM, up to 10 s to finish (a capture writes its trace out),
# then KILL, so that nothing outlives the run and the next one finds its
# ports free.
stop() {
	local p left=()
	(($#)) || return 0
	kill -TERM "$@" 2>/dev/null || true
	for _ in $(seq 100); do
		left=()
		for p; do alive "$p" && left+=("$p"); done
		((${#left[@]})) || break
		sleep 0.1
	done
	if ((${#left[@]})); then
		echo "capture.sh: ${left[*]} still running 10 s after TERM: killing" >&2
		kill -KILL "${left[@]}" 2>/dev/null || true
	fi
	wait "$@" 2>/dev/null || true # reaps ours; nginx's are not our children
}
cleanup() {
	local rc=$? f
	trap - EXIT INT TERM HUP
	if ((rc != 0)); then
		# What the servers said: a relay logs the target it could not reach,
		# nginx the connections it ran short of.
		for f in copyrelay.log looprelay.log error.log capture.log capture-loop.log; do
			[ -s "$work/$f" ] || continue
			echo "--- $f, last lines:" >&2
			grep -v 'stale connection' "$work/$f" | tail -n 5 >&2 || true
		done
	fi
	# nginx may have started without its pids read yet: its master writes
	# the pid file a moment after the command that started it returned.
	if ((nginx_started && ${#nginx_pids[@]} == 0)); then
		for _ in $(seq 20); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
		[ -s "$work/nginx.pid" ] && nginx_pids=("$(cat "$work/nginx.pid")")
	fi
	stop "${pids[@]}" "${nginx_pids[@]}"
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap stops the servers.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# A port taken already is a server left from an earlier run, or someone
# else's: the readiness check below would find it answering and the
# numbers would be its own.
for port in $bench_ports; do
	if [ -n "$(ss -Htln "sport = :$port")" ]; then
		echo "capture.sh: port $port is taken already; stop what listens there and run again:" >&2
		ss -Htlnp "sport = :$port" >&2
		exit 1
	fi
done

read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
port_range=$((port_hi - port_lo + 1))
# sockets prints: sockets in TIME-WAIT, those of them towards or from the
# bench's ports, those towards the target, and the ephemeral ports free.
# A port is held by any socket bound to it, in TIME-WAIT or not, whoever's
# it is (the machine is shared): that is what vegeta's bind() sees.
sockets() {
	ss -tanH | awk -v lo="$port_lo" -v hi="$port_hi" -v ports="$bench_ports" -v target="$TARGET_PORT" -v range="$port_range" '
		{
			n = split($4, l, ":"); lp = l[n]
			m = split($5, p, ":"); pp = p[m]
			if ($1 == "TIME-WAIT") {
				tw++
				if (index(ports, " " lp " ") || index(ports, " " pp " ")) ours++
				if (pp == target) totarget++
			}
			if (lp >= lo && lp <= hi && !(lp in held)) { held[lp]; h++ }
		}
		END { print tw + 0, ours + 0, totarget + 0, range - h }'
}
# before LABEL NEED: makes sure NEED ephemeral ports (the connections the
# next measurement may open, client and target sides) are free beside
# PORT_RESERVE for everyone else; waits at most TW_WAIT s for sockets in
# TIME-WAIT to expire, else stops with what to do.
before() {
	local label=$1 need=$2 waited=0
	read -r tw0 ours0 target0 free0 < <(sockets)
	if ((free0 < need + PORT_RESERVE)); then
		echo "sockets: $label may open $need connections, leaving $PORT_RESERVE ephemeral ports to the rest of the machine, but only $free0 of $port_range ($port_lo-$port_hi) are free; $tw0 sockets in TIME-WAIT ($ours0 of them the bench's). Waiting up to ${TW_WAIT}s for them to expire." >&2
		while ((free0 < need + PORT_RESERVE && waited < TW_WAIT)); do
			sleep 3
			waited=$((waited + 3))
			read -r tw0 ours0 target0 free0 < <(sockets)
		done
		if ((free0 < need + PORT_RESERVE)); then
			cat >&2 <<MSG
capture.sh: still only $free0 ephemeral ports free after ${waited}s; $label needs $need plus $PORT_RESERVE to spare.
  $tw0 sockets are in TIME-WAIT ($ours0 of them towards or from this bench's ports); see them with: ss -tan state time-wait
  Wait a minute for other load on this machine to end, or widen the range above the bench's ports,
  e.g. sysctl -w net.ipv4.ip_local_port_range="20000 65000", or lower CONNS or PORT_RESERVE.
MSG
			exit 1
		fi
		echo "sockets: $free0 ports free after ${waited}s" >&2
	fi
	((free0 < min_free)) && min_free=$free0
	return 0
}
after() {
	local tw ours target free
	read -r tw ours target free < <(sockets)
	printf 'sockets in TIME-WAIT %-20s %6d -> %6d   bench ports %6d -> %6d   towards the target %6d -> %6d   free ports %6d -> %6d of %d\n' \
		"$1:" "$tw0" "$tw" "$ours0" "$ours" "$target0" "$target" "$free0" "$free" "$port_range"
}
# measure LABEL NEED COMMAND...: the budget before, COMMAND, TIME-WAIT after.
measure() {
	before "$1" "$2"
	"${@:3}"
	after "$1"
}
min_free=$port_range
read -r tw_start ours_start _ free_start < <(sockets)
echo "sockets at the start: $tw_start in TIME-WAIT ($ours_start of them the bench's), $free_start of $port_range ephemeral ports ($port_lo-$port_hi) free"

go build -o "$work/thrive" ./cmd/thrive
go build -o "$work/copyrelay" ./bench/copyrelay
(cd bench/looprelay && go build -o "$work/looprelay" .)

# A static JSON answer of about 1 KB, as an API detail view, served by
# nginx from memory.
body=$(python3 -c 'import json; print(json.dumps({"id": 7, "title": "Video summary agent", "description": "word " * 150, "tags": ["agent", "video"], "stars": 1234}))')

# keepalive_requests: nginx closes a keep-alive connection after 1,000
# requests by default, so under wrk each connection was closed and dialled
# again every second or two, the relays' target connections with it. The
# upstream keeps up to 256 idle connections per worker (CONNS if more), at
# least the CONNS a path has at most, so none is closed between requests.
# worker_connections: the proxy's clients, its upstream and the target's
# clients share them; about 8 x CONNS at most now (when vegeta's
# connections were not bounded, nginx ran out and closed idle ones).
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
error_log $work/error.log warn;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream target { server 127.0.0.1:$TARGET_PORT; keepalive $((CONNS > 256 ? CONNS : 256)); keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$TARGET_PORT;
    location / { default_type application/json; return 200 '$body'; }
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://target;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF
mkdir -p "$work/logs"
nginx_started=1
nginx -p "$work" -c nginx.conf

"$work/thrive" capture --quiet --listen 127.0.0.1:$THRIVE_PORT --target http://127.0.0.1:$TARGET_PORT \
	--out "$work/bench.thrv" --session-idle 2s >"$work/capture.log" 2>&1 &
pids+=($!)
"$work/thrive" capture --quiet --event-loop --listen 127.0.0.1:$TLOOP_PORT --target http://127.0.0.1:$TARGET_PORT \
	--out "$work/bench-loop.thrv" --session-idle 2s >"$work/capture-loop.log" 2>&1 &
pids+=($!)
"$work/copyrelay" -listen 127.0.0.1:$RELAY_PORT -target 127.0.0.1:$TARGET_PORT 2>"$work/copyrelay.log" &
pids+=($!)
"$work/looprelay" -listen 127.0.0.1:$LOOP_PORT -target 127.0.0.1:$TARGET_PORT >"$work/looprelay.log" 2>&1 &
pids+=($!)
# Each server must answer before anything is measured: they start at their
# own pace, and a request to a port nobody listens on yet fails. At most
# 10 s each.
for name in "${names[@]}"; do
	port=$(port_of "$name")
	end=$((SECONDS + 10))
	until curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/api/projects/7/"; do
		if ((SECONDS >= end)); then
			echo "capture.sh: $name does not answer on 127.0.0.1:$port after 10 s" >&2
			exit 1
		fi
		sleep 0.1
	done
done
# The pid file is there once nginx answers. The workers too, to stop them
# should the master not.
nginx_pids=("$(cat "$work/nginx.pid")")
nginx_pids+=($(pgrep -P "${nginx_pids[0]}" || true))

# 1,000 users: each request carries one of 1,000 session cookies, so the
# capture records 1,000 sessions rather than one endless one.
cat >"$work/users.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/projects/7/", { Cookie = "sessionid=user" .. (n % 1000) })
end
LUA
targets() {
	for i in $(seq 0 999); do
		printf 'GET http://127.0.0.1:%s/api/projects/7/\nCookie: sessionid=user%s\n\n' "$1" "$i"
	done
}

# latency.py ROUND: vegeta's results as CSV on stdin; prints each path's
# p50 and p99 in µs, or, if any request failed, how many on each path and
# why, and fails.
cat >"$work/latency.py" <<'PY'
import collections, csv, sys
rnd, pairs = sys.argv[1], sys.argv[2:]
ports = dict(zip(pairs[1::2], pairs[0::2]))
lat = {n: [] for n in pairs[0::2]}
failed = collections.Counter()
for row in csv.reader(sys.stdin):
    name = ports[row[10].split(":")[2].split("/")[0]]
    if row[1] != "200":
        failed[name, row[1], row[5]] += 1
        continue
    lat[name].append(int(row[2]) / 1000)
if failed:
    for (name, code, err), n in failed.most_common(10):
        print(f"capture.sh: {n} requests to {name} failed: status {code} {err}", file=sys.stderr)
    sys.exit(1)
for name, v in lat.items():
    if v:
        v.sort()
        print(name, rnd, v[len(v) // 2], v[len(v) * 99 // 100])
PY
port_pairs=()
for name in "${names[@]}"; do port_pairs+=("$name" "$(port_of "$name")"); done
# attack SECONDS ARGS...: vegeta, at most CONNS connections to each path
# and as many kept idle, so that a stall does not make it open one per
# request in flight; killed if still running SECONDS later.
attack() {
	timeout --foreground -k 5 "$1" vegeta attack -keepalive=true -max-connections "$CONNS" -connections "$CONNS" "${@:2}"
}
# Ports a measurement may take: its clients' and, behind a proxy, as many
# towards the target.
need_of() { if [ "$1" = direct ]; then echo "$CONNS"; else echo $((2 * CONNS)); fi; }

warm() {
	attack 40 -targets "$work/targets-$1.txt" -rate 500 -duration 2s |
		vegeta encode --to csv | python3 "$work/latency.py" warm "${port_pairs[@]}" >/dev/null
}
for name in "${names[@]}"; do
	targets "$(port_of $name)" >"$work/targets-$name.txt"
	# Warm up connections and caches.
	measure "warm-up $name" "$(need_of "$name")" warm "$name"
done
# Latency drifts by tens of microseconds from one minute to the next here,
# more than the proxies differ. So the three paths are measured in the same
# run: vegeta takes the targets in turn, each path at RATE,
# and the results are split by port. ROUNDS runs, medians compared.
for i in $(seq 0 999); do
	for name in "${names[@]}"; do
		printf 'GET http://127.0.0.1:%s/api/projects/7/\nCookie: sessionid=user%s\n\n' "$(port_of "$name")" "$i"
	done
done >"$work/targets-mixed.txt"
: >"$work/latency.txt"
round() {
	attack $((secs + 40)) -targets "$work/targets-mixed.txt" -rate $((${#names[@]} * RATE)) -duration "$DURATION" |
		vegeta encode --to csv | python3 "$work/latency.py" "$1" "${port_pairs[@]}" >>"$work/latency.txt"
}
round_need=0
for name in "${names[@]}"; do round_need=$((round_need + $(need_of "$name"))); done
for r in $(seq "$ROUNDS"); do
	measure "round $r (all paths)" "$round_need" round "$r"
done
# max_rate PATH: wrk's highest rate on one path, into $work/wrk-PATH.txt.
max_rate() {
	timeout --foreground -k 5 $((secs + 30)) wrk -t2 -c"$CONNS" -d"$DURATION" -s "$work/users.lua" \
		"http://127.0.0.1:$(port_of "$1")/api/projects/7/" >"$work/wrk-$1.txt"
	# Failed requests are a broken path, not a slow one: stop, as for
	# vegeta. Timeouts (2 s) are only counted: this machine is shared.
	if grep -Eq 'Socket errors:.*(connect|read|write) [1-9]|Non-2xx' "$work/wrk-$1.txt"; then
		echo "capture.sh: wrk on $1:" >&2
		cat "$work/wrk-$1.txt" >&2
		exit 1
	fi
}
rps=()
for name in "${names[@]}"; do
	measure "wrk $name" "$(need_of "$name")" max_rate "$name"
	rps+=($(awk '/Requests\/sec/ {print $2}' "$work/wrk-$name.txt"))
	sed -n "s/^ *Socket errors:/wrk $name, socket errors:/p" "$work/wrk-$name.txt"
done

stop "${pids[0]}" "${pids[1]}"
summary=$(grep -E '^(captured|sessions|exchanges)' "$work/capture.log" | tr -s ' ')
summary_loop=$(grep -E '^(captured|sessions|exchanges)' "$work/capture-loop.log" | tr -s ' ')

python3 - "$work/latency.txt" "$RATE" "$DURATION" "$CONNS" "$ROUNDS" "${names[@]}" "${rps[@]}" <<'PY'
import statistics, sys
path, rate, dur, conns, rounds = sys.argv[1:6]
n = (len(sys.argv) - 6) // 2
names, rps = sys.argv[6:6 + n], dict(zip(sys.argv[6:6 + n], map(float, sys.argv[6 + n:])))
lat = {}
for line in open(path):
    name, rnd, p50, p99 = line.split()
    lat.setdefault(name, []).append((float(p50), float(p99)))
med = {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for k, v in lat.items()}
print(f"capture proxy vs nginx reverse proxy and bare Go relays (goroutines; event loop), static 1 KB JSON target, loopback, {dur} per measurement")
print(f"latency at a fixed {rate} req/s each, all interleaved request by request in one vegeta run (keep-alive, at most {conns} connections a path), µs, median of {rounds} rounds;")
print(f"max rate (wrk, 2 threads, {conns} connections)")
print(f"{'':9} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10} {'req/s':>10}   p50 by round")
d50, d99 = med["direct"]
for name in names:
    a, b = med[name]
    rounds_ = " ".join(f"{x:.0f}" for x, _ in lat[name])
    print(f"{name:9} {a:8.0f} {b:8.0f} {a-d50:10.0f} {b-d99:10.0f} {rps[name]:10.0f}   {rounds_}")
added = {k: max(med[k][0] - d50, 1) for k in names}
print("added p50 against nginx's: " + ", ".join(f"{k} {added[k]/added['nginx']:.2f}" for k in names if k not in ("direct", "nginx"))
      + " (goal <= 1.5 for thrive)")
print(f"max rate: thrive {rps['thrive']:.0f} req/s, thrive --event-loop {rps['thriveloop']:.0f} (goal >= 20000); nginx {rps['nginx']:.0f}")
PY
echo "capture: $summary"
echo "capture --event-loop: $summary_loop"
read -r tw_end ours_end _ free_end < <(sockets)
echo "sockets in TIME-WAIT: $tw_start at the start, $tw_end at the end ($ours_start -> $ours_end the bench's); fewest ephemeral ports free before a measurement: $min_free of $port_range"
