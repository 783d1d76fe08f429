#!/bin/bash
# Writes a rigcam SD-card image from a Raspberry Pi OS Lite (arm64) image. Run as root on Linux.
#
#   sudo deploy/image/build-image.sh --base 2025-10-01-raspios-trixie-arm64-lite.img.xz \
#     --out rigcam.img --release release/rigcam-0.1.0.tar.gz \
#     --hostname rigcam-01 --admin-user lab --ssh-key ~/.ssh/id_ed25519.pub
#
# Stages:
#   1. copy (and unxz) the base image, grow it by --grow-mb and the root file system with it;
#   2. files (always): the release under /opt/rigcam/releases/<version> with /opt/rigcam/current,
#      /etc/rigcam/rigcam.yaml, the units enabled, the rigcam user, hostname, admin SSH keys,
#      sshd enabled, userconf.txt and rigcam.txt.example on the boot partition;
#   3. packages (skip with --skip-packages): apt-get install of deploy/image/packages.txt and
#      `npm ci --omit=dev` inside the image, run under emulation (qemu-user-static + binfmt_misc,
#      chroot). Skipped, the box does it at first boot instead (it then needs the network once).
# Partitions are reached through loop devices with an offset (no partition scanning) and the FAT
# boot partition through mtools, so no vfat mount is needed. Raspberry Pi OS's own first boot
# (root partition expansion, init=... in cmdline.txt) is left alone.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOY="$(dirname "$HERE")"

usage() {
  cat <<EOF
usage: $0 --base IMAGE[.xz] --out IMAGE --release TARBALL [options]
  --hostname NAME       box name (default: rigcam)
  --admin-user NAME     login user for SSH and sudo (default: lab)
  --ssh-key FILE        public key for the admin user (repeatable)
  --password-hash HASH  admin password hash (openssl passwd -6); default: none (key login only)
  --config FILE         rigcam.yaml to install (default: deploy/image/rigcam.default.yaml)
  --token TOKEN         API token, put in rigcam.txt on the boot partition for the first boot
  --grow-mb N           grow the image and root file system by N MiB (default: 1536, 0 with --skip-packages)
  --skip-packages       skip the emulated package stage (done at first boot instead)
EOF
}

BASE="" OUT="" RELEASE="" HOSTNAME_="rigcam" ADMIN="lab" PWHASH="" CONFIG="$HERE/rigcam.default.yaml" TOKEN=""
GROW="" SKIP_PACKAGES=0
KEYS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base) BASE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --release) RELEASE="$2"; shift 2 ;;
    --hostname) HOSTNAME_="$2"; shift 2 ;;
    --admin-user) ADMIN="$2"; shift 2 ;;
    --ssh-key) KEYS+=("$2"); shift 2 ;;
    --password-hash) PWHASH="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --token) TOKEN="$2"; shift 2 ;;
    --grow-mb) GROW="$2"; shift 2 ;;
    --skip-packages) SKIP_PACKAGES=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "build-image: $*" >&2; exit 1; }
log() { echo "build-image: $*"; }

