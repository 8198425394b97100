#!/usr/bin/env bash
# DORA exchanges per second: dv-agent vs ISC Kea (memfile) and dnsmasq, same
# veth bed, same load generator (ISC perfdhcp from Debian's kea-admin, acting
# as a relay), same run. For each server and each offered rate it prints the
# completed DORAs per second, the share of exchanges lost, and the server's
# CPU time per lease; then each server's best rate with under 1% lost, the
# ratios, and dv-agent's resident memory holding 50,000 active leases.
#
#   scripts/bench-dhcp.sh [DV_AGENT_BINARY]
#   RATES="2000 4000 8000 12000" SECS=10 SERVERS="agent kea dnsmasq" LOGS=default|quiet
#   POOL=12 (a /12 of 1,048,318 addresses, the default) or POOL=16 (65,278)
#   CLIENTS=16000000: perfdhcp draws client MACs from this many, so nearly
#   every exchange is a new client and a new lease (a small CLIENTS makes
#   most exchanges renewals of a lease the server already holds)
#   DV_BENCH_RSS=0 skips the memory run.
#
# Creates netns dvbench-s (server, 10.88.0.1/24) and dvbench-c (client:
# 10.88.0.2/24 and the relay address, 10.96.0.1), runs each server in turn
# on the relayed subnet (10.96.0.0/16 or /12), and removes everything on exit. Needs
# root. Durability differs and favours the others: dv-agent commits every
# lease to SQLite with synchronous=FULL (fsync) before its ACK; Kea appends
# to its memfile CSV and dnsmasq rewrites its lease file, neither fsyncs.
# Logging (LOGS): "default" runs each server at its default log level, to a
# file: dv-agent (info) logs one line per committed lease, Kea (INFO) two
# per DORA (offer, allocation); dnsmasq logs none unless --log-dhcp. "quiet"
# runs dv-agent at warn and Kea at WARN. Each server's CPU per lease
# includes its logging.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/dv-agent}
RATES=${RATES:-2000 4000 8000 12000}
SECS=${SECS:-10}
CLIENTS=${CLIENTS:-16000000}
SERVERS=${SERVERS:-agent kea dnsmasq}
LOGS=${LOGS:-default}
case $LOGS in
  default) AGENT_LOG=info KEA_SEVERITY=INFO ;;
  quiet) AGENT_LOG="warn,dv_agent::serve=info" KEA_SEVERITY=WARN ;;
  *) echo "bench-dhcp: LOGS is default or quiet" >&2; exit 2 ;;
esac
POOL=${POOL:-12}
case $POOL in
  16) NET=10.96.0.0/16 MASK=255.255.0.0 POOL_END=10.96.255.254 ;;
  12) NET=10.96.0.0/12 MASK=255.240.0.0 POOL_END=10.111.255.254 ;;
  *) echo "bench-dhcp: POOL is 16 or 12" >&2; exit 2 ;;
esac
RELAY=10.96.0.1 POOL_START=10.96.1.0
S=dvbench-s C=dvbench-c
WORK=$(mktemp -d /tmp/dvbench.XXXXXX)
PID=
[ -x "$BIN" ] || cargo build --release -p dv-agent
command -v perfdhcp >/dev/null || { echo "bench-dhcp: perfdhcp missing (apt install kea-admin)" >&2; exit 1; }
if ! command -v kea-dhcp4 >/dev/null; then
  # Debian starts the service on install; policy-rc.d stops that, so the
  # bench never leaves a DHCP server running on a real interface.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q kea-dhcp4-server >/dev/null || true
  rm -f /usr/sbin/policy-rc.d
fi

