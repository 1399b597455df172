#!/usr/bin/env bash
# Time-bounded coverage-guided fuzzing of Kizuki's decoder stack and pcap reader
# (cargo-fuzz / libFuzzer with AddressSanitizer, on the stable toolchain via RUSTC_BOOTSTRAP).
#
#   scripts/fuzz.sh [TARGET...]        default: decode dns names pcap_reader
#   FUZZ_SECONDS=60                    wall time per target
#   FUZZ_JOBS=1                        libFuzzer -fork workers per target
#   FUZZ_IGNORE_CRASHES=1              keep fuzzing after a crash (-fork mode): a known open
#                                      crash otherwise ends its target's run early
#
# Seeds: fuzz/corpus/<target>/ (committed, < 1 MB, rebuilt from pcaps/ by kizuki-fuzz-seeds
# when missing). New inputs go to fuzz/corpus-work/<target>/ (ignored by git). A crash is
# copied to fuzz/regressions/<target>/, which tests/tests/fuzz_regressions.rs replays.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(decode dns names pcap_reader)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

cd fuzz
need_seeds=no
for t in "${TARGETS[@]}"; do
  [ -n "$(ls -A "corpus/$t" 2>/dev/null)" ] || need_seeds=yes
done
if [ $need_seeds = yes ]; then
  echo "fuzz: building seed corpus from pcaps/" >&2
  cargo run --release -q --bin kizuki-fuzz-seeds -- "$ROOT/pcaps" corpus
fi

cargo fuzz build -O 2>&1 | grep -E "^error|Finished" >&2 || true

LOGDIR=$ROOT/fuzz/target/fuzz-logs
mkdir -p "$LOGDIR"
printf '%-12s %8s %12s %10s %8s %s\n' target seconds executions exec/s crashes note
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus-work/$t" "artifacts/$t" "regressions/$t"
  log=$LOGDIR/$t.log
  before=$(ls "artifacts/$t" | wc -l)
  # -max_total_time bounds the run; -timeout flags a hang (an input taking > 10 s);
  # -rss_limit_mb flags unbounded memory growth on one input.
  extra=()
  if [ "$JOBS" -gt 1 ] || [ -n "${FUZZ_IGNORE_CRASHES:-}" ]; then extra+=("-fork=$JOBS"); fi
  [ -z "${FUZZ_IGNORE_CRASHES:-}" ] || extra+=(-ignore_crashes=1)
  rc=0
  cargo fuzz run -O "$t" "corpus-work/$t" "corpus/$t" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 "${extra[@]}" \
    >"$log" 2>&1 || rc=$?
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}')
  eps=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{s+=$2} END {print s+0}')
  new=0
  for a in "artifacts/$t"/*; do
    [ -f "$a" ] || continue
    b=$(basename "$a")
    if [ ! -f "regressions/$t/$b" ]; then cp "$a" "regressions/$t/$b"; new=$((new + 1)); fi
  done
  note=""
  if [ $rc -ne 0 ]; then
    status=1
    note="FAILED (rc $rc): $(grep -m1 -E 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer' "$log" || true) — see $log"
  fi
  printf '%-12s %8s %12s %10s %8s %s\n' "$t" "$SECS" "$execs" "$eps" \
    "$(( $(ls "artifacts/$t" | wc -l) - before ))" "$note"
done
exit $status
