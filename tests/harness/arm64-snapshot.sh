#!/bin/sh
# arm64-snapshot.sh - a nested-arm64.sh job, in the outer aarch64 guest:
# arcvm boots Debian's arm64 kernel with a busybox initramfs on 2 vCPUs,
# the guest starts a counter and writes a file into its tmpfs; SIGUSR2
# (with --snapshot-to) saves a Full snapshot and ends arcvm; `arcvm
# restore` brings the guest back in a new process, where the counter goes
# on, the file is there, the clock resumed where it stopped and both vCPUs
# take timer interrupts. Then a second generation: the restored guest
# takes CPU 1 offline, is saved and restored again, brings CPU 1 back
# (its powered-off state survived) and powers off, which ends arcvm with
# 0; that restore is --clock-realtime's, whose guest clock must catch up
# with the real time. Prints PASS/FAIL lines and the times; exits 1 on any failure.
#   tests/harness/nested-arm64.sh tests/harness/arm64-snapshot.sh
fail=0
check() { # check WHAT CONDITION...
  what=$1; shift
  if "$@"; then echo "PASS  $what"; else echo "FAIL  $what"; fail=1; fi
}
now_ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }
D=/tmp/snap
mkdir -p $D

# lines FILE: the console's complete lines, carriage returns removed; a
# last line the guest is still writing is left out (matching "ON-0" of
# "ON-0-1" half written once failed a check).
lines() {
  tr -d '\r' <"$1" >"$1.lines"
  if [ -n "$(tail -c 1 "$1.lines")" ]; then sed '$d' "$1.lines"; else cat "$1.lines"; fi
}
# expect FILE REGEX SECS: wait until a complete console line matches; the
# first match on stdout.
expect() {
  n=0
  while [ $n -lt $(($3 * 5)) ]; do
    if lines "$1" | grep -aE "$2" | head -n 1 | grep .; then return 0; fi
    n=$((n + 1)); sleep 0.2
  done
  echo "---- timed out waiting for /$2/ in $1; its tail:"; tail -n 20 "$1" | sed 's/^/  | /'
  return 1
}
# show NAME: arcvm NAME's log (each arcvm's console input is a FIFO held
# open as fd 3, its output in $D/NAME.out and .err).
show() { echo "---- $1 stderr:"; sed 's/^/  | /' "$D/$1.err"; }

# ---- boot and prepare ----
rm -f $D/in1 && mkfifo $D/in1
exec 3<>$D/in1
arcvm run --kernel /arm64/Image.gz --initrd /arm64/initrd.cpio.gz --cpus 2 --memory 256M \
  --cmdline quiet --snapshot-to $D/state,$D/mem --log-level info <$D/in1 >$D/vm1.out 2>$D/vm1.err &
pid=$!
if ! expect $D/vm1.out 'ARCVM-GUEST-READY cpus=2' 300 >/dev/null; then
  check "boot for the snapshot" false; show vm1; kill $pid; exit 1
fi
# A counter that runs (renamed into place: never read half-written), a
# file in the tmpfs, and the timer interrupts each CPU took so far.
echo '(i=0; while true; do i=$((i+1)); echo $i >/tmp/c.new; mv /tmp/c.new /tmp/count; sleep 0.2; done) &' >&3
echo 'echo kept-$$-$(cut -d" " -f1 /proc/uptime) >/tmp/marker' >&3
sleep 2
echo 'echo BEFORE-$(cat /tmp/count) UP-$(cut -d" " -f1 /proc/uptime) MARK-$(cat /tmp/marker)' >&3
before=$(expect $D/vm1.out '^BEFORE-[0-9]+ UP-[0-9.]+ MARK-kept' 60) || { show vm1; kill $pid; exit 1; }
tb=$(now_ms)
b=$(echo "$before" | sed 's/^BEFORE-\([0-9]*\).*/\1/')
mark=$(echo "$before" | sed 's/.*MARK-//')
echo "---- before the snapshot: $before"

# ---- save: SIGUSR2 saves and stops ----
t0=$(now_ms)
kill -USR2 $pid
wait $pid; rc=$?
save_ms=$(( $(now_ms) - t0 ))
exec 3>&-
check "SIGUSR2 saves the VM and arcvm exits 0 (rc $rc)" \
  sh -c "[ $rc = 0 ] && grep -q 'saved the VM' $D/vm1.err && [ -s $D/state ] && [ -s $D/mem ]"
grep -a 'snapshot (' $D/vm1.err | sed 's/^/TIME  /'
echo "TIME  SIGUSR2 to arcvm's exit: $save_ms ms; state $(wc -c <$D/state) bytes"
[ $rc = 0 ] || { show vm1; exit 1; }

# ---- restore in a new arcvm ----
sleep 3 # the guest's virtual counter must resume where it stopped, not jump
rm -f $D/in2 && mkfifo $D/in2
exec 3<>$D/in2
t0=$(now_ms)
arcvm restore --state $D/state --mem $D/mem --snapshot-to $D/state2,$D/mem2 --log-level info \
  <$D/in2 >$D/vm2.out 2>$D/vm2.err &
