#!/usr/bin/env bash
# Kizuki throughput and memory benchmark.
#
# 1. Throughput: on one deterministic capture (kizuki-gen bench, 2 M packets by default), times
#    in the same run, BENCH_REPS times each (median):
#      tcpdump -r FILE -w /dev/null            (libpcap read + write floor)
#      softflowd -r FILE -n 127.0.0.1:9        (a flow exporter reading the same file)
#      kizuki replay --out DIR FILE            (default config: every feature on, EVE to disk)
#      the same with every detector off, and with only the beacon analyzer off
#    and prints packets/s, the ratios kizuki/softflowd and kizuki/tcpdump, peak RSS, and what
#    the detectors and the beacon analyzer cost (throughput and CPU time, on vs off).
# 2. Memory per flow: replays kizuki-gen flows (1 M concurrent flows by default) with
#    flow.max_flows >= 1.2 M and reports (peak RSS - peak RSS of a tiny replay) / flows, for
#    the sensor core (every detector off) and for the default config.
#
# Environment: BENCH_PACKETS (2000000), BENCH_FLOWS (1000000), BENCH_REPS (3),
# BENCH_DIR (bench-data), BENCH_NO_BUILD=1 to skip `cargo build --release`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/sbin:/sbin"

PACKETS=${BENCH_PACKETS:-2000000}
FLOWS=${BENCH_FLOWS:-1000000}
REPS=${BENCH_REPS:-3}
DIR=${BENCH_DIR:-bench-data}
TARGET=${CARGO_TARGET_DIR:-target}
KIZUKI=$TARGET/release/kizuki
GEN=$TARGET/release/kizuki-gen
GNU_TIME=/usr/bin/time

die() { echo "bench: error: $*" >&2; exit 1; }

for t in tcpdump softflowd python3; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (run: make deps)"
done
[ -x "$GNU_TIME" ] && "$GNU_TIME" -f %M true >/dev/null 2>&1 \
  || die "GNU time ($GNU_TIME) not found (run: make deps)"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p kizuki -p kizuki-tests --bins || die "cargo build failed"
fi
[ -x "$KIZUKI" ] || die "$KIZUKI not built (make build)"
[ -x "$GEN" ] || die "$GEN not built (make build)"

