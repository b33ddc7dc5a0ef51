#!/usr/bin/env bash
# Benchmarks thrive's forward proxy with interception (thrive capture with no
# target: CONNECT, TLS terminated with its own CA, TLS to the origin,
# recording on) side by side with mitmproxy (Debian's mitmdump, writing its
# flows), on the same HTTPS traffic on loopback in one run: a static 1 KB
# JSON answer from nginx over TLS, asked at a fixed rate through keep-alive
# CONNECT tunnels (bench/proxyload). It prints each path's latency, what each
# proxy adds to the direct path, and each proxy's CPU time per request, read
# from /proc, with the ratios. Loopback only; every run is bounded.
#
#   bash bench/forward-proxy.sh              # 10 s per measurement, 3 rounds, 100 req/s (mitmproxy saturates one core near 200)
#   DURATION=20s RATE=400 bash bench/forward-proxy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-100}
CONNS=${CONNS:-16}
ORIGIN_PORT=18443 THRIVE_PORT=18090 MITM_PORT=18091

if ! need nginx || ! need mitmdump || ! need openssl; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light mitmproxy openssl >/dev/null
fi
go build -o "$work/thrive" ./cmd/thrive
go build -o "$work/proxyload" ./bench/proxyload

# The origin: nginx over TLS with a certificate of its own, which both
# proxies are told to trust, as they would trust a public CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=origin \
	-addext "subjectAltName=IP:127.0.0.1" -keyout "$work/origin-key.pem" -out "$work/origin.pem" 2>/dev/null
body=$(python3 -c 'import json; print(json.dumps({"id": 7, "title": "Video summary agent", "description": "word " * 150, "tags": ["agent", "video"], "stars": 1234}))')
mkdir -p "$work/logs"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
error_log $work/error.log warn;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT ssl;
    ssl_certificate $work/origin.pem;
    ssl_certificate_key $work/origin-key.pem;
    location / { default_type application/json; return 200 '$body'; }
  }
}
CONF
nginx -p "$work" -c nginx.conf
trap 'nginx -p "$work" -c nginx.conf -s stop 2>/dev/null || true; cleanup' EXIT

XDG_CONFIG_HOME="$work/config" SSL_CERT_FILE="$work/origin.pem" "$work/thrive" capture --quiet \
	--listen 127.0.0.1:$THRIVE_PORT --out "$work/forward.thrv" --session-idle 2s >"$work/capture.log" 2>&1 &
pids+=($!)
thrive_pid=$!
mitmdump --listen-host 127.0.0.1 --listen-port $MITM_PORT --set confdir="$work/mitm" \
	--set ssl_verify_upstream_trusted_ca="$work/origin.pem" -q -w "$work/mitm.flows" >"$work/mitm.log" 2>&1 &
pids+=($!)
mitm_pid=$!
url=https://127.0.0.1:$ORIGIN_PORT/api/projects/7/
for _ in $(seq 100); do
	[ -f "$work/config/thrive/ca.pem" ] && [ -f "$work/mitm/mitmproxy-ca-cert.pem" ] &&
		curl -fs --cacert "$work/config/thrive/ca.pem" -x http://127.0.0.1:$THRIVE_PORT "$url" >/dev/null &&
		curl -fs --cacert "$work/mitm/mitmproxy-ca-cert.pem" -x http://127.0.0.1:$MITM_PORT "$url" >/dev/null && break
	sleep 0.2
done
curl -fs --cacert "$work/origin.pem" "$url" >/dev/null || { echo "the origin does not answer" >&2; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
load() { # name proxy-url ca
	"$work/proxyload" -name "$1" -url "$url" ${2:+-proxy "$2"} -cacert "$3" -rate "$RATE" -duration "$DURATION" -conns "$CONNS"
}
declare -A proxy=([direct]="" [thrive]=http://127.0.0.1:$THRIVE_PORT [mitmproxy]=http://127.0.0.1:$MITM_PORT)
declare -A ca=([direct]="$work/origin.pem" [thrive]="$work/config/thrive/ca.pem" [mitmproxy]="$work/mitm/mitmproxy-ca-cert.pem")
declare -A pid=([thrive]=$thrive_pid [mitmproxy]=$mitm_pid)
names=(direct thrive mitmproxy)
for name in "${names[@]}"; do # warm up connections and certificates
	RATE=$RATE DURATION=2s "$work/proxyload" -name "$name" -url "$url" ${proxy[$name]:+-proxy "${proxy[$name]}"} -cacert "${ca[$name]}" -rate "$RATE" -duration 2s -conns "$CONNS" >/dev/null
done
: >"$work/results.txt"
for round in $(seq "$ROUNDS"); do
	for name in "${names[@]}"; do
		before=0
		[ -n "${pid[$name]:-}" ] && before=$(ticks "${pid[$name]}")
		line=$(load "$name" "${proxy[$name]}" "${ca[$name]}")
		used=0
		[ -n "${pid[$name]:-}" ] && used=$(($(ticks "${pid[$name]}") - before))
		echo "$line $round $used" >>"$work/results.txt"
	done
done
kill -INT "$thrive_pid"; wait "$thrive_pid" || true
summary=$(grep -E '^captured' "$work/capture.log" || true)

python3 - "$work/results.txt" "$hz" "$RATE" "$DURATION" "$ROUNDS" "$CONNS" <<'PY'
import statistics, sys
path, hz, rate, dur, rounds, conns = sys.argv[1:]
hz = int(hz)
rows = {}
for line in open(path):
    name, n, errs, p50, p90, p99, rnd, ticks = line.split()
    rows.setdefault(name, []).append((int(n), int(errs), float(p50), float(p90), float(p99), int(ticks)))
def med(name, i):
    return statistics.median(r[i] for r in rows[name])
print(f"forward proxy with interception: thrive capture (no target) vs mitmproxy (mitmdump -w), HTTPS origin (nginx, 1 KB JSON) on loopback")
print(f"{rate} req/s for {dur}, {conns} keep-alive CONNECT tunnels, {rounds} rounds, medians; latency from each request's due time, µs; CPU from /proc")
print(f"{'':10} {'p50':>8} {'p90':>8} {'p99':>8} {'added p50':>10} {'added p99':>10} {'CPU µs/req':>11} {'errors':>7}")
d50, d99 = med("direct", 2), med("direct", 4)
cpu = {}
for name in ("direct", "thrive", "mitmproxy"):
    reqs = sum(r[0] for r in rows[name])
    cpu[name] = sum(r[5] for r in rows[name]) / hz / reqs * 1e6
    errs = sum(r[1] for r in rows[name])
    c = f"{cpu[name]:11.0f}" if name != "direct" else f"{'':>11}"
    print(f"{name:10} {med(name, 2):8.0f} {med(name, 3):8.0f} {med(name, 4):8.0f} {med(name, 2) - d50:10.0f} {med(name, 4) - d99:10.0f} {c} {errs:7d}")
a99 = {k: max(med(k, 4) - d99, 1) for k in ("thrive", "mitmproxy")}
a50 = {k: max(med(k, 2) - d50, 1) for k in ("thrive", "mitmproxy")}
print(f"thrive / mitmproxy: CPU per request {cpu['thrive'] / cpu['mitmproxy']:.2f} (goal <= 0.2), "
      f"added p50 {a50['thrive'] / a50['mitmproxy']:.2f}, added p99 {a99['thrive'] / a99['mitmproxy']:.2f} (goal < 1)")
PY
echo "thrive: $summary"
