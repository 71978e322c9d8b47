#!/bin/sh
# arm64-boot.sh - nested-arm64.sh's default job, in the outer aarch64 guest:
# arcvm boots Debian's arm64 kernel with a busybox initramfs on 2 vCPUs to
# its init's marker line, and the guest's power-off and reboot end arcvm
# with 0 and 2. Prints PASS/FAIL lines and the boot times; exits 1 on any
# failure.
fail=0
check() { # check WHAT CONDITION...
  what=$1; shift
  if "$@"; then echo "PASS  $what"; else echo "FAIL  $what"; fail=1; fi
}
now_ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }

# boot NAME MODE EXTRA-CMDLINE: one boot; its output in /tmp/NAME.log, its
# exit status in $rc, its wall time in $ms.
boot() {
  t0=$(now_ms)
  arcvm run --kernel /arm64/Image --initrd /arm64/initrd.cpio.gz --cpus 2 --memory 256M \
    --boot-timer --log-level info --cmdline "arcvm.mode=$2 $3" >"/tmp/$1.log" 2>&1
  rc=$?
  ms=$(( $(now_ms) - t0 ))
  echo "---- $1: exit $rc after $ms ms; its console and log:"
  sed 's/^/  | /' "/tmp/$1.log"
}

boot demo demo earlycon
if [ "$rc" != 0 ] && grep -q seccomp /tmp/demo.log; then
  # Which calls the filters refused, from one more boot that logs them
  # instead (ARCVM_SECCOMP_AUDIT): the lists are x86's, checked there.
  ARCVM_SECCOMP_AUDIT=/tmp/seccomp-audit.txt boot audit demo ""
  echo "---- system calls the filters would refuse:"
  sort -u /tmp/seccomp-audit.txt 2>/dev/null | sed 's/^/  | /'
fi
check "2-vCPU boot to init (marker line)" grep -q 'ARCVM-GUEST-READY cpus=2' /tmp/demo.log
check "guest power-off ends arcvm with 0 (got $rc)" [ "$rc" = 0 ]
echo "TIME  verbose boot to power-off: $ms ms"

boot reboot reboot quiet
check "quiet boot to init" grep -q 'ARCVM-GUEST-READY cpus=2 mode=reboot' /tmp/reboot.log
check "guest reboot ends arcvm with 2 (got $rc)" [ "$rc" = 2 ]
echo "TIME  quiet boot to reboot: $ms ms"
grep -h 'Guest-boot-time' /tmp/demo.log /tmp/reboot.log | sed 's/^/TIME  /'
exit $fail
