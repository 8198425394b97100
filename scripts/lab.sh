#!/usr/bin/env bash
# The lab: a simulated site on this machine, served by one agent.
#
# The agent serves the example site (site-kits/examples/lab/agent.toml) on a
# veth pair this script creates: dvlab0 (10.77.0.1/24) here, its peer inside
# the network namespace dv-lab, where the site's "rack switch" is a bridge.
# Unless DV_LAB_VM=0, one QEMU machine network-boots on that bridge (DHCP,
# TFTP, iPXE, HTTP), boots the discovery environment, reports its hardware to
# the agent and powers off. No traffic leaves the veth pair and namespace.
# Ctrl-C (or SIGTERM) stops the machine and the agent (which commits what it
# has queued) and removes the namespace and the veth pair.
#
# Unless DV_LAB_HUB=0, the lab also runs what the site federates to, on
# loopback: a one-node hub (nats-server with JetStream, one dv-hub replica,
# API on 127.0.0.1:7443), the site's leaf node, and a local OIDC issuer
# (tests/oidc-issuer, http://127.0.0.1:7480) for `dvid login`, so the
# first-use walkthrough (docs/walkthrough.md) can be followed by hand.
#
# Unless DV_LAB_SWITCH=0, the site also has a leaf switch the agent
# configures: Open vSwitch (userspace datapath) in the namespace dv-lab-sw,
# bridge br0, with ports swp1 and swp2 cabled to two hosts (namespaces
# dv-lab-h1 and dv-lab-h2, 192.168.77.1 and .2). `dvnet apply leaf-1` puts
# the ports on the switch with the VLANs the intent gives them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

LAB="$ROOT/.lab"
NS=dv-lab
MAC=52:54:00:00:77:99
mkdir -p "$LAB/data/artifacts/discovery" "$LAB/data/firmware"

# The example config, with its data (and so its artifacts and first stages)
# under .lab/.
sed -e "s|^data_dir = .*|data_dir = \"$LAB/data\"|" \
  -e "s|^firmware_dir = .*|firmware_dir = \"$LAB/data/firmware\"|" \
  site-kits/examples/lab/agent.toml > "$LAB/agent.toml"
cp .cache/discovery/vmlinuz .cache/discovery/initrd.cpio.gz "$LAB/data/artifacts/discovery/"
# The project's first stages (setup.sh builds them); copies, since the agent
# serves nothing that resolves outside its firmware root.
if [ -s .cache/ipxe/SHA256SUMS ]; then
  cp .cache/ipxe/undionly.kpxe .cache/ipxe/snponly.efi "$LAB/data/firmware/"
else
  printf '\n!!! lab: no project iPXE build in .cache/ipxe; serving Debian'"'"'s unembedded first stages (an agent outage after the first stage is not covered) !!!\n\n' >&2
  cp /usr/lib/ipxe/undionly.kpxe /usr/lib/ipxe/snponly.efi "$LAB/data/firmware/"
fi

HUB_ON="${DV_LAB_HUB:-1}"
NATS="$ROOT/.venv/bin/nats-server"
if [ "$HUB_ON" = 1 ]; then
  mkdir -p "$LAB/hub"
  # The site's leaf node federates to the hub; the agent publishes through it.
  cat >> "$LAB/agent.toml" <<TOML

[nats]
url = "nats://127.0.0.1:4222"
hub = ["nats-leaf://127.0.0.1:17422"]
store_dir = "$LAB/leaf-store"
TOML
  [ -s "$LAB/hub/token" ] || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$LAB/hub/token")
  cat > "$LAB/hub/hub.toml" <<TOML
[hub]
data_dir = "$LAB/hub/data"
token_file = "$LAB/hub/token"

[[nats]]
name = "hub-1"
client = "127.0.0.1:14222"
cluster = "127.0.0.1:16222"
leaf = "127.0.0.1:17422"

[[replicas]]
name = "r1"
listen = "127.0.0.1:7443"

[[sites]]
name = "lab"

[identity]
issuer = "http://127.0.0.1:7480"
client_id = "dv-cli"
TOML
  cargo build --locked -p dv-agent -p dv-hub -p dv-cli
  "$ROOT/target/debug/dv-hub" check-config --config "$LAB/hub/hub.toml" >/dev/null
else
  cargo build --locked -p dv-agent
fi
SWITCH_ON="${DV_LAB_SWITCH:-1}"
if [ "$SWITCH_ON" = 1 ]; then
  cat >> "$LAB/agent.toml" <<TOML

