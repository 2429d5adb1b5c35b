#!/usr/bin/env bash
# Builds the bookworm stack on this cell: Debian 12 minbase (debootstrap,
# from Debian's package archive) with ca-certificates, tzdata, nodejs, npm,
# python3 and python3-pip, and a vcap user (uid 2000). The agent packs
# <dest>/rootfs into a reproducible layer (fixed times, sorted entries),
# keyed by <dest>/stamp, the list of installed packages.
#
# usage: scripts/build-stack.sh [dest]   (default /var/lib/driftless/stacks/bookworm)
# Idempotent: does nothing when <dest>/stamp exists.
set -euo pipefail
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