mkdir -p "$DIR"
WORK=$(mktemp -d "$DIR/.run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# gen FILE ARGS...: runs kizuki-gen once into FILE unless FILE exists (deterministic output).
gen() {
  local file=$1; shift
  [ -s "$file" ] && return 0
  echo "bench: generating $file (kizuki-gen $*)" >&2
  local part
  part="$(dirname "$file")/.partial-$(basename "$file")"
  rm -f "$part"
  "$GEN" "$@" --out "$part" >/dev/null || { rm -f "$part"; die "kizuki-gen $* failed"; }
  mv "$part" "$file"
}

# count FILE: packets in a capture.
count() {
  if command -v capinfos >/dev/null 2>&1; then
    capinfos -c -M -T -r "$1" 2>/dev/null | awk -F'\t' 'NF >= 2 { print $2; exit }'
  else
    tcpdump -r "$1" -n -q 2>/dev/null | wc -l
  fi
}

# timed LABEL CMD...: runs CMD once; appends "seconds maxrss_kb" to $WORK/LABEL.
timed() {
  local label=$1; shift
  local t0 t1 st=0
  t0=$(date +%s%N)
  "$GNU_TIME" -f '%M %U %S' -o "$WORK/$label.rss" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" \
    || st=$?
  t1=$(date +%s%N)
  if [ "$st" -ne 0 ]; then
    echo "bench: $label failed (exit $st): $*" >&2
    tail -n 20 "$WORK/$label.err" >&2
    exit 1
  fi
  # microseconds, max RSS KiB, CPU seconds (user + sys)
  tail -n 1 "$WORK/$label.rss" | awk -v us=$(( (t1 - t0) / 1000 )) \
    '{ printf "%s %s %.3f\n", us, $1, $2 + $3 }' >>"$WORK/$label"
}

# median FILE COL: median of a column (1 = microseconds, 2 = max RSS KiB, 3 = CPU seconds).
median() {
  sort -n -k"$2,$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END {
    if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# Every detector off (the sensor core alone), and only the beacon analyzer off.
DETECTORS="direct_ip proxy_bypass dns_bypass ddns paas dns_tunnel dga volume long_connection
  op25b mail_bruteforce mail_attachment inventory beacon"
: >"$WORK/core.toml"
for d in $DETECTORS; do printf '[detectors.%s]\nenabled = false\n' "$d" >>"$WORK/core.toml"; done
printf '[detectors.beacon]\nenabled = false\n' >"$WORK/no-beacon.toml"

# ---- throughput ------------------------------------------------------------------------------
if [ "$PACKETS" = 2000000 ]; then BENCH=$DIR/bench.pcap; else BENCH=$DIR/bench-$PACKETS.pcap; fi
gen "$BENCH" bench --packets "$PACKETS"
NPKTS=$(count "$BENCH")
[ -n "$NPKTS" ] && [ "$NPKTS" -gt 0 ] || die "could not count packets in $BENCH"
cat "$BENCH" >/dev/null # page cache warm for everyone

# Each kizuki run leaves ~300 MB of EVE text for the kernel to write back: `clean` removes it
# and waits for the disk (untimed), so that writeback never bills the next run.
clean() { rm -rf "$WORK/kizuki-out"; sync; }
for i in $(seq "$REPS"); do
  echo "bench: run $i/$REPS" >&2
  timed tcpdump tcpdump -n -r "$BENCH" -w /dev/null
  timed softflowd softflowd -r "$BENCH" -n 127.0.0.1:9 -m 2000000
  clean
  timed kizuki "$KIZUKI" replay --out "$WORK/kizuki-out" "$BENCH"
  EVE_BYTES=$(stat -c %s "$WORK/kizuki-out/eve.json" 2>/dev/null || echo 0)
  clean
  timed kizuki-core "$KIZUKI" replay -c "$WORK/core.toml" --out "$WORK/kizuki-out" "$BENCH"
  clean
  timed kizuki-nobeacon "$KIZUKI" replay -c "$WORK/no-beacon.toml" --out "$WORK/kizuki-out" \
    "$BENCH"
done
clean

printf '\nThroughput: %s (%s packets, %s MB), median of %s runs\n' \
  "$BENCH" "$NPKTS" "$(( $(stat -c %s "$BENCH") / 1000000 ))" "$REPS"
printf '%-16s %10s %14s %10s %12s\n' tool seconds packets/s "CPU s" "peak RSS"
declare -A PPS CPU
for tool in tcpdump softflowd kizuki kizuki-core kizuki-nobeacon; do
  us=$(median "$WORK/$tool" 1)
  kb=$(median "$WORK/$tool" 2)
  CPU[$tool]=$(median "$WORK/$tool" 3)
  PPS[$tool]=$(awk -v n="$NPKTS" -v us="$us" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
  printf '%-16s %10.3f %14s %10.3f %9.1f MiB\n' "$tool" \
    "$(awk -v us="$us" 'BEGIN { print us / 1e6 }')" "${PPS[$tool]}" "${CPU[$tool]}" \
    "$(awk -v kb="$kb" 'BEGIN { print kb / 1024 }')"
done
echo "(kizuki-core: every detector off; kizuki-nobeacon: only the beacon analyzer off)"
printf 'kizuki/softflowd: %.2fx   kizuki/tcpdump: %.2fx   (kizuki wrote %s MB of EVE)\n' \
  "$(awk -v a="${PPS[kizuki]}" -v b="${PPS[softflowd]}" 'BEGIN { print a / b }')" \
  "$(awk -v a="${PPS[kizuki]}" -v b="${PPS[tcpdump]}" 'BEGIN { print a / b }')" \
  "$(( EVE_BYTES / 1000000 ))"
# cost X Y: how much slower X runs than Y, as Y's throughput lost and X's CPU time over Y's.
cost() {
  awk -v on="${PPS[$1]}" -v off="${PPS[$2]}" -v con="${CPU[$1]}" -v coff="${CPU[$2]}" \
    'BEGIN { printf "%.1f %% of throughput, CPU time %.2fx", (1 - on / off) * 100, con / coff }'
}
printf 'detectors (all on vs all off): %s\n' "$(cost kizuki kizuki-core)"
printf 'beacon analyzer (on vs off):   %s\n' "$(cost kizuki kizuki-nobeacon)"

# ---- memory per flow -------------------------------------------------------------------------
FLOWCAP=$(( FLOWS * 6 / 5 ))
[ "$FLOWCAP" -ge 1200000 ] || FLOWCAP=1200000
printf '[flow]\nmax_flows = %s\n' "$FLOWCAP" >"$WORK/flowcap.toml"
BIG=$DIR/flows-$FLOWS.pcap
TINY=$DIR/flows-100.pcap
gen "$BIG" flows --flows "$FLOWS"
gen "$TINY" flows --flows 100

# The sensor core (flow table, DNS, pipeline, EVE) with every detector off, then the default
# config: the second adds the detectors' own state, which is capped per host/key (beacon keys,
# inventory hosts, volume hosts...) rather than per flow.
cat "$WORK/flowcap.toml" "$WORK/core.toml" >"$WORK/flowcap-core.toml"
for cfg in core default; do
  conf=$WORK/flowcap.toml
  [ "$cfg" = core ] && conf=$WORK/flowcap-core.toml
  rm -rf "$WORK/kizuki-out"
  timed "baseline-$cfg" "$KIZUKI" replay -c "$conf" --out "$WORK/kizuki-out" "$TINY"
  rm -rf "$WORK/kizuki-out"
  timed "flows-$cfg" "$KIZUKI" replay -c "$conf" --out "$WORK/kizuki-out" \
    --summary-json "$WORK/flows-summary.json" "$BIG"
done
printf '\nMemory: %s flows in %s (flow.max_flows = %s), peak RSS\n' "$FLOWS" "$BIG" "$FLOWCAP"
printf '%-34s %12s %12s %10s\n' config "100 flows" "$FLOWS flows" "per flow"
for cfg in core default; do
  base_kb=$(median "$WORK/baseline-$cfg" 2)
  peak_kb=$(median "$WORK/flows-$cfg" 2)
  label="sensor core (detectors off)"
  [ "$cfg" = default ] && label="default config (detectors on)"
  printf '%-34s %8.1f MiB %8.1f MiB %8.0f B\n' "$label" \
    "$(awk -v kb="$base_kb" 'BEGIN { print kb / 1024 }')" \
    "$(awk -v kb="$peak_kb" 'BEGIN { print kb / 1024 }')" \
    "$(awk -v p="$peak_kb" -v b="$base_kb" -v n="$FLOWS" 'BEGIN { print (p - b) * 1024 / n }')"
done
# Flow counters from the summary, to see the flows really were held at once.
python3 - "$WORK/flows-summary.json" <<'PY' || true
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(0)
out = []
def walk(v, p):
    if isinstance(v, dict):
        for k, x in v.items():
            walk(x, f"{p}.{k}" if p else k)
    elif isinstance(v, (int, float)) and not isinstance(v, bool) and ("flow" in p or "evict" in p):
        out.append(f"{p}={v}")
walk(s, "")
if out:
    print("summary: " + ", ".join(out[:8]))
PY