stop_server() {
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=
}
cleanup() {
  stop_server
  ip netns del $S 2>/dev/null || true
  ip netns del $C 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && { echo "bench-dhcp: work dir kept: $WORK" >&2; return; }
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add $S; ip netns add $C
ip -n $S link set lo up; ip -n $C link set lo up
ip -n $S link add bs0 type veth peer name bc0
ip -n $S link set bc0 netns $C
ip -n $S addr add 10.88.0.1/24 dev bs0; ip -n $S link set bs0 up
ip -n $C addr add 10.88.0.2/24 dev bc0; ip -n $C addr add $RELAY/${NET#*/} dev bc0; ip -n $C link set bc0 up
ip -n $S route add $NET via 10.88.0.2 dev bs0

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
prefix = "$NET"
router = "$RELAY"
dns_servers = ["10.88.0.1"]
lease_time = "1h"
[[dhcp.subnets.pools]]
start = "$POOL_START"
end = "$POOL_END"
[dns]
listen = ["127.0.0.1:0"]
upstreams = ["127.0.0.1:5353"]
[[dns.hosts]]
name = "provisioner-01"
interfaces = [{ segment = "lab", address = "10.88.0.1" }]
TOML

cat > "$WORK/kea.json" <<JSON
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "bs0" ], "dhcp-socket-type": "udp" },
    "lease-database": { "type": "memfile", "persist": true, "name": "$WORK/kea/leases.csv", "lfc-interval": 0 },
    "valid-lifetime": 3600,
    "subnet4": [ { "id": 1, "subnet": "$NET", "pools": [ { "pool": "$POOL_START - $POOL_END" } ],
                   "option-data": [ { "name": "routers", "data": "$RELAY" },
                                    { "name": "domain-name-servers", "data": "10.88.0.1" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "$KEA_SEVERITY", "output_options": [ { "output": "$WORK/kea/kea.log" } ] } ]
} }
JSON

start_agent() {
  rm -rf "$WORK/data"
  DV_LOG=$AGENT_LOG ip netns exec $S "$BIN" serve --config "$WORK/agent.toml" --log-format json \
     > /dev/null 2> "$WORK/agent.log" &
  PID=$!
  # "agent serving" comes once DHCP has probed and bound (keep
  # dv_agent::serve at info when setting DV_LOG).
  for _ in $(seq 1 100); do grep -q '"agent serving"' "$WORK/agent.log" && return 0; sleep 0.1; done
  cat "$WORK/agent.log"; exit 1
}
start_kea() {
  rm -rf "$WORK/kea"; mkdir -p "$WORK/kea"
  KEA_PIDFILE_DIR="$WORK/kea" KEA_LOCKFILE_DIR="$WORK/kea" \
    ip netns exec $S kea-dhcp4 -c "$WORK/kea.json" > "$WORK/kea/stdout.log" 2>&1 &
  PID=$!
  sleep 2
}
start_dnsmasq() {
  rm -f "$WORK/dnsmasq.leases"
  ip netns exec $S dnsmasq --no-daemon --conf-file=/dev/null --port=0 --bind-interfaces --interface=bs0 \
     --user=root --group=root --no-resolv --no-hosts --no-ping --dhcp-authoritative \
     --dhcp-range=$POOL_START,$POOL_END,$MASK,1h --dhcp-lease-max=1100000 \
     --dhcp-option=3,$RELAY --dhcp-option=6,10.88.0.1 \
     --dhcp-leasefile="$WORK/dnsmasq.leases" --pid-file="$WORK/dnsmasq.pid" 2> "$WORK/dnsmasq.log" &
  PID=$!
  sleep 1
}

# CPU seconds (user + system) a process has used so far; fields counted
# after the ")" that ends the command name, which may hold spaces.
cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); print ($12 + $13) / hz}' "/proc/$1/stat"
}
# "sent received" of an exchange ("DISCOVER-OFFER" or "REQUEST-ACK").
counts() {
  awk -v x="$2" '$0 ~ "Statistics for: " x {f=1} f&&/sent packets/{s=$3} f&&/received packets/{print s, $3; exit}' "$1"
}

# One load step: prints "rate lost% cpu_ms_per_lease" for the running server.
step() {
  local name=$1 rate=$2 tag=$3 out="$WORK/perf-$1-$2.txt" c0 c1
  c0=$(cpu_of "$PID")
  # -l $RELAY: perfdhcp acts as a relay (giaddr) and unicasts to the server.
  ip netns exec $C perfdhcp -4 -l $RELAY -r "$rate" -R "$CLIENTS" -p "$SECS" -W 2000000 \
     -b "mac=52:54:$tag:00:00:00" 10.88.0.1 > "$out" 2>&1 || true
  c1=$(cpu_of "$PID")
  read -r dsent _ < <(counts "$out" DISCOVER-OFFER)
  read -r _ acks < <(counts "$out" REQUEST-ACK)
  awk -v d="${dsent:-0}" -v a="${acks:-0}" -v s="$SECS" -v c0="$c0" -v c1="$c1" 'BEGIN {
    lost = (d > 0) ? 100 * (d - a) / d : 100
    cpu = (a > 0) ? (c1 - c0) * 1000 / a : 0
    printf "%.1f %.2f %.4f\n", a / s, lost, cpu }'
}

