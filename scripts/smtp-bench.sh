#!/usr/bin/env bash
# SMTP memory figures (not a timed test): a flood of half-open SMTP sessions stuck inside
# DATA (long header lines, held out-of-order segments) after one message carrying a large
# ZIP attachment whose executable entry is named only in the central directory at its end.
# Prints the SMTP summary (peak budget use, give-ups by reason), whether the attachment's
# SHA-256 and the alert came out right, and the process's peak RSS with SMTP parsing on and
# off for the same capture.
#
#   SMTP_BENCH_SESSIONS (20000)  half-open sessions
#   SMTP_BENCH_MB       (100)    attachment size in MiB
#   SMTP_BENCH_BUDGET_MB (16)    smtp.total_buffer_bytes in MiB
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SMTP_BENCH_SESSIONS=${SMTP_BENCH_SESSIONS:-20000}
export SMTP_BENCH_MB=${SMTP_BENCH_MB:-100}
export SMTP_BENCH_BUDGET_MB=${SMTP_BENCH_BUDGET_MB:-16}
DIR=$(mktemp -d /tmp/kizuki-smtp-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
export SMTP_BENCH_DIR=$DIR

cargo build --release -q -p kizuki --bin kizuki
KIZUKI_BIN=$PWD/target/release/kizuki cargo test --release -q -p kizuki-tests --test mail \
  smtp_memory_figures -- --ignored --nocapture 2>&1 | grep '^smtp-bench:'

echo "smtp-bench: capture $(du -h "$DIR/flood.pcap" | cut -f1), budget ${SMTP_BENCH_BUDGET_MB} MiB"
for mode in on off; do
  cfg=$DIR/smtp.toml
  if [ "$mode" = off ]; then
    cfg=$DIR/off.toml
    printf '[smtp]\nenabled = false\n[flow]\nmax_flows = 1000000\n' >"$cfg"
  fi
  /usr/bin/time -f "%M %e" -o "$DIR/time.$mode" ./target/release/kizuki replay -c "$cfg" \
    --workers 1 --out "$DIR/out-$mode" --summary-json "$DIR/summary-$mode.json" "$DIR/flood.pcap" >/dev/null
  read -r rss wall <"$DIR/time.$mode"
  echo "smtp-bench: smtp=$mode max_rss_mib=$((rss / 1024)) wall_s=$wall"
done