[[switches]]
name = "leaf-1"
driver = "ovs"
ovsdb = "unix:$LAB/ovs/db.sock"
bridge = "br0"
TOML
fi
AGENT="$ROOT/target/debug/dv-agent"
"$AGENT" check-config "$LAB/agent.toml"

AGENT_PID=""
VM_PID=""
HUB_PIDS=()
OVS_PIDS=()
cleanup() {
  trap - EXIT INT TERM
  [ -n "$VM_PID" ] && kill "$VM_PID" 2>/dev/null && wait "$VM_PID" 2>/dev/null
  if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true
  fi
  # Newest first: the replica before its nats-server, the issuer last.
  for ((i = ${#HUB_PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${HUB_PIDS[$i]}" 2>/dev/null && wait "${HUB_PIDS[$i]}" 2>/dev/null || true
  done
  for pid in "${OVS_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  ip link del dvlab0 2>/dev/null || true
  for ns in "$NS" dv-lab-sw dv-lab-h1 dv-lab-h2; do ip netns del "$ns" 2>/dev/null || true; done
  echo "lab stopped; its data stays in $LAB/data" >&2
}
trap cleanup EXIT INT TERM

# The simulated site: a bridge in its own namespace, joined to dvlab0.
ip link del dvlab0 2>/dev/null || true
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add br0 type bridge forward_delay 0 stp_state 0
ip -n "$NS" tuntap add dev tap0 mode tap
ip -n "$NS" link set tap0 master br0
ip link add dvlab0 type veth peer name uplink netns "$NS"
ip -n "$NS" link set uplink master br0
for dev in br0 tap0 uplink; do ip -n "$NS" link set "$dev" up; done
ip addr add 10.77.0.1/24 dev dvlab0
ip link set dvlab0 up

# The leaf switch: its own daemons, state under $LAB/ovs (never the
# system's Open vSwitch), ports cabled to two hosts but left off the bridge
# until the agent applies the intent.
if [ "$SWITCH_ON" = 1 ]; then
  OVS="$LAB/ovs"
  rm -rf "$OVS"; mkdir -p "$OVS"
  export OVS_RUNDIR="$OVS" OVS_DBDIR="$OVS" OVS_LOGDIR="$OVS" OVS_SYSCONFDIR="$OVS"
  for ns in dv-lab-sw dv-lab-h1 dv-lab-h2; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; done
  ip -n dv-lab-sw link set lo up
  ovsdb-tool create "$OVS/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ip netns exec dv-lab-sw /usr/sbin/ovsdb-server "$OVS/conf.db" --remote="punix:$OVS/db.sock" \
    --log-file="$OVS/db.log" --unixctl="$OVS/db.ctl" >/dev/null 2>&1 &
  OVS_PIDS=($!)
  for _ in $(seq 1 50); do [ -S "$OVS/db.sock" ] && break; sleep 0.1; done
  ip netns exec dv-lab-sw /usr/sbin/ovs-vswitchd "unix:$OVS/db.sock" \
    --log-file="$OVS/vs.log" --unixctl="$OVS/vs.ctl" >/dev/null 2>&1 &
  OVS_PIDS=("$!" "${OVS_PIDS[@]}")
  ovs-vsctl --db="unix:$OVS/db.sock" --timeout=10 --no-wait init
  ovs-vsctl --db="unix:$OVS/db.sock" --timeout=10 add-br br0 -- set bridge br0 datapath_type=netdev
  for i in 1 2; do
    ip link add "swp$i" netns dv-lab-sw type veth peer name eth0 netns "dv-lab-h$i"
    ip -n dv-lab-sw link set "swp$i" up
    ip -n "dv-lab-h$i" addr add "192.168.77.$i/24" dev eth0
    ip -n "dv-lab-h$i" link set eth0 up
  done
fi

wait_http() { # URL PID: until URL answers 2xx, while PID lives (30 s at most)
  for _ in $(seq 1 150); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
if [ "$HUB_ON" = 1 ]; then
  # The issuer exits when its stdin closes: this script holds a FIFO open
  # for it, so it goes when the lab goes, whichever way.
  rm -f "$LAB/issuer.in"; mkfifo "$LAB/issuer.in"; exec 8<>"$LAB/issuer.in"
  node tests/oidc-issuer/issuer.mjs 7480 <"$LAB/issuer.in" >"$LAB/issuer.log" 2>&1 &
  HUB_PIDS+=($!)
  wait_http http://127.0.0.1:7480/.well-known/openid-configuration "${HUB_PIDS[-1]}" \
    || { echo "lab: the OIDC issuer did not start; see $LAB/issuer.log" >&2; exit 1; }
  "$ROOT/target/debug/dv-hub" nats-config --config "$LAB/hub/hub.toml" --node hub-1 > "$LAB/hub/hub-1.conf"
  "$NATS" -c "$LAB/hub/hub-1.conf" >"$LAB/hub/nats.log" 2>&1 &
  HUB_PIDS+=($!)
  "$AGENT" nats-config --config "$LAB/agent.toml" > "$LAB/leaf.conf"
  "$NATS" -c "$LAB/leaf.conf" >"$LAB/leaf.log" 2>&1 &
  HUB_PIDS+=($!)
  DV_LOG=info "$ROOT/target/debug/dv-hub" serve --config "$LAB/hub/hub.toml" --replica r1 >"$LAB/hub/r1.log" 2>&1 &
  HUB_PIDS+=($!)
  wait_http http://127.0.0.1:7443/v1/health "${HUB_PIDS[-1]}" \
    || { echo "lab: the hub did not start; see $LAB/hub/r1.log and nats.log" >&2; exit 1; }
fi

"$AGENT" serve --config "$LAB/agent.toml" --log-format "${DV_LAB_LOG_FORMAT:-pretty}" "$@" &
AGENT_PID=$!
for _ in $(seq 1 100); do
  curl -sf http://10.77.0.1:8680/v1/health >/dev/null 2>&1 && break
  kill -0 "$AGENT_PID" 2>/dev/null || exit 1
  sleep 0.2
done

if [ "${DV_LAB_VM:-1}" = 1 ]; then
  ip netns exec "$NS" timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -m 768 -smp 1 \
    -nographic -monitor none -no-reboot -boot n -serial "file:$LAB/vm-serial.log" \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device "e1000,netdev=n0,mac=$MAC" \
    </dev/null >/dev/null 2>&1 &
  VM_PID=$!
  VM_NOTE="  machine: $MAC is network-booting; its console is $LAB/vm-serial.log
           after ~40 s it reports its hardware (see the agent log) and powers off"
else
  VM_NOTE="  (no simulated machine: DV_LAB_VM=0)"
fi

cat >&2 <<MSG

Lab site "lab" is up. The agent serves DHCP, DNS, TFTP and HTTP on dvlab0 (10.77.0.1).
  health:  curl -s http://10.77.0.1:8680/v1/health
  metrics: curl -s http://10.77.0.1:8680/metrics
  dns:     dig @10.77.0.1 artifacts.lab.dataverket.test
$VM_NOTE
  stop:    Ctrl-C; queued writes are committed before the agent exits
MSG
if [ "$SWITCH_ON" = 1 ]; then
  cat >&2 <<MSG
Switch leaf-1 (Open vSwitch, DV_LAB_SWITCH=0 leaves it out) has swp1 and swp2 cabled to
hosts dv-lab-h1 (192.168.77.1) and dv-lab-h2 (.2), off the bridge until you apply:
    dvnet --agent http://10.77.0.1:8680 network create v30 --vlan 30 --purpose tenant --prefix 10.30.0.0/24
    dvnet --agent http://10.77.0.1:8680 profile set v30 --access 30
    dvnet --agent http://10.77.0.1:8680 port assign leaf-1 swp1 --profile v30
    dvnet --agent http://10.77.0.1:8680 port assign leaf-1 swp2 --profile v30
    dvnet --agent http://10.77.0.1:8680 plan leaf-1 && dvnet --agent http://10.77.0.1:8680 apply leaf-1
    ip netns exec dv-lab-h1 ping -c1 192.168.77.2
MSG
fi
if [ "$HUB_ON" = 1 ]; then
  cat >&2 <<MSG
The hub federates the site (DV_LAB_HUB=0 leaves it out):
  hub API:  http://127.0.0.1:7443 (bootstrap token in $LAB/hub/token)
  issuer:   http://127.0.0.1:7480 (dvid login; sign in at its /device page with any e-mail)
  walkthrough (docs/walkthrough.md):
    export PATH="$ROOT/target/debug:\$PATH" DV_HUB=http://127.0.0.1:7443 DV_HUB_TOKEN=$LAB/hub/token \\
           DV_SITE=http://10.77.0.1:8680 DV_ISSUER=http://127.0.0.1:7480
    (link dvid, dvce, dvnet to dv first: docs/cli.md. Step 6 needs a machine with a BMC; the lab's
     VM has none yet, so its provisioning stops at set_pxe and says so. The walkthrough's test
     gives its machine a Redfish emulator.)
MSG
fi
wait "$AGENT_PID"
