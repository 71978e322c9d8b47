#!/usr/bin/env bash
# boot.sh - boot-time and memory-overhead benchmark: arcvm against QEMU's
# microvm, booting the same kernel and initramfs with the same command line,
# alternately, in one run on one machine. Prints a markdown table.
#
# Usage: bench/boot.sh [-n BOOTS] [-c CPUS] [-m MEMORY_MIB]
#
# Measured per boot:
#  - start -> init: from just before the VMM process is spawned to the moment
#    the guest's /init prints its marker line on the serial console;
#  - VMM overhead: the VMM's resident memory minus guest RAM, sampled while
#    the guest sits in init (VmRSS - RssShmem; both VMMs get their guest RAM
#    from a memfd, so guest pages are shared memory in both).
# arcvm runs twice per round: as by default, starting the kernel it unpacked
# into its kernel cache on an earlier boot (a warm-up boot fills the cache),
# and with --kernel-cache off, where the guest decompresses the bzImage
# itself as it does under QEMU.
# Where `arcvm check` says this host's KVM cannot run a stock guest, this
# runs inside the nested QEMU/TCG guest (tests/harness/nested.sh): absolute
# numbers are then slow and noisy, the ratio between the two VMMs is what to
# read.
set -euo pipefail
cd "$(dirname "$0")/.."
n=5 cpus=1 mem=256
while getopts 'n:c:m:' o; do
  case $o in n) n=$OPTARG ;; c) cpus=$OPTARG ;; m) mem=$OPTARG ;; *) exit 2 ;; esac
done

. bench/lib.sh
bench_enter boot.sh 3000 -n "$n" -c "$cpus" -m "$mem"

kernel=$ARCVM_BENCH_KERNEL initrd=$ARCVM_BENCH_INITRD
tmp=$(mktemp -d /tmp/arcvm-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache  # arcvm's kernel cache: private to this run
extra="quiet arcvm.mode=bench"
# arcvm prepends its defaults; QEMU gets the same full line.
cmdline="console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 $extra"

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# run_one CMD...: prints "<ms to init marker> <VMM overhead KiB>".
run_one() {
  local fifo=$tmp/console
  rm -f "$fifo"; mkfifo "$fifo"
  local t0; t0=$(now_us)
  "$@" </dev/null >"$fifo" 2>"$tmp/err" &
  local pid=$! t1=0 kib=0 line
  while IFS= read -r line; do
    case $line in
      *ARCVM-GUEST-READY*)
        t1=$(now_us)
        kib=$(awk '/^VmRSS:/ {r=$2} /^RssShmem:/ {s=$2} END {print r - s}' "/proc/$pid/status")
        ;;
    esac
  done <"$fifo"
  wait "$pid" || true
  if [ "$t1" -eq 0 ]; then
    echo "boot.sh: no init marker from: $*" >&2; tail -5 "$tmp/err" >&2; echo "NA NA"; return
  fi
  echo "$(( (t1 - t0) / 1000 )) $kib"
}

arcvm_cmd=(build/arcvm run --kernel "$kernel" --initrd "$initrd" --cpus "$cpus"
           --memory "${mem}M" --cmdline "$extra")
qemu_cmd=(qemu-system-x86_64 -M microvm,accel=kvm -cpu host -smp "$cpus" -m "${mem}M"
          -object "memory-backend-memfd,id=ram,size=${mem}M" -M memory-backend=ram
          -nodefaults -no-user-config -nographic -no-reboot
          -chardev stdio,id=con -serial chardev:con
          -kernel "$kernel" -initrd "$initrd" -append "$cmdline")

echo "boot.sh: $n boots each, $cpus vCPU, $mem MiB, alternating arcvm and QEMU microvm" >&2
echo "boot.sh: warm-up boot (fills arcvm's kernel cache): $(run_one "${arcvm_cmd[@]}")" >&2
for i in $(seq "$n"); do
  run_one "${arcvm_cmd[@]}" >>"$tmp/arcvm"
  run_one "${arcvm_cmd[@]}" --kernel-cache off >>"$tmp/arcvm-nocache"
  run_one "${qemu_cmd[@]}" >>"$tmp/qemu"
  echo "boot.sh: round $i/$n: arcvm $(tail -1 "$tmp/arcvm") | arcvm, cache off $(tail -1 "$tmp/arcvm-nocache") | qemu $(tail -1 "$tmp/qemu")" >&2
done

median() { bench_median "$@"; }
minmax() { bench_minmax "$@"; }

qemu_ver=$(qemu-system-x86_64 --version | head -1 | sed 's/^QEMU emulator version //')
am=$(median "$tmp/arcvm" 1) qm=$(median "$tmp/qemu" 1) an=$(median "$tmp/arcvm-nocache" 1)
ak=$(median "$tmp/arcvm" 2) qk=$(median "$tmp/qemu" 2)
echo
echo "Boot: $(uname -r) kernel, busybox initramfs, $cpus vCPU, $mem MiB; $n boots each; $(date -u +%Y-%m-%d)"
echo "Where: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs${ARCVM_IN_NESTED_GUEST:+ (nested QEMU/TCG guest)}"
echo
echo "| VMM | start -> init, median ms | min/max ms | VMM RSS excl. guest RAM, median KiB | min/max KiB |"
echo "|---|---|---|---|---|"
av=$(build/arcvm --version | cut -d' ' -f2)
echo "| arcvm $av (unpacked kernel from its cache) | $am | $(minmax "$tmp/arcvm" 1) | $ak | $(minmax "$tmp/arcvm" 2) |"
echo "| arcvm $av --kernel-cache off (guest decompresses) | $an | $(minmax "$tmp/arcvm-nocache" 1) | $(median "$tmp/arcvm-nocache" 2) | $(minmax "$tmp/arcvm-nocache" 2) |"
echo "| QEMU $qemu_ver microvm | $qm | $(minmax "$tmp/qemu" 1) | $qk | $(minmax "$tmp/qemu" 2) |"
if [ "$am" != NA ] && [ "$qm" != NA ] && [ "$qk" != NA ] && [ "$qk" -gt 0 ]; then
  echo
  awk -v a="$am" -v n="$an" -v q="$qm" -v ak="$ak" -v qk="$qk" \
    'BEGIN {printf "arcvm/QEMU: boot time %.2fx (cache off: %.2fx), memory overhead %.2fx\n", a / q, n / q, ak / qk}'
fi
