#!/bin/bash
# Builds the virtual rig's disk image (test/rig/): a Debian 13 "trixie" amd64 root file system made
# with mmdebstrap from Debian's packages only (kernel + initramfs, systemd, udev, ffmpeg, v4l-utils,
# gpiod, nodejs, openssh-server, python3), the kernel's gpio-sim built out of tree for its kernel, and
# an ext4 image of it (mkfs.ext4 -d). Run as root.
#
#   scripts/rig/build-image.sh            # prints the cache folder holding the image
#
# Cached: the output lands in $RIG_CACHE/<hash of this folder's files> (default /var/cache/rigcam-rig);
# a second run with the same inputs prints that folder at once. The folder holds disk.img (raw ext4,
# never booted directly: each boot uses a qcow2 overlay), vmlinuz, initrd.img, the root SSH key
# (id_ed25519), the guest's SSH host key (ssh_host_ed25519_key.pub), kernel-version, build-seconds.
# RIG_MIRROR overrides the Debian mirror (default: the host's, http://deb.debian.org/debian).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${RIG_CACHE:-/var/cache/rigcam-rig}"
MIRROR="${RIG_MIRROR:-http://deb.debian.org/debian}"
SUITE=trixie

die() { echo "rig build-image: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, chroot, mkfs)"
for t in mmdebstrap mkfs.ext4 sha256sum; do command -v "$t" >/dev/null || die "$t is missing (apt-get install mmdebstrap e2fsprogs)"; done

# The key: every file that shapes the image (this script, the guest's files) and the mirror.
key="$( (cd "$HERE" && find build-image.sh guest -type f -print0 | sort -z | xargs -0 sha256sum; echo "$MIRROR $SUITE") | sha256sum | cut -c1-16)"
out="$CACHE_ROOT/$key"
if [ -f "$out/DONE" ]; then echo "$out"; exit 0; fi

mkdir -p "$CACHE_ROOT"
work="$(mktemp -d "$CACHE_ROOT/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Killed (a test's time-out, Ctrl-C): still leave no half-built 2 GB tree behind.
trap 'exit 143' TERM
trap 'exit 130' INT
root="$work/root"
t0=$(date +%s)

# Build-only packages (headers, the kernel source tarball, gcc) are purged again by guest-setup.sh.
PKGS=(
  linux-image-amd64 initramfs-tools systemd systemd-sysv udev dbus kmod iproute2 procps
  openssh-server python3 python3-apt ffmpeg v4l-utils gpiod nodejs sqlite3 ca-certificates
  linux-headers-amd64 linux-source gcc make xz-utils
)
ssh-keygen -q -t ed25519 -N '' -C rigcam-rig -f "$work/id_ed25519"
echo "rig build-image: mmdebstrap $SUITE from $MIRROR" >&2
nice -n 10 mmdebstrap --variant=apt --components=main --include="$(IFS=,; echo "${PKGS[*]}")" \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --customize-hook="copy-in $HERE/guest /tmp" \
  --customize-hook="upload $work/id_ed25519.pub /tmp/rig.pub" \
  --customize-hook="chroot \"\$1\" bash /tmp/guest/setup.sh" \
  "$SUITE" "$root" "$MIRROR" >&2

kver="$(cat "$root/etc/rig-kernel-version")"
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"
cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$work/"
echo "$kver" >"$work/kernel-version"

# Room for recordings and a couple of releases beside the system.
used_mb=$(du -sm "$root" | cut -f1)
size_mb=$((used_mb + 1536))
nice -n 10 mkfs.ext4 -q -L rigroot -d "$root" "$work/disk.img" "${size_mb}M" >&2
rm -rf "$root"
echo $(( $(date +%s) - t0 )) >"$work/build-seconds"
touch "$work/DONE"
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
echo "rig build-image: built in $(cat "$out/build-seconds") s: $out" >&2
echo "$out"
