#!/usr/bin/env bash
# Switch apply: dv-agent's Open vSwitch driver against ovs-vsctl, same
# switch, same ports, same run.
#
# usage: scripts/bench-switch.sh [ports=100] [rounds=3]   (as root)
# needs: Open vSwitch (scripts/setup.sh), a built dv-agent (DV_AGENT, default
# target/debug/dv-agent), curl.
# One ovsdb-server and ovs-vswitchd (userspace datapath) run in a namespace
# the script creates, with their state in a temporary directory (never the
# system's Open vSwitch); `ports` veth pairs stay inside that namespace. Each
# round starts from an empty bridge and puts every port on it as access
# VLAN 10, three ways:
#   dv-agent     POST /v1/switches/sw1/apply: one OVSDB transaction per
#                port, each waited for until ovs-vswitchd runs it, then read back
#   vsctl-each   one `ovs-vsctl add-port br0 pN tag=10` per port (what a
#                script would do; each waits for ovs-vswitchd too)
#   vsctl-batch  one `ovs-vsctl` with every add-port in one transaction
#                (the lower bound: no step is separately atomic or undoable)
# and times a drift check (GET .../drift: read back and diff) of the result.
# Prints seconds (best of rounds) and ports/s, and the ratios.
set -euo pipefail
PORTS=${1:-100}; ROUNDS=${2:-3}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AGENT=${DV_AGENT:-$ROOT/target/debug/dv-agent}
W=$(mktemp -d /tmp/dv-bench-switch.XXXXXX)
NS=dv-bench-sw-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
export OVS_RUNDIR="$W" OVS_DBDIR="$W" OVS_LOGDIR="$W" OVS_SYSCONFDIR="$W"
ip netns add "$NS"
ovsdb-tool create "$W/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ip netns exec "$NS" /usr/sbin/ovsdb-server "$W/conf.db" --remote="punix:$W/db.sock" \
  --log-file="$W/db.log" --unixctl="$W/db.ctl" >/dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 1 50); do [ -S "$W/db.sock" ] && break; sleep 0.1; done
ip netns exec "$NS" /usr/sbin/ovs-vswitchd "unix:$W/db.sock" --log-file="$W/vs.log" \
  --unixctl="$W/vs.ctl" >/dev/null 2>&1 & PIDS=("$!" "${PIDS[@]}")
VSCTL=(ovs-vsctl --db="unix:$W/db.sock" --timeout=60)
"${VSCTL[@]}" --no-wait init
for i in $(seq 0 $((PORTS - 1))); do
  ip -n "$NS" link add "p$i" type veth peer name "q$i"
  ip -n "$NS" link set "p$i" up; ip -n "$NS" link set "q$i" up
done
fresh() { "${VSCTL[@]}" -- --if-exists del-br br0 -- add-br br0 -- set bridge br0 datapath_type=netdev; }
fresh

mkdir -p "$W/data"
P_API=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/agent.toml" <<TOML
[site]
name = "bench"
domain = "dataverket.test"
authority = "production"
data_dir = "data"
[http]
listen = "127.0.0.1:$P_API"
[management]
segment = "lab"
interface = "lo"
prefix = "10.77.0.0/24"
gateway = "10.77.0.1"
production_address = "10.77.0.5"
host = "provisioner-01"
[tftp]
enabled = false
[[dns.hosts]]
name = "provisioner-01"
interfaces = [{ segment = "lab", address = "10.77.0.1" }]
[[switches]]
name = "sw1"
driver = "ovs"
ovsdb = "unix:$W/db.sock"
bridge = "br0"
drift_interval = "1h"
TOML
DV_LOG=warn "$AGENT" serve --config "$W/agent.toml" --log-format json 2>"$W/agent.log" & PIDS+=($!)
API="http://127.0.0.1:$P_API"
for _ in $(seq 1 100); do curl -sf "$API/v1/health" >/dev/null && break; sleep 0.1; done
curl -sf "$API/v1/health" >/dev/null || { echo "dv-agent did not start: $(cat "$W/agent.log")" >&2; exit 1; }
j() { curl -sf -X "$1" -H 'Content-Type: application/json' --data "$3" "$API$2" >/dev/null; }
j POST /v1/networks '{"name":"v10","vlan":10,"purpose":"tenant","prefix":"10.10.0.0/24"}'
j PUT /v1/port-profiles/v10 '{"mode":{"access":{"vlan":10}}}'
for i in $(seq 0 $((PORTS - 1))); do j PUT "/v1/switches/sw1/ports/p$i" '{"profile":"v10"}'; done

now() { date +%s.%N; }
best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }
check() { # all ports on, tag 10
  local n; n=$("${VSCTL[@]}" list-ports br0 | wc -l)
  [ "$n" = "$PORTS" ] || { echo "$1: $n of $PORTS ports on the bridge" >&2; exit 1; }
  [ "$("${VSCTL[@]}" get port p0 tag)" = 10 ] || { echo "$1: p0 not in VLAN 10" >&2; exit 1; }
}
DV=(); EACH=(); BATCH=(); DRIFT=()
for _ in $(seq "$ROUNDS"); do
  fresh; t0=$(now)
  curl -sf -X POST "$API/v1/switches/sw1/apply" >/dev/null
  t1=$(now); check dv-agent; DV+=("$(python3 -c "print($t1 - $t0)")")
  t0=$(now); curl -sf "$API/v1/switches/sw1/drift" | grep -q '"in_sync":true'; t1=$(now)
  DRIFT+=("$(python3 -c "print($t1 - $t0)")")
  fresh; t0=$(now)
  for i in $(seq 0 $((PORTS - 1))); do "${VSCTL[@]}" add-port br0 "p$i" tag=10; done
  t1=$(now); check vsctl-each; EACH+=("$(python3 -c "print($t1 - $t0)")")
  fresh; args=()
  for i in $(seq 0 $((PORTS - 1))); do args+=(-- add-port br0 "p$i" tag=10); done
  t0=$(now); "${VSCTL[@]}" "${args[@]}"; t1=$(now)
  check vsctl-batch; BATCH+=("$(python3 -c "print($t1 - $t0)")")
done
D=$(best "${DV[@]}"); E=$(best "${EACH[@]}"); B=$(best "${BATCH[@]}"); R=$(best "${DRIFT[@]}")
python3 - "$PORTS" "$D" "$E" "$B" "$R" <<'PY'
import sys
n = int(sys.argv[1]); d, e, b, r = map(float, sys.argv[2:])
print(f"{n} access ports onto an empty bridge, best of the rounds:")
print(f"  dv-agent apply     {d:7.3f} s  {n/d:8.1f} ports/s")
print(f"  ovs-vsctl each     {e:7.3f} s  {n/e:8.1f} ports/s   dv-agent/vsctl-each  {e/d:.2f}x the rate")
print(f"  ovs-vsctl batch    {b:7.3f} s  {n/b:8.1f} ports/s   dv-agent/vsctl-batch {b/d:.2f}x the rate")
print(f"  dv-agent drift check of {n} ports (read back and diff): {r*1000:.1f} ms")
PY