pid=$!
echo 'echo AFTER-$(cat /tmp/count) UP-$(cut -d" " -f1 /proc/uptime) MARK-$(cat /tmp/marker)' >&3
after=$(expect $D/vm2.out '^AFTER-[0-9]+ UP-[0-9.]+ MARK-' 120)
ok=$?
t1=$(now_ms)
answer_ms=$(( t1 - t0 ))
grep -ao 'restored .* in [0-9]* us' $D/vm2.err | sed 's/^/TIME  /'
echo "TIME  restore started to the guest's first answer: $answer_ms ms"
check "the restored guest answers on its console: $after" [ $ok = 0 ]
if [ $ok != 0 ]; then show vm2; kill $pid; exit 1; fi
check "the file in the guest's tmpfs is still there ($mark)" [ "${after#*MARK-}" = "$mark" ]
a1=$(echo "$after" | sed 's/^AFTER-\([0-9]*\).*/\1/')
# The guest's clock went on from the snapshot: between the two answers it
# advanced by much less than the real time (which includes the save, the
# sleep and the restore), and never went back (a counter not restored
# would restart near 0).
up0=$(echo "$before" | sed 's/.*UP-\([0-9]*\).*/\1/') up1=$(echo "$after" | sed 's/.*UP-\([0-9]*\).*/\1/')
real_s=$(( (t1 - tb) / 1000 ))
check "the guest's clock resumed where it stopped (guest +$((up1 - up0)) s, real +$real_s s)" \
  [ $((up1 - up0)) -ge 0 -a $((up1 - up0)) -le $((real_s - 3)) ]

# timers NAME: TIMER-cpu0-cpu1, the timer interrupts each CPU took (PPI 27
# of the vGIC: "arch_timer" in /proc/interrupts).
timers() {
  echo "echo $1-\$(grep arch_timer /proc/interrupts | awk '{print \$2 \"-\" \$3}')" >&3
  expect "$D/$2.out" "^$1-[0-9]+-[0-9]+" 60
}
# both_tick WHAT VM: both CPUs' counts grow over two seconds.
both_tick() {
  x=$(timers T1$2 $2); sleep 2; y=$(timers T2$2 $2)
  c0=$(echo "$x" | cut -d- -f2) c1=$(echo "$x" | cut -d- -f3)
  d0=$(echo "$y" | cut -d- -f2) d1=$(echo "$y" | cut -d- -f3)
  check "$1 (cpu0 $c0 -> $d0, cpu1 $c1 -> $d1)" [ "${d0:-0}" -gt "${c0:-0}" -a "${d1:-0}" -gt "${c1:-0}" ]
}
both_tick "both vCPUs take timer interrupts after the restore" vm2
echo 'echo AGAIN-$(cat /tmp/count)' >&3
again=$(expect $D/vm2.out '^AGAIN-[0-9]+' 60)
a2=${again#AGAIN-}
check "the counter goes on ($b before the save, $a1 then $a2 after)" \
  [ "${a1:-0}" -ge "$b" -a "${a2:-0}" -gt "${a1:-0}" ]

# ---- a second generation, with CPU 1 powered off (PSCI CPU_OFF) ----
echo 'echo 0 >/sys/devices/system/cpu/cpu1/online; echo OFF-$(cat /sys/devices/system/cpu/online) UP-$(cut -d" " -f1 /proc/uptime)' >&3
off=$(expect $D/vm2.out '^OFF-' 60)
to=$(now_ms)
check "the restored guest takes CPU 1 offline ($off)" [ "${off% UP-*}" = OFF-0 ]
kill -USR2 $pid
wait $pid; rc=$?
exec 3>&-
check "a snapshot of the restored VM (rc $rc)" sh -c "[ $rc = 0 ] && grep -q 'saved the VM' $D/vm2.err"
grep -a 'snapshot (' $D/vm2.err | sed 's/^/TIME  /'
sleep 8 # a gap --clock-realtime must move the guest's clock over
rm -f $D/in3 && mkfifo $D/in3
exec 3<>$D/in3
arcvm restore --state $D/state2 --mem $D/mem2 --clock-realtime --log-level info \
  <$D/in3 >$D/vm3.out 2>$D/vm3.err &
pid=$!
# CPU 1 stayed off: the guest's PSCI CPU_ON brings it back (KVM would
# answer ALREADY_ON, and Linux fail to online it, had its MP state been
# lost).
echo 'echo UP-$(cut -d" " -f1 /proc/uptime); echo 1 >/sys/devices/system/cpu/cpu1/online; echo ON-$(cat /sys/devices/system/cpu/online) MARK-$(cat /tmp/marker)' >&3
up3=$(expect $D/vm3.out '^UP-[0-9]' 120)
t3=$(now_ms)
on=$(expect $D/vm3.out '^ON-' 120)
grep -ao 'restored .* in [0-9]* us' $D/vm3.err | sed 's/^/TIME  /'
check "after the second restore CPU 1 comes back online ($on)" [ "$on" = "ON-0-1 MARK-$mark" ]
# --clock-realtime: the guest's clock moved on by the real time since the
# save, the 8 s gap included (without it the guest would lag by them).
g=$(( $(echo "$up3" | sed 's/^UP-\([0-9]*\).*/\1/') - $(echo "$off" | sed 's/.*UP-\([0-9]*\).*/\1/') ))
real_s=$(( (t3 - to) / 1000 ))
check "--clock-realtime moved the guest's clock on (guest +$g s, real +$real_s s)" \
  [ $g -ge $((real_s - 4)) -a $g -le $((real_s + 2)) ]
both_tick "both vCPUs take timer interrupts again" vm3
echo 'poweroff -f' >&3
n=0
while kill -0 $pid 2>/dev/null && [ $n -lt 300 ]; do n=$((n + 1)); sleep 0.2; done
kill -0 $pid 2>/dev/null && { kill $pid; echo "---- arcvm restore did not end"; }
wait $pid; rc=$?
check "the restored guest's power-off ends arcvm with 0 (rc $rc)" [ "$rc" = 0 ]
if [ $fail != 0 ]; then
  for v in vm1 vm2 vm3; do
    [ -f $D/$v.err ] || continue
    show $v; echo "---- $v console:"; tr -d '\r' <$D/$v.out | tail -n 30 | sed 's/^/  | /'
  done
fi
exit $fail
