#!/usr/bin/env bash
# Authoritative DNS throughput: dv-agent versus NSD serving the same zone,
# same load tool (dnsperf), same namespace, same run. Prints queries/s of each
# and the ratio. Needs root (network namespace), dnsperf and nsd.
#
#   scripts/bench-dns.sh            # 10 s per server
#   SECONDS_PER_RUN=30 DV_AGENT=target/release/dv-agent scripts/bench-dns.sh
set -euo pipefail

cd "$(dirname "$0")/.."
AGENT_BIN="${DV_AGENT:-target/release/dv-agent}"
RUN="${SECONDS_PER_RUN:-10}"
CLIENTS="${CLIENTS:-4}"
[ -x "$AGENT_BIN" ] || cargo build --release -p dv-agent
for tool in dnsperf nsd dig; do command -v "$tool" >/dev/null || { echo "bench-dns: $tool missing (scripts/setup.sh installs it)" >&2; exit 1; }; done

NS="dvbench-$$"
WORK="$(mktemp -d)"
cleanup() {
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 10.53.0.1/32 dev lo   # dv-agent
ip -n "$NS" addr add 10.53.0.2/32 dev lo   # NSD

cat > "$WORK/agent.toml" <<TOML
[site]
name = "bench"
domain = "dataverket.test"
authority = "bootstrap"
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:8680"
[management]
segment = "bench"
interface = "lo"
prefix = "10.53.0.0/24"
gateway = "10.53.0.1"
host = "provisioner-01"
[dns]
listen = ["10.53.0.1:53"]
allow_transfer = ["10.53.0.0/24"]
[[dns.hosts]]
name = "provisioner-01"
interfaces = [{ segment = "bench", address = "10.53.0.1" }]
[[dns.services]]
name = "artifacts"
host = "provisioner-01"
TOML
ip netns exec "$NS" "$AGENT_BIN" serve --config "$WORK/agent.toml" --log-format json 2>"$WORK/agent.log" &
for _ in $(seq 100); do
  ip netns exec "$NS" dig @10.53.0.1 +short +time=1 +tries=1 provisioner-01.mgmt.dataverket.test A 2>/dev/null | grep -q 10.53.0.1 && break
  sleep 0.1
done

# NSD serves the very zone the agent serves: its AXFR, written as a zone file.
ip netns exec "$NS" dig @10.53.0.1 +noall +answer AXFR mgmt.dataverket.test | awk '!seen[$0]++' > "$WORK/mgmt.zone"
cat > "$WORK/nsd.conf" <<CONF
server:
  ip-address: 10.53.0.2
  port: 53
  zonesdir: "$WORK"
  database: ""
  pidfile: "$WORK/nsd.pid"
  xfrdfile: "$WORK/xfrd.state"
  zonelistfile: "$WORK/zone.list"
  username: ""
  server-count: 1
  # NSD rate-limits responses per source (RRL, 200/s by default); a load
  # test from one source must switch it off.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  logfile: "$WORK/nsd.log"
remote-control:
  control-enable: no
zone:
  name: mgmt.dataverket.test
  zonefile: "mgmt.zone"
CONF
ip netns exec "$NS" nsd -d -c "$WORK/nsd.conf" &
for _ in $(seq 100); do
  ip netns exec "$NS" dig @10.53.0.2 +short +time=1 +tries=1 provisioner-01.mgmt.dataverket.test A 2>/dev/null | grep -q 10.53.0.1 && break
  sleep 0.1
done

echo "provisioner-01.mgmt.dataverket.test A" > "$WORK/queries"
qps() {
  ip netns exec "$NS" dnsperf -s "$1" -d "$WORK/queries" -l "$RUN" -c "$CLIENTS" -T 1 -Q 200000 -q 500 2>&1 \
    | tee "$WORK/perf-$1.txt" | awk '/Queries per second/ {print $4}'
}
AGENT_QPS=$(qps 10.53.0.1)
NSD_QPS=$(qps 10.53.0.2)
grep -h 'Queries lost' "$WORK"/perf-*.txt | sed 's/^/  /'
echo "dv-agent  $AGENT_QPS queries/s  ($AGENT_BIN)"
echo "nsd       $NSD_QPS queries/s  (one server process)"
awk -v a="$AGENT_QPS" -v n="$NSD_QPS" 'BEGIN { printf "ratio dv-agent/nsd = %.2f\n", a / n }'
