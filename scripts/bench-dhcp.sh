#!/usr/bin/env bash
# DORA transactions per second: dv-agent vs ISC Kea (memfile) and dnsmasq,
# same veth bed, same load generator (ISC perfdhcp from Debian's kea-admin,
# acting as a relay), same run; with each server's CPU time per lease and,
# at the end, dv-agent's resident memory holding 50,000 active leases.
#
#   scripts/bench-dhcp.sh [DV_AGENT_BINARY] [RATE] [SECONDS] [CLIENTS]
#
# Creates netns dvbench-s (server, 10.88.0.1/24) and dvbench-c (client:
# 10.88.0.2/24 and relay address 10.99.0.1/16), runs each server in turn on
# the relayed subnet 10.99.0.0/16, and removes everything on exit. Needs
# root. Both servers commit leases to disk: dv-agent with SQLite
# synchronous=FULL (fsync per batch); dnsmasq rewrites its lease file
# without fsync, so the comparison flatters dnsmasq on durability.
set -euo pipefail
BIN=${1:-target/release/dv-agent}
RATE=${2:-4000}
SECS=${3:-10}
CLIENTS=${4:-8000}
S=dvbench-s C=dvbench-c
WORK=$(mktemp -d /tmp/dvbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  ip netns del $S 2>/dev/null || true
  ip netns del $C 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add $S; ip netns add $C
ip -n $S link set lo up; ip -n $C link set lo up
ip -n $S link add bs0 type veth peer name bc0
ip -n $S link set bc0 netns $C
ip -n $S addr add 10.88.0.1/24 dev bs0; ip -n $S link set bs0 up
ip -n $C addr add 10.88.0.2/24 dev bc0; ip -n $C addr add 10.99.0.1/16 dev bc0; ip -n $C link set bc0 up
ip -n $S route add 10.99.0.0/16 via 10.88.0.2 dev bs0

cat > "$WORK/agent.toml" <<TOML
[site]
name = "lab"
domain = "dataverket.test"
authority = "bootstrap"
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:8680"
[management]
segment = "lab"
interface = "bs0"
prefix = "10.88.0.0/24"
gateway = "10.88.0.1"
host = "provisioner-01"
[[dhcp.subnets]]
prefix = "10.88.0.0/24"
interface = "bs0"
lease_time = "1h"
[[dhcp.subnets]]
prefix = "10.99.0.0/16"
router = "10.99.0.1"
dns_servers = ["10.88.0.1"]
lease_time = "1h"
[[dhcp.subnets.pools]]
start = "10.99.1.0"
end = "10.99.200.255"
[dns]
upstreams = ["127.0.0.1:5353"]
[[dns.hosts]]
name = "provisioner-01"
interfaces = [{ segment = "lab", address = "10.88.0.1" }]
TOML

run_perf() {
  # -l 10.99.0.1: perfdhcp acts as a relay (giaddr) and unicasts to the server.
  ip netns exec $C perfdhcp -4 -l 10.99.0.1 -r "$RATE" -R "$CLIENTS" -p "$SECS" -W 2000000 \
     -b mac=52:54:$1:00:00:00 10.88.0.1 2>&1 | tee "$WORK/perf-$2.txt" | \
     grep -E "^\*\*\*|sent packets|received packets|drops ratio|avg delay" || true
}
rate_of() {
  # completed DORAs = received ACKs (second exchange's received packets).
  local acks
  acks=$(awk '/REQUEST-ACK/{f=1} f&&/received packets/{print $3; exit}' "$WORK/perf-$1.txt")
  echo "scale=1; ${acks:-0} / $SECS" | bc
}

# CPU seconds (user + system) a process has used so far.
cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
# Milliseconds of CPU per completed DORA between two cpu_of readings.
ms_per_lease() {
  local acks
  acks=$(awk '/REQUEST-ACK/{f=1} f&&/received packets/{print $3; exit}' "$WORK/perf-$3.txt")
  echo "scale=4; ($2 - $1) * 1000 / (${acks:-0} + 0.0001)" | bc
}

echo "== dv-agent ($BIN)"
ip netns exec $S "$BIN" serve --config "$WORK/agent.toml" --listen 127.0.0.1:0 --log-format json \
   > /dev/null 2> "$WORK/agent.log" &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q '"agent serving"' "$WORK/agent.log" && break; sleep 0.1; done
grep -q '"agent serving"' "$WORK/agent.log" || { cat "$WORK/agent.log"; exit 1; }
C0=$(cpu_of "${PIDS[0]}")
run_perf 0a agent
C1=$(cpu_of "${PIDS[0]}")
A_CPU=$(ms_per_lease "$C0" "$C1" agent)
kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" || true; PIDS=()

if command -v kea-dhcp4 >/dev/null 2>&1; then
  echo "== kea $(kea-dhcp4 -v)"
  mkdir -p "$WORK/kea"
  cat > "$WORK/kea.json" <<JSON
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "bs0" ], "dhcp-socket-type": "udp" },
    "lease-database": { "type": "memfile", "persist": true, "name": "$WORK/kea/leases.csv", "lfc-interval": 0 },
    "valid-lifetime": 3600,
    "subnet4": [ { "id": 1, "subnet": "10.99.0.0/16", "pools": [ { "pool": "10.99.1.0 - 10.99.200.255" } ],
                   "option-data": [ { "name": "routers", "data": "10.99.0.1" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "$WORK/kea/kea.log" } ] } ]
} }
JSON
  KEA_PIDFILE_DIR="$WORK/kea" KEA_LOCKFILE_DIR="$WORK/kea" \
    ip netns exec $S kea-dhcp4 -c "$WORK/kea.json" > "$WORK/kea/stdout.log" 2>&1 &
  PIDS+=($!)
  sleep 2
  K0=$(cpu_of "${PIDS[0]}")
  run_perf 0c kea
  K1=$(cpu_of "${PIDS[0]}")
  K_CPU=$(ms_per_lease "$K0" "$K1" kea)
  kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" || true; PIDS=()
  K=$(rate_of kea)
