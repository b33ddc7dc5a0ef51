#!/usr/bin/env bash
# What a live page costs the replay (issue: "a bench run shows the CPU per
# request with --web and a page open within 2% of without"). The same
# replay of a demo trace (fixed seed, users and run time) runs without
# --web, then with --web and a page open for the whole run, ROUNDS times,
# taking turns (off, page; page, off; ...) so that a drifting machine
# weighs on both alike. Each run's CPU time (user + sys of the thrive
# process, /usr/bin/time) is divided by the requests it sent (the result
# file's "requests"). Target on core 0, thrive on core 1. Loopback only.
#
# The page is a client of /events, the stream of frames: curl -sN by
# default, or a headless Chromium on the page itself (PAGE=chromium). Either
# runs on core 0 with the target: the browser's own CPU is not thrive's, and
# is not counted. Every run starts LEAD seconds after its process
# (--start-at), so that the page is open before the first request; the
# script waits (bounded) until the page server has said where it listens and
# the client is connected. --web-linger 1ms ends the process as the run
# ends (without it the page stays up until Ctrl-C); a process lingering
# spends next to no CPU anyway. What --web costs beyond the frames, the
# end's downloads (the HTML report and Locust CSVs written for the page),
# counts: it is part of running with --web.
#
# With PROFILE=1 every run also writes a CPU profile (--cpuprofile), and the
# script prints the share of each run's samples spent making and serving
# the page's frames (app's pageFrames, package live): a figure the
# machine's noise weighs on far less than on the difference of two runs.
#
#   bash bench/web.sh                              # 200 users, 20 s, 5 rounds
#   ROUNDS=1 DURATION=5 bash bench/web.sh          # a quick check that it runs
#   PAGE=chromium bash bench/web.sh                # a real page instead of curl
#   PROFILE=1 bash bench/web.sh                    # and what the page costs, from profiles
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-200}
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-5}
SEED=${SEED:-1}
LEAD=${LEAD:-3}
PAGE=${PAGE:-curl}
PROFILE=${PROFILE:-0}
PORT=18130
WEB_PORT=18131
case $PAGE in
curl | chromium) ;;
*) echo "web.sh: PAGE=$PAGE: want curl or chromium" >&2; exit 2 ;;
esac
source bench/lib.sh

go build -o "$work/thrive" ./cmd/thrive
# The trace: thrive demo drives 60 sessions (browse, chat, import) through
# the capture proxy in front of its own backend on a loopback port, its
# waits divided by 50, and replays it briefly (1 user, 1 s), which we ignore.
"$work/thrive" demo --out "$work/demo.thrv" --sessions 60 --users 1 --run-time 1s --html "$work/tour.html" >"$work/tour.log" 2>&1
# The target: the demo backend without its rate limit, its import jobs as
# long as when recorded (3 s / 50), so that the recorded polls see them done.
taskset -c 0 "$work/thrive" demo serve --listen 127.0.0.1:$PORT --rate-limit 0 --latency job=60ms >"$work/demo.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/api/projects/7/" >/dev/null && break; sleep 0.1; done

# open_page RUN: waits until the replay of RUN says where its page is,
# opens it with PAGE, and waits until the page's stream of events is
# connected; each wait bounded by LEAD seconds. The client's pid goes to
# $client.
open_page() {
	local run=$1
	for _ in $(seq $((LEAD * 50))); do
		grep -q '^live page of the run at ' "$run.log" 2>/dev/null && break
		sleep 0.02
	done
	if ! grep -q '^live page of the run at ' "$run.log"; then
		echo "web.sh: no live page after ${LEAD}s:" >&2
		cat "$run.log" >&2
		return 1
	fi
	if [ "$PAGE" = chromium ]; then
		taskset -c 0 chromium --headless=new --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
			--disable-component-update --disable-sync --disable-default-apps --user-data-dir="$work/chromium" \
			"http://127.0.0.1:$WEB_PORT/" >"$run.page" 2>&1 &
	else
		taskset -c 0 curl -sN "http://127.0.0.1:$WEB_PORT/events" >"$run.page" &
	fi
	client=$!
	for _ in $(seq $((LEAD * 50))); do
		[ -n "$(ss -tnH state established "( sport = :$WEB_PORT )")" ] && break
		sleep 0.02
	done
	if [ -z "$(ss -tnH state established "( sport = :$WEB_PORT )")" ]; then
		echo "web.sh: the page did not connect within ${LEAD}s" >&2
		kill "$client" 2>/dev/null || true
		return 1
	fi
}

