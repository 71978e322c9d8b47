#!/bin/sh
# init.sh - /init of arcvm's test and demo guests (busybox initramfs).
#
# Mounts the basics, loads the modules the image carries, signals that boot
# is done (Firecracker's boot-timer byte at MMIO 0xc0000000, then a marker
# line on the console), and then does what the kernel command line asks:
#   arcvm.mode=shell   (default) an interactive shell on the console
#   arcvm.mode=demo    print kernel, CPUs and memory, then power off
#   arcvm.mode=reboot  reboot at once (the VMM's reboot exit)
#   arcvm.mode=bench   wait a second (the benchmark samples the VMM's
#                      memory then), then power off
#   arcvm.mode=blkbench  run blkbench on /dev/vda (arcvm.benchsecs=N seconds
#                      per pattern), then power off
#   arcvm.mode=netbench  run /bin/netbench (iperf3 and vsock transfers; only
#                      bench/net.sh's image has it), then power off
#   arcvm.net=dhcp     configure eth0 by DHCP (udhcpc)
#   arcvm.ip=ADDR/PREFIX  configure eth0 statically
#   arcvm.root=DEV     first switch to the ext4 root filesystem on DEV (this
#                      script is /init there too, started with "rooted")
#   root=/dev/pmemN    the same for a virtio-pmem root device (what arcvm and
#                      Firecracker add for a root pmem): Debian's kernel has
#                      virtio_pmem and nd_pmem as modules, so the kernel cannot
#                      mount it itself; this initramfs loads them, then
#                      switches. arcvm.root wins when both are given.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
[ -x /bin/load-modules ] && /bin/load-modules >/dev/null 2>&1
# Ctrl-Alt-Del from the host (Firecracker's SendCtrlAltDel) reboots at once;
# there is no init daemon here to catch the kernel's SIGINT.
echo 1 >/proc/sys/kernel/ctrl-alt-del

mode=shell root= pmemroot= benchsecs=5 net=
for arg in $(cat /proc/cmdline); do
  case $arg in
    arcvm.mode=*) mode=${arg#arcvm.mode=} ;;
    arcvm.root=*) root=${arg#arcvm.root=} ;;
    root=/dev/pmem*) pmemroot=${arg#root=} ;;
    arcvm.benchsecs=*) benchsecs=${arg#arcvm.benchsecs=} ;;
    arcvm.net=dhcp) net=dhcp ;;
    arcvm.ip=*) net=${arg#arcvm.ip=} ;;
  esac
done

root=${root:-$pmemroot}
if [ -n "$root" ] && [ "${1:-}" != rooted ]; then
  mkdir -p /newroot
  i=0
  while [ ! -b "$root" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  if mount -t ext4 "$root" /newroot; then
    umount /dev/pts /dev /sys /proc 2>/dev/null
    exec switch_root /newroot /init rooted
  fi
  echo "init: cannot mount $root; staying in the initramfs"
fi

# With console=hvc0 the kernel had no console when it started us (the
# virtio console driver is a module): take hvc0 now that it is loaded.
if grep -q 'console=hvc0' /proc/cmdline; then
  i=0
  while [ ! -c /dev/hvc0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  exec </dev/hvc0 >/dev/hvc0 2>&1
fi

ifconfig lo 127.0.0.1 up 2>/dev/null
case $net in
  '') ;;
  dhcp) udhcpc -i eth0 -s /etc/udhcpc.script -q -n -t 10 >/dev/null 2>&1 ||
          echo "init: DHCP on eth0 failed" ;;
  *) ifconfig eth0 "${net%/*}" netmask "$(ipcalc -m "$net" | cut -d= -f2)" up ;;
esac

# Boot done: 123 at 0xc0000000 is the boot-timer byte (ignored by VMMs
# without one; 0x40000000 on arm64, as in Firecracker), the line is what
# scripts wait for.
timer=0xc0000000
[ "$(uname -m)" = aarch64 ] && timer=0x40000000
devmem $timer 8 123 2>/dev/null
echo "ARCVM-GUEST-READY cpus=$(nproc) mode=$mode"

case $mode in
  bench)
    sleep 1
    poweroff -f ;;
  blkbench)
    blkbench /dev/vda "$benchsecs" 4
    poweroff -f ;;
  netbench)
    netbench "$benchsecs"
    poweroff -f ;;
  reboot)
    reboot -f ;;
  demo)
    echo "kernel:  $(uname -sr)"
    echo "cpus:    $(nproc)"
    echo "memory:  $(awk '/MemTotal/ {printf "%d MiB", $2 / 1024}' /proc/meminfo)"
    echo "uptime:  $(cut -d' ' -f1 /proc/uptime) s"
    poweroff -f ;;
  *)
    export PS1='guest# ' HOME=/root
    # setsid + cttyhack: a session with the console as controlling tty, so
    # Ctrl-C reaches the shell's children. Leaving the shell powers off.
    setsid cttyhack sh
    poweroff -f ;;
esac