declare -A BEST BEST_CPU CPU_AT
echo "== pool /$POOL, $CLIENTS client MACs, ${SECS}s per step, logs: $LOGS"
printf '%-9s %8s %10s %8s %14s\n' server offered "DORA/s" "lost %" "ms CPU/lease"
for server in $SERVERS; do
  case $server in
    agent) start_agent; label="dv-agent" ;;
    kea) command -v kea-dhcp4 >/dev/null || { echo "!!! kea-dhcp4 missing: Kea skipped !!!"; continue; }
         start_kea; label="kea $(kea-dhcp4 -v)" ;;
    dnsmasq) start_dnsmasq; label="dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}')" ;;
    *) echo "unknown server $server" >&2; exit 2 ;;
  esac
  BEST[$server]=0; BEST_CPU[$server]=0
  n=0
  for rate in $RATES; do
    n=$((n + 1))
    # A fresh MAC range per step: every step allocates new leases.
    read -r done lost cpu < <(step "$server" "$rate" "$(printf '%x%x' "${#server}" "$n")")
    printf '%-9s %8s %10s %8s %14s\n' "$server" "$rate" "$done" "$lost" "$cpu"
    CPU_AT[$server,$rate]=$cpu
    if awk -v l="$lost" 'BEGIN { exit !(l < 1) }' && awk -v a="$done" -v b="${BEST[$server]}" 'BEGIN { exit !(a > b) }'; then
      BEST[$server]=$done; BEST_CPU[$server]=$cpu
    fi
  done
  echo "  ($label)"
  stop_server
done

echo "== best rate with under 1% lost (CPU per lease at that rate)"
for server in $SERVERS; do
  [ -n "${BEST[$server]:-}" ] && printf '   %-8s %10s DORA/s  %s ms CPU/lease\n' "$server" "${BEST[$server]}" "${BEST_CPU[$server]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
for other in kea dnsmasq; do
  [ -n "${BEST[$other]:-}" ] && [ -n "${BEST[agent]:-}" ] || continue
  echo "   dv-agent/$other: rate $(ratio "${BEST[agent]}" "${BEST[$other]}"), CPU per lease at the same offered load:" \
    "$(for r in $RATES; do [ -n "${CPU_AT[agent,$r]:-}" ] && [ -n "${CPU_AT[$other,$r]:-}" ] && printf '%s/s %s  ' "$r" "$(ratio "${CPU_AT[agent,$r]}" "${CPU_AT[$other,$r]}")"; done)"
done

# Resident memory of dv-agent holding 50,000 active leases (fresh store).
# perfdhcp draws client MACs at random from -R; a range far larger than the
# exchange count keeps nearly every client distinct.
if [ "${DV_BENCH_RSS:-1}" = 1 ] && [[ " $SERVERS " == *" agent "* ]]; then
  start_agent
  ip netns exec $C perfdhcp -4 -l $RELAY -r 4000 -R 16000000 -n 52000 -W 2000000 \
     -b mac=52:54:0d:00:00:00 10.88.0.1 > "$WORK/perf-rss.txt" 2>&1 || true
  read -r _ acks < <(counts "$WORK/perf-rss.txt" REQUEST-ACK)
  bound=$(python3 -c 'import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(db.execute("SELECT count(*) FROM dhcp_lease WHERE state = ?", ("bound",)).fetchone()[0])' "$WORK/data/agent.db" 2>/dev/null || echo "?")
  rss=$(awk '/^VmRSS/{print $2}' "/proc/$PID/status")
  echo "== dv-agent resident memory with $bound leases bound ($acks ACKs): $((rss / 1024)) MiB"
  stop_server
fi