# run MODE ROUND: one replay, without --web (MODE off) or with --web and a
# page open (MODE page), bounded by timeout; its CPU seconds go to
# $work/MODE-ROUND.time, its results to $work/MODE-ROUND.json.
run() {
	local mode=$1 run="$work/$1-$2" start pid
	client=""
	start=$(date -u -d "+$LEAD seconds" +%Y-%m-%dT%H:%M:%S.%NZ)
	local args=("$work/thrive" replay "$work/demo.thrv" --target "http://127.0.0.1:$PORT" --users "$USERS" --run-time "${DURATION}s"
		--seed "$SEED" --start-at "$start" --quiet --stop-timeout 5s --out "$run.json")
	[ "$mode" = page ] && args+=(--web "127.0.0.1:$WEB_PORT" --web-linger 1ms)
	[ "$PROFILE" = 1 ] && args+=(--cpuprofile "$run.prof")
	timeout $((LEAD + DURATION + 30)) /usr/bin/time -f '%U %S' -o "$run.time" taskset -c 1 "${args[@]}" >"$run.log" 2>&1 &
	pid=$!
	if [ "$mode" = page ] && ! open_page "$run"; then
		kill "$pid" 2>/dev/null || true
		exit 1
	fi
	if ! wait "$pid"; then
		echo "web.sh: the $mode replay of round $2 failed:" >&2
		cat "$run.log" >&2
		exit 1
	fi
	if [ -n "$client" ]; then
		# curl ends when the page server closes the stream; a browser
		# would retry: end it.
		[ "$PAGE" = chromium ] && kill "$client" 2>/dev/null
		wait "$client" 2>/dev/null || true
	fi
	if [ "$PROFILE" = 1 ]; then
		# The header of a focused top: "Showing nodes accounting for
		# 0.19s, 5.62% of 3.38s total", every node shown.
		go tool pprof -top -nodecount=1000000 -nodefraction=0 -focus='pageFrames|report/live\.' "$work/thrive" "$run.prof" 2>/dev/null |
			sed -n 's/^Showing nodes accounting for \([0-9.]*m*s\), \([0-9.]*\)% of \([0-9.]*m*s\) total$/\1 \2 \3/p' >"$run.share"
	fi
}

echo "thrive replay of a demo trace, $USERS users, ${DURATION}s, seed $SEED: without --web, and with --web and a page open ($PAGE); $ROUNDS rounds taking turns; demo backend on core 0, thrive on core 1"
for i in $(seq "$ROUNDS"); do
	if [ $((i % 2)) = 1 ]; then
		run off "$i"; run page "$i"
	else
		run page "$i"; run off "$i"
	fi
done

python3 - "$work" "$ROUNDS" "$PAGE" "$PROFILE" <<'PY'
import json, os, statistics, sys
work, rounds, page, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
def figures(mode, i):
    run = f"{work}/{mode}-{i}"
    res = json.load(open(f"{run}.json"))
    u, s = map(float, open(f"{run}.time").read().split()[-2:])
    frames = ""
    if mode == "page" and page == "curl":
        frames = sum(1 for line in open(f"{run}.page") if line.startswith("data: "))
    share = ""
    if profile:
        # No line: no sample was in the page's code.
        text = open(f"{run}.share").read().split() if os.path.exists(f"{run}.share") else []
        share = float(text[1]) if text else 0.0
    return res["requests"], res["failures"], u + s, 1e6 * (u + s) / max(res["requests"], 1), frames, share
print(f"{'round':>5} {'--web':>6} {'requests':>9} {'failures':>8} {'CPU s':>7} {'µs/request':>10} {'frames':>6}"
      + (f" {'page % of profile':>17}" if profile else ""))
per = {"off": [], "page": []}
shares = []
for i in range(1, rounds + 1):
    for mode in ("off", "page") if i % 2 else ("page", "off"):
        req, fail, cpu, us, frames, share = figures(mode, i)
        per[mode].append(us)
        if profile and mode == "page":
            shares.append(share)
        print(f"{i:5} {mode:>6} {req:9} {fail:8} {cpu:7.2f} {us:10.1f} {frames:>6}"
              + (f" {share:16.1f}%" if profile else ""))
off, on = statistics.median(per["off"]), statistics.median(per["page"])
ratio = on / off
print(f"median CPU µs per request: without --web {off:.1f}, with --web and a page open {on:.1f}")
print(f"with/without {ratio:.3f} ({100 * (ratio - 1):+.1f}%): goal within 2%: {'met' if abs(ratio - 1) <= 0.02 else 'NOT met'}")
if profile:
    print(f"median share of the profile in the page's code (frames made and sent): {statistics.median(shares):.1f}%")
PY
