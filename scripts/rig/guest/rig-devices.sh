#!/bin/bash
# rig-devices up|vivid-reload: the virtual rig's hardware.
#  - gpio-sim: one bank of 28 lines named like a Raspberry Pi header (GPIO0..GPIO27), so BCM line N
#    is offset N of gpiochip0; the tests drive inputs through
#    /sys/devices/platform/gpio-sim.0/gpiochip0/sim_gpioN/pull and read outputs from .../value.
#  - vivid: one video capture node (/dev/video0), webcam input (320x180 is one of its sizes).
set -euo pipefail
vivid() { modprobe vivid n_devs=1 node_types=0x1 input_types=0x0; udevadm settle; }
case "${1:-up}" in
  up)
    modprobe gpio-sim
    mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
    d=/sys/kernel/config/gpio-sim/rig
    if [ ! -d "$d" ]; then
      mkdir -p "$d/gpio-bank0"
      echo 28 >"$d/gpio-bank0/num_lines"
      for i in $(seq 0 27); do mkdir "$d/gpio-bank0/line$i"; echo "GPIO$i" >"$d/gpio-bank0/line$i/name"; done
      echo 1 >"$d/live"
    fi
    vivid
    udevadm settle
    ;;
  vivid-reload) modprobe -r vivid; vivid ;;
  *) echo "usage: $0 up|vivid-reload" >&2; exit 2 ;;
esac
