#!/bin/bash
# Runs inside the rig's root file system while scripts/rig/build-image.sh builds it (chroot, with
# /proc, /sys and /dev mounted by mmdebstrap). Builds gpio-sim for the image's kernel, configures
# boot, network, SSH and the rig's devices, then removes the build-only packages.
set -euo pipefail
G=/tmp/guest

# The kernel and its headers must be the same build: both come from the metapackages of one suite
# snapshot; check it rather than trust it.
kver="$(ls /lib/modules)"
[ "$(echo "$kver" | wc -w)" -eq 1 ] || { echo "expected one kernel, got: $kver" >&2; exit 1; }
[ -d "/usr/src/linux-headers-$kver" ] || { echo "no headers for $kver" >&2; exit 1; }
echo "$kver" >/etc/rig-kernel-version

# gpio-sim out of tree: Debian enables neither CONFIG_GPIO_SIM nor CONFIG_IRQ_SIM, so irq_sim.c is
# linked into the same module (its exports dropped: nothing else uses them) and its one use of the
# unexported irq_to_desc() replaced by generic_handle_irq(), which does the same for a simple irq.
src_tar="$(ls /usr/src/linux-source-*.tar.xz)"
top="$(basename "$src_tar" .tar.xz)"
b=/tmp/gpio-sim-build
mkdir -p "$b"
tar -xJf "$src_tar" -C "$b" "$top/drivers/gpio/gpio-sim.c" "$top/kernel/irq/irq_sim.c"
cp "$b/$top/drivers/gpio/gpio-sim.c" "$b/gpio-sim-main.c"
sed -e '/^EXPORT_SYMBOL/d' -e 's/handle_simple_irq(irq_to_desc(\([^)]*\)))/generic_handle_irq(\1)/' \
  "$b/$top/kernel/irq/irq_sim.c" >"$b/irq_sim.c"
grep -q irq_to_desc "$b/irq_sim.c" && { echo "irq_sim.c still uses irq_to_desc" >&2; exit 1; }
printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' >"$b/Kbuild"
make -C "/usr/src/linux-headers-$kver" M="$b" -j2 modules
install -D -m 0644 "$b/gpio-sim.ko" "/lib/modules/$kver/updates/gpio-sim.ko"
depmod "$kver"
rm -rf "$b"

# The rig's devices and helpers.
install -m 0755 "$G/rig-devices.sh" /usr/local/sbin/rig-devices
install -m 0644 "$G/rig-devices.service" /etc/systemd/system/rig-devices.service
install -m 0644 "$G/99-rig-gpio.rules" /etc/udev/rules.d/99-rig-gpio.rules
systemctl enable rig-devices.service
groupadd --system gpio 2>/dev/null || true

# Boot straight from the kernel (qemu -kernel): root on the virtio disk, no bootloader.
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >/etc/fstab
echo rigbox >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 rigbox\n' >/etc/hosts
# QEMU user networking: fixed address, nothing to wait for.
install -D -m 0644 "$G/10-rig.network" /etc/systemd/network/10-rig.network
systemctl enable systemd-networkd.service
systemctl mask systemd-networkd-wait-online.service systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer 2>/dev/null || true
# The journal survives reboots (the power-cut scenario reads the boot before the cut).
mkdir -p /var/log/journal
# Root logs in with the rig's key only.
install -d -m 0700 /root/.ssh
install -m 0600 /tmp/rig.pub /root/.ssh/authorized_keys
passwd -d root >/dev/null
# The box reaches no archive: no sources, so `apt-get update` (run by the ansible role) finds nothing
# to fetch and succeeds, and every package the role asks for is already installed.
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*

apt-get purge -y -q linux-headers-amd64 'linux-headers-*' 'linux-source*' 'linux-kbuild-*' gcc make >/dev/null
apt-get autoremove -y -q --purge >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/guest /tmp/rig.pub /usr/share/doc/* /usr/share/man/*
