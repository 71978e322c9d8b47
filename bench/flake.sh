#!/usr/bin/env bash
# flake.sh - how often does a boot hang or crash? arcvm and QEMU's microvm
# boot the same kernel and initramfs N times each, alternately, in one run on
# one machine (nested QEMU/TCG where `arcvm check` says this host's KVM
# cannot run a stock guest). Prints a markdown table of outcomes: a hang
# that strikes both VMMs alike is the host's (nested SVM under TCG is not
# flawless); one that strikes arcvm alone is arcvm's to fix.
#
# Usage: bench/flake.sh [-n BOOTS] [-c CPUS] [-t TIMEOUT_S]
#
# A boot is "ok" when the guest's init prints its marker and the guest powers
# off (exit 0); "hang" when it has not ended after TIMEOUT_S seconds (arcvm is
# first asked for its vCPU report with SIGUSR1, which lands in the log);
# "crash" for any other end (a panic, a triple fault, a VMM error). Logs of
# every boot that was not ok are kept in build/flake/ and named in the table.
set -euo pipefail
cd "$(dirname "$0")/.."
n=20 cpus=2 tmo=120
while getopts 'n:c:t:' o; do
  case $o in n) n=$OPTARG ;; c) cpus=$OPTARG ;; t) tmo=$OPTARG ;; *) exit 2 ;; esac
done

. bench/lib.sh
[ -n "${ARCVM_BENCH_INNER:-}" ] || rm -rf build/flake
bench_enter flake.sh $((600 + 2 * n * (tmo + 30))) -n "$n" -c "$cpus" -t "$tmo"

kernel=$ARCVM_BENCH_KERNEL initrd=$ARCVM_BENCH_INITRD
logs=$PWD/build/flake
mkdir -p "$logs"
tmp=$(mktemp -d /tmp/arcvm-flake.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache
extra="quiet arcvm.mode=bench"
cmdline="console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 $extra"
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# run_one NAME CMD...: boots once; prints "<outcome> <ms to init or NA>" and
# keeps the log of a boot that was not ok as $logs/NAME.log.
run_one() {
  local name=$1; shift
  local out=$tmp/out err=$tmp/err t0 t1=NA pid rc outcome
  : >"$out"; : >"$err"
  t0=$(now_us)
  "$@" </dev/null >"$out" 2>"$err" &
  pid=$!
  local end=$((SECONDS + tmo)) seen=0
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do
    if [ $seen = 0 ] && grep -aq ARCVM-GUEST-READY "$out"; then
      seen=1 t1=$(( ($(now_us) - t0) / 1000 ))
    fi
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    outcome=hang
    # arcvm's vCPU report tells a spinning guest from a vCPU stuck in KVM.
    case $name in arcvm*) kill -USR1 "$pid" 2>/dev/null; sleep 2 ;; esac
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  else
    rc=0; wait "$pid" || rc=$?
    [ $seen = 1 ] || { grep -aq ARCVM-GUEST-READY "$out" && seen=1; }
    if [ $rc -eq 0 ] && [ $seen = 1 ]; then outcome=ok; else outcome=crash; fi
  fi
  if [ $outcome != ok ]; then
    { echo "# $name: $outcome; $*"; echo "# --- console (tail)"; tail -c 4000 "$out"
      echo; echo "# --- stderr"; cat "$err"; } >"$logs/$name.log"
  fi
  echo "$outcome $t1"
}

arcvm_cmd=(build/arcvm run --kernel "$kernel" --initrd "$initrd" --cpus "$cpus" --memory 256M
           --cmdline "$extra")
qemu_cmd=(qemu-system-x86_64 -M microvm,accel=kvm -cpu host -smp "$cpus" -m 256M
          -nodefaults -no-user-config -nographic -no-reboot
          -chardev stdio,id=con -serial chardev:con
          -kernel "$kernel" -initrd "$initrd" -append "$cmdline")

echo "flake.sh: $n boots each, $cpus vCPUs, ${tmo} s to finish, alternating arcvm and QEMU microvm" >&2
: >"$tmp/arcvm"; : >"$tmp/qemu"
for i in $(seq "$n"); do
  echo "arcvm-$i $(run_one "arcvm-$i" "${arcvm_cmd[@]}")" >>"$tmp/arcvm"
  echo "qemu-$i $(run_one "qemu-$i" "${qemu_cmd[@]}")" >>"$tmp/qemu"
  echo "flake.sh: round $i/$n: $(tail -1 "$tmp/arcvm") | $(tail -1 "$tmp/qemu")" >&2
done

count() { awk -v o="$2" '$2 == o' "$1" | wc -l; }
which_ones() { awk -v o="$2" '$2 == o {print $1}' "$1" | paste -sd' ' -; }

qemu_ver=$(qemu-system-x86_64 --version | head -1 | sed 's/^QEMU emulator version //')
echo
echo "Flakiness: $(uname -r) kernel, busybox initramfs, $cpus vCPUs, 256 MiB; $n boots each, ${tmo} s timeout; $(date -u +%Y-%m-%d)"
echo "Where: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs${ARCVM_IN_NESTED_GUEST:+ (nested QEMU/TCG guest)}"
echo
echo "| VMM | boots | ok | hangs | crashes | start -> init, median ms | not ok (logs in build/flake/) |"
echo "|---|---|---|---|---|---|---|"
for v in arcvm qemu; do
  label="arcvm $(build/arcvm --version | cut -d' ' -f2)"
  [ $v = qemu ] && label="QEMU $qemu_ver microvm"
  bad="$(which_ones "$tmp/$v" hang) $(which_ones "$tmp/$v" crash)"
  bad=$(echo "$bad" | xargs)
  echo "| $label | $n | $(count "$tmp/$v" ok) | $(count "$tmp/$v" hang) | $(count "$tmp/$v" crash) | $(bench_median "$tmp/$v" 3) | ${bad:--} |"
done
