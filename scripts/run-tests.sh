#!/usr/bin/env bash
# Runs the whole test suite (unit, integration and end-to-end; there are no doc tests) and ends with
# one line of totals over every test binary: "tests: N passed, N failed". Every binary runs even
# after one fails (--no-fail-fast), so a red run shows all its failures at once.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --workspace --no-fail-fast --lib --bins --tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
sum() { grep -Eo "[0-9]+ $1" "$log" | awk '{s += $1} END {print s + 0}'; }
echo "tests: $(sum passed) passed, $(sum failed) failed"
exit "$status"