else
  echo "!!! kea-dhcp4 not installed (Debian package kea-dhcp4-server); Kea column skipped !!!"
  K=0; K_CPU=0
fi

echo "== dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}')"
ip netns exec $S dnsmasq --no-daemon --conf-file=/dev/null --port=0 --bind-interfaces --interface=bs0 \
   --user=root --group=root --no-resolv --no-hosts --no-ping --dhcp-authoritative \
   --dhcp-range=10.99.1.0,10.99.200.255,255.255.0.0,1h --dhcp-lease-max=60000 \
   --dhcp-leasefile="$WORK/dnsmasq.leases" --pid-file="$WORK/dnsmasq.pid" 2> "$WORK/dnsmasq.log" &
PIDS+=($!)
sleep 1
D0=$(cpu_of "${PIDS[0]}")
run_perf 0b dnsmasq
D1=$(cpu_of "${PIDS[0]}")
D_CPU=$(ms_per_lease "$D0" "$D1" dnsmasq)
kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" || true; PIDS=()

A=$(rate_of agent); D=$(rate_of dnsmasq)
echo "== DORA/s (offered load $RATE/s for ${SECS}s, $CLIENTS clients)"
echo "   dv-agent $A ($A_CPU ms CPU/lease), kea $K ($K_CPU ms CPU/lease), dnsmasq $D ($D_CPU ms CPU/lease)"
echo "   ratio dv-agent/kea $(echo "scale=2; $A / ($K + 0.0001)" | bc), dv-agent/dnsmasq $(echo "scale=2; $A / ($D + 0.0001)" | bc)"

# Resident memory of dv-agent holding 50,000 active leases (fresh store).
if [ "${DV_BENCH_RSS:-1}" = 1 ]; then
  rm -rf "$WORK/data"
  ip netns exec $S "$BIN" serve --config "$WORK/agent.toml" --listen 127.0.0.1:0 --log-format json \
     > /dev/null 2> "$WORK/agent-rss.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do grep -q '"agent serving"' "$WORK/agent-rss.log" && break; sleep 0.1; done
  ip netns exec $C perfdhcp -4 -l 10.99.0.1 -r 4000 -R 50000 -n 50000 -W 2000000 \
     -b mac=52:54:0d:00:00:00 10.88.0.1 > "$WORK/perf-rss.txt" 2>&1 || true
  BOUND=$(awk '/REQUEST-ACK/{f=1} f&&/received packets/{print $3; exit}' "$WORK/perf-rss.txt")
  RSS=$(awk '/^VmRSS/{print $2}' "/proc/${PIDS[0]}/status")
  echo "== dv-agent resident memory with ${BOUND:-0} leases bound: $((RSS / 1024)) MiB"
fi