if [ -z "$BASE" ] || [ -z "$OUT" ] || [ -z "$RELEASE" ]; then usage >&2; exit 2; fi
[ "$(id -u)" -eq 0 ] || die "must run as root (loop devices, mount, chroot)"
[ -f "$BASE" ] || die "no base image $BASE"
[ -f "$RELEASE" ] || die "no release tarball $RELEASE (build one with: npm run release)"
[ -f "$CONFIG" ] || die "no config $CONFIG"
[[ "$HOSTNAME_" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]] || die "bad --hostname $HOSTNAME_"
[[ "$ADMIN" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "bad --admin-user $ADMIN"
[ -z "$TOKEN" ] || [[ "$TOKEN" =~ ^[A-Za-z0-9._~+/=-]{16,}$ ]] || die "--token: at least 16 of letters, digits, . _ ~ + / = -"
for k in "${KEYS[@]}"; do [ -f "$k" ] || die "no SSH key file $k"; done
[ ${#KEYS[@]} -gt 0 ] || log "warning: no --ssh-key: add one later with ssh_key= in rigcam.txt"
if [ -z "$GROW" ]; then GROW=1536; [ "$SKIP_PACKAGES" -eq 1 ] && GROW=0; fi
[[ "$GROW" =~ ^[0-9]+$ ]] || die "--grow-mb: a number"
for tool in sfdisk losetup mount mcopy mdir e2fsck resize2fs tar; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install fdisk mount mtools e2fsprogs tar)"
done

WORK="$(mktemp -d)"
ROOTLOOP=""
MNT="$WORK/root"
CHROOT_MOUNTS=()
cleanup() {
  set +e
  for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${CHROOT_MOUNTS[$i]}"; done
  mountpoint -q "$MNT" && umount "$MNT"
  [ -n "$ROOTLOOP" ] && losetup -d "$ROOTLOOP"
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- 1. base image --------------------------------------------------------------------------------
log "copying $BASE to $OUT"
case "$BASE" in
  *.xz) xz -dc "$BASE" >"$OUT" ;;
  *) cp --sparse=always "$BASE" "$OUT" ;;
esac

# partition N -> "start size" in bytes, from sfdisk's dump.
part() {
  sfdisk -d "$OUT" | awk -v n="$1" '
    / : start=/ { i++; if (i != n) next
      gsub(/[,=]/, " "); for (f = 1; f <= NF; f++) { if ($f == "start") s = $(f + 1); if ($f == "size") z = $(f + 1) }
      print s * 512, z * 512 }'
}
read -r BOOT_OFF _ <<<"$(part 1)"
read -r ROOT_OFF ROOT_SIZE <<<"$(part 2)"
[ -n "${ROOT_SIZE:-}" ] || die "$BASE: expected a boot (1) and a root (2) partition"
mdir -i "$OUT@@$BOOT_OFF" ::config.txt >/dev/null 2>&1 || die "$BASE: partition 1 is not a Raspberry Pi boot partition (no config.txt)"

if [ "$GROW" -gt 0 ]; then
  log "growing the image and root partition by $GROW MiB"
  truncate -s "+${GROW}M" "$OUT"
  echo ", +" | sfdisk --no-reread --no-tell-kernel -q -N 2 "$OUT"
  read -r ROOT_OFF ROOT_SIZE <<<"$(part 2)"
fi

ROOTLOOP="$(losetup -f --show -o "$ROOT_OFF" --sizelimit "$ROOT_SIZE" "$OUT")"
if [ "$GROW" -gt 0 ]; then
  e2fsck -f -p "$ROOTLOOP" >/dev/null || [ $? -le 1 ] || die "e2fsck failed on the root file system"
  resize2fs "$ROOTLOOP" >/dev/null 2>&1 || die "resize2fs failed"
fi
mkdir -p "$MNT"
mount -t ext4 "$ROOTLOOP" "$MNT"
[ -f "$MNT/etc/os-release" ] || die "$BASE: partition 2 has no /etc/os-release"

# --- 2. files -----------------------------------------------------------------------------------
tar -xzf "$RELEASE" -C "$WORK" --no-same-owner
TOP="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'rigcam-*' | head -n 1)"
if [ -z "$TOP" ] || [ ! -f "$TOP/package.json" ] || [ ! -f "$TOP/bin/rigcam.js" ]; then die "$RELEASE is not a rigcam release"; fi
VERSION="$(grep -o '"version"[[:space:]]*:[[:space:]]*"[^"]*"' "$TOP/package.json" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')"
[ -n "$VERSION" ] || die "no version in $RELEASE's package.json"
log "installing rigcam $VERSION"
rm -rf "$MNT/opt/rigcam/releases/$VERSION"
mkdir -p "$MNT/opt/rigcam/releases"
mv "$TOP" "$MNT/opt/rigcam/releases/$VERSION"
chown -R 0:0 "$MNT/opt/rigcam/releases/$VERSION"
ln -sfn "releases/$VERSION" "$MNT/opt/rigcam/current"

# The service account: sysusers creates it now when the host has systemd-sysusers, and at boot anyway.
install -D -m 0644 "$DEPLOY/systemd/rigcam.sysusers" "$MNT/usr/lib/sysusers.d/rigcam.conf"
if command -v systemd-sysusers >/dev/null; then
  systemd-sysusers --root="$MNT" "$MNT/usr/lib/sysusers.d/rigcam.conf"
fi

install -d -m 0755 "$MNT/etc/rigcam"
install -m 0640 "$CONFIG" "$MNT/etc/rigcam/rigcam.yaml"
# Readable by the service's group (the config holds the API token); first boot fixes it otherwise.
RIGCAM_GID="$(awk -F: '$1 == "rigcam" { print $3 }' "$MNT/etc/group")"
[ -z "$RIGCAM_GID" ] || chown "0:$RIGCAM_GID" "$MNT/etc/rigcam/rigcam.yaml"
echo "$ADMIN" >"$MNT/etc/rigcam/admin-user"

install -m 0644 "$DEPLOY/systemd/rigcam.service" "$MNT/etc/systemd/system/rigcam.service"
install -m 0644 "$HERE/rigcam-firstboot.service" "$MNT/etc/systemd/system/rigcam-firstboot.service"
install -m 0644 "$HERE/rigcam-doctor.service" "$MNT/etc/systemd/system/rigcam-doctor.service"
install -D -m 0755 "$HERE/firstboot.sh" "$MNT/usr/local/lib/rigcam/firstboot.sh"
mkdir -p "$MNT/etc/systemd/system/multi-user.target.wants"
for unit in rigcam.service rigcam-firstboot.service rigcam-doctor.service; do
  ln -sfn "/etc/systemd/system/$unit" "$MNT/etc/systemd/system/multi-user.target.wants/$unit"
done
for dir in lib/systemd/system usr/lib/systemd/system; do
  if [ -f "$MNT/$dir/ssh.service" ]; then
    ln -sfn "/$dir/ssh.service" "$MNT/etc/systemd/system/multi-user.target.wants/ssh.service"
    ln -sfn "/$dir/ssh.service" "$MNT/etc/systemd/system/sshd.service"
    break
  fi
done

# Admin SSH keys live outside the home directory, which Raspberry Pi OS creates (renames) at first boot.
install -d -m 0755 "$MNT/etc/ssh/authorized_keys" "$MNT/etc/ssh/sshd_config.d"
: >"$MNT/etc/ssh/authorized_keys/$ADMIN"
for k in "${KEYS[@]}"; do cat "$k" >>"$MNT/etc/ssh/authorized_keys/$ADMIN"; done
chmod 0644 "$MNT/etc/ssh/authorized_keys/$ADMIN"
cat >"$MNT/etc/ssh/sshd_config.d/rigcam.conf" <<'EOF'
# rigcam: admin keys are kept in /etc/ssh/authorized_keys/<user> (written by the image build and first boot).
AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u
PasswordAuthentication no
EOF
install -d -m 0750 "$MNT/etc/sudoers.d"
echo "$ADMIN ALL=(ALL) NOPASSWD: ALL" >"$MNT/etc/sudoers.d/010-rigcam-admin"
chmod 0440 "$MNT/etc/sudoers.d/010-rigcam-admin"

echo "$HOSTNAME_" >"$MNT/etc/hostname"
if grep -q '^127\.0\.1\.1[[:space:]]' "$MNT/etc/hosts"; then
  sed -i "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1\t$HOSTNAME_/" "$MNT/etc/hosts"
else
  printf '127.0.1.1\t%s\n' "$HOSTNAME_" >>"$MNT/etc/hosts"
fi

# The token goes the way a lab's would: rigcam.txt on the boot partition, moved into the config
# (and deleted) by the first boot.
if [ -n "$TOKEN" ]; then
  printf '# written by build-image.sh --token; applied and deleted at first boot\ntoken=%s\n' "$TOKEN" >"$WORK/rigcam.txt"
fi

# Boot partition: sshd on, the admin user (Raspberry Pi OS's first boot creates it from userconf.txt
# instead of asking on the console), and the settings template.
: >"$WORK/ssh"
printf '%s:%s\n' "$ADMIN" "${PWHASH:-*}" >"$WORK/userconf.txt"
mcopy -o -i "$OUT@@$BOOT_OFF" "$WORK/ssh" "$WORK/userconf.txt" "$HERE/rigcam.txt.example" ::
[ -f "$WORK/rigcam.txt" ] && mcopy -o -i "$OUT@@$BOOT_OFF" "$WORK/rigcam.txt" ::rigcam.txt

# --- 3. packages under emulation ------------------------------------------------------------------
if [ "$SKIP_PACKAGES" -eq 1 ]; then
  log "skipped the package stage: the box installs $(grep -v '^#' "$HERE/packages.txt" | xargs) and runs npm ci at first boot (needs the network)"
else
  [ "$(uname -m)" = aarch64 ] || [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
    die "package stage: no arm64 emulation (apt-get install qemu-user-static binfmt-support), or pass --skip-packages"
  log "installing packages inside the image (emulated; this takes a while)"
  for m in dev dev/pts proc sys; do
    mount --bind "/$m" "$MNT/$m"
    CHROOT_MOUNTS+=("$MNT/$m")
  done
  cp "$MNT/etc/resolv.conf" "$WORK/resolv.conf.image" 2>/dev/null || true
  cp --remove-destination /etc/resolv.conf "$MNT/etc/resolv.conf"
  PKGS="$(grep -v '^#' "$HERE/packages.txt" | xargs)"
  chroot "$MNT" /usr/bin/env DEBIAN_FRONTEND=noninteractive /bin/sh -ec "
    apt-get update
    apt-get install -y --no-install-recommends $PKGS
    major=\$(node -p 'process.versions.node.split(\".\")[0]')
    [ \"\$major\" -ge 20 ] || { echo 'Node.js '\$major' is too old: rigcam needs 20+ (use a trixie-based image, see deploy/README.md)' >&2; exit 1; }
    cd /opt/rigcam/current && npm ci --omit=dev --no-audit --no-fund
    apt-get clean"
  if [ -f "$WORK/resolv.conf.image" ]; then cp --remove-destination "$WORK/resolv.conf.image" "$MNT/etc/resolv.conf"; fi
  for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do umount "${CHROOT_MOUNTS[$i]}"; done
  CHROOT_MOUNTS=()
fi

sync
log "done: $OUT (rigcam $VERSION, host $HOSTNAME_, admin $ADMIN). Flash it, then see deploy/README.md."
