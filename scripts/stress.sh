#!/usr/bin/env bash
# Flood stress: generate (if missing) and replay 10 M-packet floods (random-source SYNs,
# DNS water torture, fragment floods, a mix) with capped tables, then check that
#   - evictions/overflows are counted (summary JSON),
#   - peak RSS (GNU time %M) stays under the bound derived from the caps (docs/hardening.md),
#   - every legitimate flow and DNS transaction mixed into the flood is in eve.json.
#
#   STRESS_PACKETS=10000000  packets per flood
#   STRESS_KINDS="syn water-torture fragments mixed"
#   STRESS_DIR=bench-data/floods   captures (large: ~1 GB each at 10 M; never in the repo)
#   STRESS_RSS_MB=              override the RSS bound (MB)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PACKETS=${STRESS_PACKETS:-10000000}
KINDS=${STRESS_KINDS:-syn water-torture fragments mixed}
DIR=${STRESS_DIR:-$ROOT/bench-data/floods}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
KIZUKI=$TARGET_DIR/release/kizuki
GEN=$TARGET_DIR/release/kizuki-gen
TIME=/usr/bin/time

# The caps under test.
MAX_FLOWS=200000
MAX_DATAGRAMS=4096
MAX_FRAG_BYTES=$((16 << 20))
MAX_PENDING=50000
WORKERS=${STRESS_WORKERS:-2}
# Bound: a fixed base (binary, libpcap buffers, batches in flight, EVE buffers) plus a
# generous per-entry cost for every capped table (measured ~0.3-0.5 KB per flow and per
# pending DNS query; fragment bytes are capped directly). See docs/hardening.md.
BASE_MB=96
FLOW_KB=1
DNS_KB=1
BOUND_MB=${STRESS_RSS_MB:-$((BASE_MB + MAX_FLOWS * FLOW_KB / 1024 + MAX_PENDING * DNS_KB / 1024 + (MAX_FRAG_BYTES >> 20) * 2 + MAX_DATAGRAMS / 1024))}

[ -x "$TIME" ] || { echo "stress: GNU time (/usr/bin/time) is required (apt-get install time)" >&2; exit 1; }
mkdir -p "$DIR"
avail_gb=$(df -Pk "$DIR" | awk 'NR==2 {print int($4 / 1048576)}')
need_gb=$(( PACKETS / 1000000 * 2 + 2 ))
if [ "$avail_gb" -lt "$need_gb" ]; then
  echo "stress: only ${avail_gb} GB free under $DIR (need ~${need_gb} GB per flood incl. eve.json)" >&2
  exit 1
fi
cargo build --release -q -p kizuki --bin kizuki -p kizuki-tests --bin kizuki-gen

CFG=$DIR/stress.toml
cat >"$CFG" <<TOML
[pipeline]
workers = $WORKERS
[flow]
max_flows = $MAX_FLOWS
[fragments]
max_datagrams = $MAX_DATAGRAMS
max_bytes = $MAX_FRAG_BYTES
[dns]
max_pending = $MAX_PENDING
[output]
rotate_size_mb = 0
TOML

rows=()
status=0
for kind in $KINDS; do
  pcap=$DIR/$kind-$PACKETS.pcap
  if [ ! -s "$pcap" ] || [ ! -s "$pcap.expected.json" ]; then
    "$GEN" floods --kind "$kind" --packets "$PACKETS" --out "$pcap" >&2
  fi
  out=$DIR/out-$kind
  rm -rf "$out"
  mkdir -p "$out"
  "$TIME" -f %M -o "$out/rss_kb" "$KIZUKI" replay -c "$CFG" --out "$out" \
    --summary-json "$out/summary.json" "$pcap" >"$out/stdout" 2>"$out/stderr" || {
      echo "stress: $kind: kizuki failed, see $out/stderr" >&2; status=1; continue; }
  rss_kb=$(tail -n1 "$out/rss_kb")
  check_rc=0
  check=$("$GEN" floods-check --expected "$pcap.expected.json" --eve-dir "$out" \
    --summary "$out/summary.json" 2>"$out/check.err") || check_rc=$?
  s=$out/summary.json
  rss_mb=$((rss_kb / 1024))
  verdict=ok
  [ $check_rc -eq 0 ] || verdict="FAIL: $(cat "$out/check.err" | head -c 300)"
  if [ $rss_mb -gt "$BOUND_MB" ]; then verdict="FAIL: RSS ${rss_mb} MB > ${BOUND_MB} MB"; fi
  [ "$verdict" = ok ] || status=1
  rows+=("$(printf '%-14s %9s %7.1f %9s %8s %9s %9s %9s %9s %9s %7s %7s  %s' \
    "$kind" "$(jq -r .packets "$s")" "$(jq -r .wall_seconds "$s")" \
    "$(jq -r '.packets_per_second | floor' "$s")" "$rss_mb" \
    "$(jq -r .flows_evicted "$s")" "$(jq -r .dns_pending_overflow "$s")" \
    "$(jq -r .decode_errors.frag_table_full "$s")" "$(jq -r .decode_errors.frag_overlap "$s")" \
    "$(jq -r .eve_events "$s")" \
    "$(echo "$check" | jq -r '"\(.flows_found)/\(.flows_expected)"' 2>/dev/null || echo '?')" \
    "$(echo "$check" | jq -r '"\(.dns_found)/\(.dns_expected)"' 2>/dev/null || echo '?')" \
    "$verdict")")
  # eve.json of a 10 M flood is several GB: keep only the summary and the check.
  echo "$check" >"$out/check.json"
  [ -n "${STRESS_KEEP_EVE:-}" ] || rm -f "$out"/eve.json*
done

echo
echo "caps: max_flows=$MAX_FLOWS fragments.max_datagrams=$MAX_DATAGRAMS fragments.max_bytes=$MAX_FRAG_BYTES dns.max_pending=$MAX_PENDING workers=$WORKERS; RSS bound ${BOUND_MB} MB"
printf '%-14s %9s %7s %9s %8s %9s %9s %9s %9s %9s %7s %7s  %s\n' \
  flood packets wall_s pkt/s rss_MB flows_ev dns_ovfl frag_full frag_ovl eve_evts flows dns verdict
for r in "${rows[@]}"; do echo "$r"; done
exit $status
