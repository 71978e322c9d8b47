#!/bin/sh
# nested-arm64-init.sh - /init of nested-arm64.sh's outer aarch64 guest:
# mount the basics, check /dev/kvm, run /job.sh, print its status as
# NESTED-ARM64-STATUS=N on the console and power off.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmp /tmp
ifconfig lo 127.0.0.1 up 2>/dev/null
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
if [ ! -c /dev/kvm ]; then
  echo "nested-arm64: the outer guest has no /dev/kvm" >&2
  echo "NESTED-ARM64-STATUS=125"
else
  cd /tmp && sh /job.sh </dev/null 2>&1
  echo "NESTED-ARM64-STATUS=$?"
fi
echo 1 >/proc/sys/kernel/printk 2>/dev/null
poweroff -f
