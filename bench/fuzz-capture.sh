#!/usr/bin/env bash
# Fuzzes the capture over real sockets, on both relays, for FUZZTIME each
# (30m by default): FuzzRelay throws fuzzed bytes, cut and
# closed at fuzzed places, at one running capture and checks after each input
# that it still relays a good request. A crash or a capture that stops
# serving fails the run, and the input that did it lands in
# capture/testdata/fuzz/FuzzRelay.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30m}
echo "== goroutine relay, $FUZZTIME"
go test -run XXX -fuzz 'FuzzRelay$' -fuzztime "$FUZZTIME" ./capture/
echo "== event loops (--event-loop), $FUZZTIME"
THRIVE_CAPTURE_LOOP=1 go test -run XXX -fuzz 'FuzzRelay$' -fuzztime "$FUZZTIME" ./capture/
echo "== forward proxy (no target: CONNECT and absolute-form request lines), $FUZZTIME"
go test -run XXX -fuzz 'FuzzForward$' -fuzztime "$FUZZTIME" ./capture/
