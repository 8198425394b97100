#!/usr/bin/env bash
# Builds the discovery environment the agent boots unknown machines into: a
# Debian kernel and a small busybox initrd whose /init brings the first NIC up
# with DHCP, collects hardware facts (CPU, memory, disks, NICs, DMI vendor,
# model and serial), posts them to the agent's boot callback, and powers off.
#
# usage: firmware-ipxe/discovery/build.sh OUTDIR
#   needs: busybox-static, cpio, gzip, and apt-get download (a Debian mirror)
#   writes: OUTDIR/vmlinuz, OUTDIR/initrd.cpio.gz (skips the work if both exist
#           and this script is older than them)
# The kernel command line must carry dv.callback=<URL> (the discovery iPXE
# script sets it); the initrd posts to that URL.
#
# The same initrd is the test beds' install stand-in: booted with
# talos.config=<URL> on its command line (as Talos's installer is), it
# fetches that machine config the way Talos would, checks it is a v1alpha1
# machine config, and reports stage=installed (install-failed if it could
# not), with the config's size and sha256 in the report, instead of
# stage=discovered. It also writes a marker ("DV-INSTALLED <sha256>") to the
# start of the config's install disk, so there is an install to find.
#
# Booted with dv.wipe=1 (the agent's wipe boot state), it is the wipe
# environment: it zeroes the first and last 4 MiB of every disk (partition
# tables, GPT backup, filesystem signatures), reports stage=wiped with the
# disks it erased (wipe-failed if a write failed), and powers off.
set -euo pipefail
OUT=${1:?usage: build.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SELF="${BASH_SOURCE[0]}"
if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.cpio.gz" ] \
   && [ "$OUT/initrd.cpio.gz" -nt "$SELF" ]; then
  exit 0
fi
W=$(mktemp -d /tmp/dv-discovery.XXXXXX)
trap 'rm -rf "$W"' EXIT

# The concrete kernel package behind Debian's linux-image-amd64 metapackage.
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
# Root-owned temp dir: tell apt not to drop to its _apt sandbox user.
( cd "$W" && apt-get -o APT::Sandbox::User=root download "$KPKG" >/dev/null )
dpkg -x "$W"/"$KPKG"_*.deb "$W/k"
KVER=${KPKG#linux-image-}

R=$W/root
mkdir -p "$R"/{bin,proc,sys,dev,tmp,etc,mods}
cp /bin/busybox "$R/bin/busybox"
# Debian builds NIC and disk drivers as modules and the .deb carries no
# modules.dep, so the initrd loads them in dependency order itself.
M=$W/k/lib/modules/$KVER/kernel
for f in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko \
         drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko \
         drivers/virtio/virtio_pci.ko net/core/failover.ko drivers/net/net_failover.ko \
         drivers/net/virtio_net.ko drivers/net/ethernet/intel/e1000/e1000.ko \
         drivers/block/virtio_blk.ko; do
  [ -f "$M/$f" ] && cp "$M/$f" "$R/mods/"
done

cat > "$R/udhcpc.sh" <<'SCRIPT'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "$ip" > /tmp/ip ;;
esac
exit 0
SCRIPT

cat > "$R/init" <<'SCRIPT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "DV-DISCOVERY: started"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         failover net_failover virtio_net e1000 virtio_blk; do
  [ -f /mods/$m.ko ] && insmod /mods/$m.ko 2>/dev/null
done
ip link set lo up
IF=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  IF=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
  [ -n "$IF" ] && break
  sleep 0.5
done
MAC=$(cat /sys/class/net/$IF/address)
ip link set "$IF" up
udhcpc -i "$IF" -s /udhcpc.sh -n -q -t 10 -T 2 -V dataverket-discovery
IP=$(cat /tmp/ip 2>/dev/null)
CPUS=$(grep -c '^processor' /proc/cpuinfo)
MEM_KB=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)
DISKS=""
for d in /sys/block/*; do
  [ -r "$d/size" ] || continue
  n=${d##*/}
  case $n in loop*|ram*|zram*) continue ;; esac
  DISKS="$DISKS${DISKS:+,}$n:$(($(cat $d/size) * 512))"
done
NICS=""
for n in /sys/class/net/*; do
  [ "${n##*/}" = lo ] && continue
  NICS="$NICS${NICS:+,}${n##*/}=$(cat $n/address)"
done
dmi() { tr -c 'A-Za-z0-9._-' '_' < /sys/class/dmi/id/$1 2>/dev/null | sed 's/_*$//'; }
CB=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^dv\.callback=//p')
CFG=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^talos\.config=//p')
STAGE=discovered
EXTRA=""
if [ -n "$CFG" ]; then
  STAGE=install-failed
  for i in 1 2 3; do
    if wget -q -O /tmp/machine.yaml "$CFG" && grep -q 'v1alpha1' /tmp/machine.yaml; then
      STAGE=installed
      EXTRA="&config_bytes=$(wc -c < /tmp/machine.yaml)&config_sha256=$(sha256sum /tmp/machine.yaml | cut -d' ' -f1)"
      echo "DV-INSTALL: machine config fetched$EXTRA"
      DISK=$(sed -n 's/^ *disk: *//p' /tmp/machine.yaml | head -n1)
      if [ -b "$DISK" ]; then
        printf 'DV-INSTALLED %s\n' "$(sha256sum /tmp/machine.yaml | cut -d' ' -f1)" \
          | dd of="$DISK" conv=notrunc 2>/dev/null && sync && echo "DV-INSTALL: marker written to $DISK"
      fi
      break
    fi
    sleep 2
  done
fi
if tr ' ' '\n' < /proc/cmdline | grep -qx 'dv\.wipe=1'; then
  STAGE=wiped
  WIPED=""
  for d in /sys/block/*; do
    n=${d##*/}
    case $n in loop*|ram*|zram*|sr*) continue ;; esac
    MIB=$(($(cat "$d/size") / 2048))
    [ "$MIB" -gt 0 ] || continue
    dd if=/dev/zero of="/dev/$n" bs=1M count=4 2>/dev/null || STAGE=wipe-failed
    if [ "$MIB" -gt 8 ]; then
      dd if=/dev/zero of="/dev/$n" bs=1M seek=$((MIB - 4)) count=4 2>/dev/null || STAGE=wipe-failed
    fi
    WIPED="$WIPED${WIPED:+,}$n"
  done
  sync
  EXTRA="&wiped=$WIPED"
  echo "DV-WIPE: $STAGE: $WIPED"
fi
DATA="stage=$STAGE$EXTRA&ip=$IP&cpus=$CPUS&memory_kb=$MEM_KB&disks=$DISKS&nics=$NICS&vendor=$(dmi sys_vendor)&product=$(dmi product_name)&serial=$(dmi product_serial)"
echo "DV-DISCOVERY: mac=$MAC $DATA"
for i in 1 2 3 4 5; do
  if wget -q -O /tmp/cb.out --post-data "$DATA" "$CB"; then
    echo "DV-DISCOVERY: CALLBACK-OK"
    break
  fi
  sleep 2
done
sync
poweroff -f
SCRIPT
chmod +x "$R/init" "$R/udhcpc.sh"
cp "$W/k/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
( cd "$R" && find . | cpio -o -H newc --quiet | gzip -9 > "$OUT/initrd.cpio.gz.tmp" )
mv "$OUT/initrd.cpio.gz.tmp" "$OUT/initrd.cpio.gz"
echo "discovery environment: $OUT/vmlinuz ($KVER), $OUT/initrd.cpio.gz"
