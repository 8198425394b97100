#!/usr/bin/env bash
# Runs every cargo-fuzz target for a few seconds each (argument: seconds per
# target). A crash fails the run and leaves its input in fuzz/artifacts/.
# Fuzzing needs the nightly toolchain; a machine without it is reported loudly.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-20}"
cd "$ROOT/fuzz"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "!!! SKIPPING FUZZ SMOKE: no nightly toolchain on this machine (cargo fuzz needs one) !!!" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
mkdir -p artifacts
for target in $(cargo +nightly fuzz list); do
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s" >&2
  log="artifacts/$target.log"
  mkdir -p "corpus/$target"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  if ! cargo +nightly fuzz run "$target" "corpus/$target" "${seeds[@]}" -- -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target FAILED; the crashing input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" >&2 || true
done
