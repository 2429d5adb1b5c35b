#!/usr/bin/env bash
# Builds the bookworm stack on this cell: Debian 12 minbase (debootstrap,
# from Debian's package archive) with ca-certificates, tzdata, nodejs, npm,
# python3 and python3-pip, and a vcap user (uid 2000). The agent packs
# <dest>/rootfs into a reproducible layer (fixed times, sorted entries),
# keyed by <dest>/stamp, the list of installed packages.
#
# With --jre it builds the JRE layer of the java buildpack over a built
# bookworm stack: Debian's openjdk-17-jre-headless installed with apt in an
# overlay of the stack, of which only the upper folder (what the JRE adds
# or changes) is kept as <dest>/rootfs. <dest>/stamp lists the packages it
# added and <dest>/base-stamp is the stack's stamp it was built over: the
# layer is rebuilt when the stack changes, and the agent refuses a JRE layer
# that does not match its stack.
#
# usage: scripts/build-stack.sh [dest]         (default /var/lib/driftless/stacks/bookworm)
#        scripts/build-stack.sh --jre [dest] [stack]
#                                (default /var/lib/driftless/stacks/bookworm-jre over …/bookworm)
# Idempotent: does nothing when <dest>/stamp exists (and, with --jre, the
# stack's stamp is the one it was built over).
set -euo pipefail

# build_jre DEST STACK: the JRE layer (see above).
build_jre() {
  local dest=$1 base=$2 jre=openjdk-17-jre-headless
  if [ ! -f "$base/stamp" ]; then
    echo "build-stack: no stack at $base to build the JRE layer over (run scripts/build-stack.sh first)" >&2
    return 1
  fi
  if [ -f "$dest/stamp" ] && cmp -s "$dest/base-stamp" "$base/stamp"; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-stack: run as root (overlay mount, chroot)" >&2
    return 1
  fi
  local tmp="$dest.tmp"
  local merged="$tmp/merged"
  # What a killed run left mounted, before its folder goes.
  umount "$merged/proc" 2>/dev/null || true
  umount "$merged" 2>/dev/null || true
  rm -rf "$tmp"
  mkdir -p "$tmp/rootfs" "$tmp/work" "$merged"
  echo "build-stack: $jre over $base into $dest — a minute or two the first time"
  mount -t overlay overlay -o "lowerdir=$base/rootfs,upperdir=$tmp/rootfs,workdir=$tmp/work" "$merged"
  # shellcheck disable=SC2064 # the paths as they are now
  trap "umount '$merged/proc' 2>/dev/null || true; umount '$merged' 2>/dev/null || true" EXIT
  cp /etc/resolv.conf "$merged/etc/resolv.conf"
  # The stack has no manual pages; update-alternatives links the JRE's.
  mkdir -p "$merged/usr/share/man/man1"
  mount -t proc proc "$merged/proc"
  {
    chroot "$merged" apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive chroot "$merged" apt-get install -y -qq --no-install-recommends "$jre" &&
      chroot "$merged" java -version &&
      test -s "$merged/etc/ssl/certs/java/cacerts"
  } > "$tmp/rootfs.log" 2>&1 || {
    tail -n 30 "$tmp/rootfs.log" >&2
    return 1
  }
  umount "$merged/proc"
  rm -rf "$merged"/usr/share/doc/* "$merged"/usr/share/man/* "$merged"/usr/share/info/*
  find "$merged/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
  rm -rf "$merged"/var/cache/apt/* "$merged"/var/lib/apt/lists/* "$merged"/var/log/* \
    "$merged"/var/cache/debconf/*-old "$merged"/var/lib/dpkg/*-old "$merged"/tmp/* "$merged"/var/tmp/*
  chroot "$merged" dpkg-query -W -f '${Package} ${Version}\n' | sort > "$tmp/all"
  umount "$merged"
  trap - EXIT
  # The stack's (empty) resolv.conf again; overlay whiteouts (character
  # devices) would not survive packing: none is expected.
  rm -f "$tmp/rootfs/etc/resolv.conf"
  local whiteouts
  whiteouts=$(find "$tmp/rootfs" -type c | wc -l)
  [ "$whiteouts" -eq 0 ] || echo "build-stack: warning: $whiteouts file(s) removed by the JRE's install are kept from the stack"
  find "$tmp/rootfs" -type c -delete
  comm -13 "$base/stamp" "$tmp/all" > "$tmp/stamp"
  cp "$base/stamp" "$tmp/base-stamp"
  rm -rf "$tmp/merged" "$tmp/work" "$tmp/all"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  echo "build-stack: JRE layer in $dest: $(wc -l < "$dest/stamp") packages added, $(du -sh "$dest/rootfs" | cut -f1)"
}
if [ "${1:-}" = --jre ]; then
  build_jre "${2:-/var/lib/driftless/stacks/bookworm-jre}" "${3:-/var/lib/driftless/stacks/bookworm}"
  exit
fi
dest=${1:-/var/lib/driftless/stacks/bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=ca-certificates,tzdata
runtimes="nodejs npm python3 python3-pip"

if [ -f "$dest/stamp" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build-stack: run as root (debootstrap)" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "build-stack: installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
tmp="$dest.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
echo "build-stack: debootstrap bookworm + $runtimes into $dest — a few minutes the first time"
debootstrap --variant=minbase --include="$base" bookworm "$tmp/rootfs" "$mirror" > "$tmp/debootstrap.log" 2>&1 || {
  tail -n 30 "$tmp/debootstrap.log" >&2
  exit 1
}
root="$tmp/rootfs"
# The runtimes through apt inside the new system: debootstrap's own
# resolver does not follow the virtual packages npm depends on.
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
{
  chroot "$root" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends $runtimes
} >> "$tmp/debootstrap.log" 2>&1 || {
  tail -n 30 "$tmp/debootstrap.log" >&2
  exit 1
}
umount "$root/proc"
: > "$root/etc/resolv.conf" # the runtime mounts the host's
chroot "$root" /usr/sbin/groupadd -g 2000 vcap
chroot "$root" /usr/sbin/useradd -u 2000 -g 2000 -d /home/vcap -m -s /bin/sh vcap
# Documentation no app reads.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
# What changes from run to run and no app needs: caches, logs, machine ids.
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
  "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.npm
: > "$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_* "$root"/var/lib/dbus/machine-id
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' | sort > "$tmp/stamp"
mv "$tmp/debootstrap.log" "$tmp/rootfs.log"
rm -rf "$dest"
mv "$tmp" "$dest"
echo "build-stack: $(wc -l < "$dest/stamp") packages in $dest"
