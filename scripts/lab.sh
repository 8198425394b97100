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

cargo build --locked -p dv-agent
AGENT="$ROOT/target/debug/dv-agent"
"$AGENT" check-config "$LAB/agent.toml"

AGENT_PID=""
VM_PID=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$VM_PID" ] && kill "$VM_PID" 2>/dev/null && wait "$VM_PID" 2>/dev/null
  if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true
  fi
  ip link del dvlab0 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
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
wait "$AGENT_PID"
