#!/usr/bin/env bash
# Beacon-detector evaluation (`make eval-beacon`): builds kizuki, kizuki-gen and
# kizuki-eval-beacon (release), regenerates the labeled corpus into target/beacon-eval (not
# committed; deterministic for a given seed), replays every pcap through `kizuki replay` and
# prints recall per condition and precision.
#
# Environment: BEACON_EVAL_DIR (default $CARGO_TARGET_DIR or target, + /beacon-eval),
# BEACON_EVAL_SCALE (full|small, default full), BEACON_EVAL_SEED (default: kizuki-gen's),
# BEACON_EVAL_ARGS (extra kizuki-eval-beacon flags, e.g. "--min-recall 0.95 --min-precision
# 0.95" to fail below the targets, or "--json"). Arguments to this script are passed on too.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
OUT=${BEACON_EVAL_DIR:-$TARGET_DIR/beacon-eval}
SCALE=${BEACON_EVAL_SCALE:-full}
BIN=$TARGET_DIR/release

$CARGO build --release -p kizuki --bin kizuki
$CARGO build --release -p kizuki-tests --bin kizuki-gen --bin kizuki-eval-beacon

seed_args=()
if [ -n "${BEACON_EVAL_SEED:-}" ]; then
  seed_args=(--seed "$BEACON_EVAL_SEED")
fi
rm -rf "$OUT"
echo "== generating the $SCALE beacon corpus into $OUT"
"$BIN/kizuki-gen" beacon-eval --out "$OUT" --scale "$SCALE" "${seed_args[@]}"
echo
echo "== evaluating"
# shellcheck disable=SC2086
KIZUKI_BIN=$BIN/kizuki "$BIN/kizuki-eval-beacon" "$OUT" ${BEACON_EVAL_ARGS:-} "$@"
