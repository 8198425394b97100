#!/usr/bin/env bash
# Builds the project's iPXE first stages from Debian's ipxe source package,
# with Debian's patches applied and firmware-ipxe/embedded.ipxe embedded:
#
#   OUTDIR/undionly.kpxe   BIOS PXE first stage       (src/bin/undionly.kpxe)
#   OUTDIR/snponly.efi     x86-64 UEFI first stage     (src/bin-x86_64-efi/snponly.efi)
#   OUTDIR/8086100e.rom    e1000 NIC option ROM, for the QEMU BIOS test only
#   OUTDIR/SHA256SUMS      their digests
#   OUTDIR/BUILDINFO       source version, .dsc and embedded.ipxe digests, build time
#
# Usage: build-ipxe.sh OUTDIR
#
# Idempotent: does nothing when every output is newer than this script and
# the embedded script. The source is the version of Debian's `ipxe` package
# installed here (IPXE_VERSION overrides), fetched with `apt-get source`
# through a private deb-src list (the machine's apt configuration is not
# touched): apt checks the .dsc against the signed Sources index and
# dpkg-source checks the tarballs against the .dsc, then applies Debian's
# quilt patches. The unpacked tree is kept in IPXE_WORK (default
# .cache/ipxe-build) so a rebuild after a script change only recompiles.
# Build dependencies: scripts/setup.sh installs them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
EMBED_SCRIPT="$HERE/embedded.ipxe"
SELF="$HERE/build-ipxe.sh"
OUTPUTS=(undionly.kpxe snponly.efi 8086100e.rom SHA256SUMS)

log() { printf '\033[1mbuild-ipxe:\033[0m %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"

fresh=1
for f in "${OUTPUTS[@]}"; do
  if [ ! -s "$OUT/$f" ] || [ "$OUT/$f" -ot "$SELF" ] || [ "$OUT/$f" -ot "$EMBED_SCRIPT" ]; then
    fresh=0
  fi
done
if [ "$fresh" = 1 ]; then
  log "up to date: $OUT"
  exit 0
fi

started=$(date +%s)
VERSION="${IPXE_VERSION:-$(dpkg-query -W -f='${Version}' ipxe 2>/dev/null || true)}"
[ -n "$VERSION" ] || die "Debian's ipxe package is not installed and IPXE_VERSION is unset"
UPSTREAM="${VERSION%-*}"
WORK="${IPXE_WORK:-$ROOT/.cache/ipxe-build}"
SRC="$WORK/ipxe-$UPSTREAM"
DSC="$WORK/ipxe_${VERSION}.dsc"
mkdir -p "$WORK"

# 1. Fetch the source package, once per version.
if [ ! -f "$SRC/.dv-unpacked" ]; then
  # shellcheck disable=SC1091
  CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  APT="$WORK/apt"
  mkdir -p "$APT/lists/partial"
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
    "$CODENAME" >"$APT/sources.list"
  apt_opts=(
    -o "Dir::Etc::SourceList=$APT/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$APT/lists"
    -o "APT::Sandbox::User=root"
  )
  log "fetching Debian's ipxe source $VERSION"
  # The Sources index is ~10 MB: refresh it at most daily.
  if [ -z "$(find "$APT/lists" -maxdepth 1 -name '*Sources*' -mmin -1440 2>/dev/null)" ]; then
    apt-get "${apt_opts[@]}" -qq update >&2 \
      || die "apt-get update of the private deb-src list failed"
  fi
  (cd "$WORK" && apt-get "${apt_opts[@]}" -qq source --download-only "ipxe=$VERSION" >&2) \
    || die "cannot fetch Debian's ipxe source $VERSION (apt-get source failed; see above: the archive or its mirror must serve pool/main/i/ipxe/*.orig.tar.xz and *.debian.tar.xz)"
  rm -rf "$SRC"
  log "unpacking with Debian's patches (dpkg-source -x checks the .dsc's checksums)"
  (cd "$WORK" && dpkg-source --no-copy -x "$DSC" "$SRC" >&2) \
    || die "dpkg-source -x $DSC failed"
  touch "$SRC/.dv-unpacked"
fi

# 2. Local build configuration (iPXE's config/local/ overrides): the
#    embedded script's power-off needs POWEROFF_CMD; no Ctrl-B banner wait.
mkdir -p "$SRC/src/config/local"
cat >"$SRC/src/config/local/general.h" <<'EOF'
/* Dataverket: written by firmware-ipxe/build-ipxe.sh */
#define POWEROFF_CMD
#undef BANNER_TIMEOUT
#define BANNER_TIMEOUT 0
EOF

# 3. Build only what the project serves (and the QEMU test ROM), two jobs.
#    NO_WERROR: this 2019 tree predates the compiler's newer warnings.
cp "$EMBED_SCRIPT" "$WORK/embedded.ipxe"
make_args=(-C "$SRC/src" -j2 NO_WERROR=1 "EMBED=$WORK/embedded.ipxe")
log "building bin/undionly.kpxe bin/8086100e.rom"
make "${make_args[@]}" bin/undionly.kpxe bin/8086100e.rom >"$WORK/build-bios.log" 2>&1 \
  || { tail -30 "$WORK/build-bios.log" >&2; die "BIOS build failed (log: $WORK/build-bios.log)"; }
log "building bin-x86_64-efi/snponly.efi"
make "${make_args[@]}" bin-x86_64-efi/snponly.efi >"$WORK/build-efi.log" 2>&1 \
  || { tail -30 "$WORK/build-efi.log" >&2; die "UEFI build failed (log: $WORK/build-efi.log)"; }

# 4. Install the outputs atomically enough: copy, then digests last.
rm -f "$OUT/SHA256SUMS"
install -m 0644 "$SRC/src/bin/undionly.kpxe" "$OUT/undionly.kpxe"
install -m 0644 "$SRC/src/bin-x86_64-efi/snponly.efi" "$OUT/snponly.efi"
install -m 0644 "$SRC/src/bin/8086100e.rom" "$OUT/8086100e.rom"
elapsed=$(($(date +%s) - started))
{
  echo "source: Debian ipxe $VERSION ($(sha256sum "$DSC" | cut -d' ' -f1)  $(basename "$DSC"))"
  echo "patches: debian/patches as applied by dpkg-source -x"
  echo "embedded: firmware-ipxe/embedded.ipxe $(sha256sum "$EMBED_SCRIPT" | cut -d' ' -f1)"
  echo "config: POWEROFF_CMD, BANNER_TIMEOUT 0 (config/local/general.h)"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${elapsed}s with $(gcc --version | head -1)"
} >"$OUT/BUILDINFO"
(cd "$OUT" && sha256sum undionly.kpxe snponly.efi 8086100e.rom >SHA256SUMS.tmp \
  && mv SHA256SUMS.tmp SHA256SUMS)
log "built in ${elapsed}s: $(cd "$OUT" && ls -l undionly.kpxe snponly.efi 8086100e.rom | awk '{print $5, $9}' | paste -sd' ')"
