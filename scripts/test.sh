#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, formatting, lints, every test
# (unit, property, end-to-end against real peers), doc tests and a short fuzz
# smoke run of each network-input parser.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
export PATH="$ROOT/.venv/bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo nextest run"
cargo nextest run --workspace --locked --profile ci

step "doc tests"
cargo test --workspace --locked --doc

step "fuzz smoke"
scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-20}"

step "all green"
