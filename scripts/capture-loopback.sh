#!/usr/bin/env bash
# Records pcaps/lo-dig.pcap and pcaps/lo-curl.pcap from real tools on the loopback interface
# and writes the matching .expected.json files (derived from the captures with tshark, see
# scripts/loopback_expected.py). Needs root (tcpdump -i lo, port 53/80), dnsmasq, dig, curl,
# python3, tcpdump, tshark. Everything it starts is stopped again on exit.
#
#   lo-dig.pcap : dnsmasq on $SERVER:53 (local records: A, AAAA, CNAME, MX, TXT, a wildcard
#                 --address, NXDOMAIN inside a --local domain, REFUSED outside it); dig over
#                 UDP and over TCP (+tcp).
#   lo-curl.pcap: python3 -m http.server on $SERVER:$HTTP_PORT; two curl GETs with HTTP Host
#                 names (200 and 404).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/sbin:/sbin"

SERVER=${SERVER:-127.0.0.2}
HTTP_PORT=${HTTP_PORT:-80}
OUT=${OUT:-pcaps}

die() { echo "capture-loopback: error: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (tcpdump on lo, ports 53 and $HTTP_PORT)"
for t in dnsmasq dig curl python3 tcpdump tshark; do
  command -v "$t" >/dev/null || die "$t not found (run: make deps)"
done

port_busy() { # proto addr port
  python3 - "$@" <<'PY'
import socket, sys
proto, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
try:
    s.bind((addr, port))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}
port_busy udp "$SERVER" 53 && die "$SERVER:53/udp is in use"
port_busy tcp "$SERVER" 53 && die "$SERVER:53/tcp is in use"
port_busy tcp "$SERVER" "$HTTP_PORT" && die "$SERVER:$HTTP_PORT/tcp is in use"

TMP=$(mktemp -d /tmp/kizuki-capture.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# start_tcpdump FILE FILTER: starts tcpdump and waits until it is listening.
start_tcpdump() {
  local file=$1 filter=$2 log="$TMP/tcpdump.$RANDOM.log"
  rm -f "$file"
  tcpdump -i lo --immediate-mode -U -n -s 0 -Z root -w "$file" "$filter" 2>"$log" &
  TCPDUMP_PID=$!
  PIDS+=("$TCPDUMP_PID")
  for _ in $(seq 100); do
    grep -q "listening on" "$log" && return 0
    sleep 0.05
  done
  cat "$log" >&2
  die "tcpdump did not start"
}
stop_tcpdump() {
  sleep 1.2  # let the kernel ring buffer hand over its last block
  kill -INT "$TCPDUMP_PID"
  wait "$TCPDUMP_PID" || true
}

# ---- DNS: dnsmasq + dig -------------------------------------------------------------------
dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --user=root --pid-file= \
  --listen-address="$SERVER" --bind-interfaces --port=53 --local-ttl=300 \
  --local=/example.test/ \
  --host-record=www.example.test,127.0.0.20,fd00::20 \
  --host-record=mail.example.test,127.0.0.25 \
  --cname=alias.example.test,www.example.test \
  --mx-host=example.test,mail.example.test,10 \
  --txt-record=example.test,"v=kizuki test" \
  --address=/wild.test/127.0.0.10 \
  2>"$TMP/dnsmasq.log" &
PIDS+=($!)
for _ in $(seq 100); do
  dig +short +tries=1 +time=1 @"$SERVER" www.example.test A >/dev/null 2>&1 && break
  sleep 0.05
done
dig +short +tries=1 +time=1 @"$SERVER" www.example.test A | grep -q 127.0.0.20 \
  || { cat "$TMP/dnsmasq.log" >&2; die "dnsmasq did not answer"; }

start_tcpdump "$OUT/lo-dig.pcap" "host $SERVER and port 53"
q() { dig +tries=1 +time=2 @"$SERVER" "$@" >>"$TMP/dig.out"; sleep 0.1; }
q www.example.test A
q www.example.test AAAA
q alias.example.test A
q example.test MX
q example.test TXT
q nope.example.test A
q host.wild.test A
q outside.invalid A || true  # REFUSED
q +tcp www.example.test A
q +tcp example.test TXT
q +tcp nope.example.test AAAA
stop_tcpdump

# ---- HTTP: python3 http.server + curl ---------------------------------------------------------
mkdir -p "$TMP/www"
echo "hello from kizuki's loopback capture" >"$TMP/www/hello.txt"
python3 -m http.server "$HTTP_PORT" --bind "$SERVER" --directory "$TMP/www" 2>"$TMP/http.log" &
PIDS+=($!)
for _ in $(seq 100); do
  curl -s -o /dev/null "http://$SERVER:$HTTP_PORT/" && break
  sleep 0.05
done
start_tcpdump "$OUT/lo-curl.pcap" "host $SERVER and tcp port $HTTP_PORT"
curl -sS -o /dev/null --resolve "www.example.test:$HTTP_PORT:$SERVER" "http://www.example.test:$HTTP_PORT/hello.txt"
sleep 0.1
curl -sS -o /dev/null --resolve "files.example.test:$HTTP_PORT:$SERVER" "http://files.example.test:$HTTP_PORT/missing.txt" || true
stop_tcpdump

# ---- expectations --------------------------------------------------------------------------
for f in lo-dig lo-curl; do
  python3 scripts/loopback_expected.py "$OUT/$f.pcap" >"$OUT/$f.expected.json"
  echo "wrote $OUT/$f.pcap ($(stat -c %s "$OUT/$f.pcap") bytes) and $OUT/$f.expected.json"
done
