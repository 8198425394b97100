#!/usr/bin/env bash
# TFTP throughput: dv-agent against tftpd-hpa, same file, same client, same run.
#
# usage: scripts/bench-tftp.sh [size_MB=32] [rounds=3] [blksize=1468]
# needs: curl, tftpd-hpa (in.tftpd), a built dv-agent (cargo build -p dv-agent)
# Both servers run on 127.0.0.1 with ports the script picks; in.tftpd runs in
# the foreground under this script (never as a system service) and both are
# stopped on exit. Prints MB/s of each and the ratio dv-agent / tftpd-hpa.
set -euo pipefail
SIZE_MB=${1:-32}; ROUNDS=${2:-3}; BLK=${3:-1468}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AGENT=${DV_AGENT:-$ROOT/target/debug/dv-agent}
W=$(mktemp -d /tmp/dv-bench-tftp.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/fw" "$W/data"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$W/fw/big.bin"
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_DV=$(free_port); P_HPA=$(free_port)
cat > "$W/agent.toml" <<TOML
[site]
name = "bench"
domain = "dataverket.test"
authority = "production"
data_dir = "data"
[http]
listen = "127.0.0.1:0"
[management]
segment = "lab"
interface = "lo"
prefix = "10.77.0.0/24"
gateway = "10.77.0.1"
production_address = "10.77.0.5"
host = "provisioner-01"
[boot]
firmware_dir = "fw"
[tftp]
listen = "127.0.0.1:$P_DV"
enabled = true
[[dns.hosts]]
name = "provisioner-01"
interfaces = [{ segment = "lab", address = "10.77.0.1" }]
TOML
DV_LOG=warn "$AGENT" serve --config "$W/agent.toml" 2>"$W/agent.log" & PIDS+=($!)
in.tftpd --foreground --listen --address "127.0.0.1:$P_HPA" --secure "$W/fw" & PIDS+=($!)
sleep 1
bench() { # name port -> MB/s (best of ROUNDS)
  local best=0
  for _ in $(seq "$ROUNDS"); do
    local t0 t1
    t0=$(date +%s.%N)
    curl -sS --max-time 300 --tftp-blksize "$BLK" "tftp://127.0.0.1:$2/big.bin" -o "$W/out-$1"
    t1=$(date +%s.%N)
    cmp -s "$W/fw/big.bin" "$W/out-$1" || { echo "$1: file differs" >&2; exit 1; }
    best=$(python3 -c "print(max($best, $SIZE_MB / ($t1 - $t0)))")
  done
  echo "$best"
}
DV=$(bench dv-agent "$P_DV")
HPA=$(bench tftpd-hpa "$P_HPA")
printf 'file %d MB, blksize %d, curl, best of %d\n' "$SIZE_MB" "$BLK" "$ROUNDS"
printf 'dv-agent   %8.1f MB/s\n' "$DV"
printf 'tftpd-hpa  %8.1f MB/s\n' "$HPA"
printf 'ratio dv-agent/tftpd-hpa  %.2f\n' "$(python3 -c "print($DV / $HPA)")"
