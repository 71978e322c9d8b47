#!/usr/bin/env bash
# blk.sh - virtio-blk throughput: arcvm against QEMU's microvm, same guest
# kernel and initramfs, same raw image, in one run on one machine. The guest
# runs tests/guest/blkbench.c (O_DIRECT on /dev/vda): sequential 1 MiB
# reads and writes, 4 KiB random reads and writes with 4 threads.
# Both VMMs use io_uring and the host page cache (QEMU: aio=io_uring, its
# default writeback cache; arcvm: buffered I/O through io_uring).
#
# Usage: bench/blk.sh [-n ROUNDS] [-s SECONDS_PER_PATTERN]
set -euo pipefail
cd "$(dirname "$0")/.."
n=3 secs=5
while getopts 'n:s:' o; do
  case $o in n) n=$OPTARG ;; s) secs=$OPTARG ;; *) exit 2 ;; esac
done

[ -x build/blkbench ] || { echo "blk.sh: build first (make)" >&2; exit 1; }
. bench/lib.sh
bench_enter blk.sh 3000 -n "$n" -s "$secs"

kernel=$ARCVM_BENCH_KERNEL initrd=$ARCVM_BENCH_INITRD
tmp=$(mktemp -d /tmp/arcvm-blkbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
img=$tmp/disk.img
# Written out in full so that every read hits real data, not a hole.
dd if=/dev/zero of="$img" bs=1M count=256 status=none
extra="quiet arcvm.mode=blkbench arcvm.benchsecs=$secs"
cmdline="console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 $extra"

run_vmm() { # prints the BLKBENCH values as 4 columns
  timeout 900 "$@" </dev/null 2>"$tmp/err" | tr -d '\r' |
    sed -n 's/^BLKBENCH seq_read_mibs=\([^ ]*\) seq_write_mibs=\([^ ]*\) rand_read_iops=\([^ ]*\) rand_write_iops=\([^ ]*\)$/\1 \2 \3 \4/p'
}

arcvm_cmd=(build/arcvm run --kernel "$kernel" --initrd "$initrd" --memory 256M
           --disk "$img" --cmdline "$extra")
qemu_cmd=(qemu-system-x86_64 -M microvm,accel=kvm -cpu host -smp 1 -m 256M
          -nodefaults -no-user-config -nographic -no-reboot
          -global virtio-mmio.force-legacy=false
          -drive "file=$img,format=raw,if=none,id=d0,aio=io_uring"
          -device virtio-blk-device,drive=d0
          -chardev stdio,id=con -serial chardev:con
          -kernel "$kernel" -initrd "$initrd" -append "$cmdline")

echo "blk.sh: $n rounds, ${secs}s per pattern, alternating arcvm and QEMU microvm" >&2
for i in $(seq "$n"); do
  run_vmm "${arcvm_cmd[@]}" >>"$tmp/arcvm" || true
  run_vmm "${qemu_cmd[@]}" >>"$tmp/qemu" || true
  echo "blk.sh: round $i/$n: arcvm $(tail -1 "$tmp/arcvm" 2>/dev/null) | qemu $(tail -1 "$tmp/qemu" 2>/dev/null)" >&2
done

median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {if (!NR) print "NA"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
row() { echo "| $1 | $(median "$2" 1) | $(median "$2" 2) | $(median "$2" 3) | $(median "$2" 4) |"; }
qemu_ver=$(qemu-system-x86_64 --version | head -1 | sed 's/^QEMU emulator version //')
echo
echo "virtio-blk: 256 MiB raw image on the host's tmpfs, guest O_DIRECT, ${secs}s per pattern, medians of $n; $(date -u +%Y-%m-%d)"
echo "Where: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs${ARCVM_IN_NESTED_GUEST:+ (nested QEMU/TCG guest)}"
echo
echo "| VMM | seq read MiB/s | seq write MiB/s | 4K rand read IOPS (4 threads) | 4K rand write IOPS (4 threads) |"
echo "|---|---|---|---|---|"
row "arcvm $(build/arcvm --version | cut -d' ' -f2)" "$tmp/arcvm"
row "QEMU $qemu_ver microvm" "$tmp/qemu"
