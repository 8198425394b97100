#!/usr/bin/env bash
# Hub fan-in: events per second from SITES leaf sites into the hub's read
# model, next to JetStream's own sourcing rate in the same run, and the
# commit-to-read-model latency (p50/p99) at a steady rate.
#
# usage: SITES=10 EVENTS=2000 RATE=50 SECONDS=10 scripts/bench-hub.sh
# needs: the pinned nats-server in .venv (scripts/setup.sh); builds release
# binaries. Everything runs on 127.0.0.1 and is stopped when it ends.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release -p dv-agent -p dv-hub
exec cargo bench -p dv-hub --bench fanin
