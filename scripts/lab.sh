#!/usr/bin/env bash
# The lab: one agent serving the example site (site-kits/examples/lab) on its
# embedded SQLite store under .lab/, until Ctrl-C or SIGTERM.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

CONFIG="${DV_LAB_CONFIG:-site-kits/examples/lab/agent.toml}"
DATA="${DV_LAB_DATA:-$ROOT/.lab/data}"
cargo build --locked -p dv-agent
target/debug/dv-agent check-config "$CONFIG"
cat >&2 <<MSG

Lab agent for $CONFIG, data in $DATA
  health:  curl -s http://127.0.0.1:8680/v1/health
  metrics: curl -s http://127.0.0.1:8680/metrics
  stop:    Ctrl-C (or SIGTERM); queued writes are committed before exit
MSG
exec target/debug/dv-agent serve --config "$CONFIG" --data-dir "$DATA" "$@"
