#!/usr/bin/env bash
# suite.sh - arcvm's end-to-end tests. Needs a working /dev/kvm: run it
# through tests/harness/nested.sh (tests/e2e/run.sh does).
#
# Each guest boot checks many things, since a boot is the expensive part.
set -uo pipefail
cd "$(dirname "$0")/../.."
# The sections, in order; `suite.sh --list` prints them (run.sh resumes a
# run whose outer guest died from the section it died in).
SECTIONS="refusals check crash library terminal bzimage pvh disks share durability firecracker jailer balloon vsock snapshot net pmem hotplug mmds hugepages"
if [ "${1:-}" = --list ]; then echo "$SECTIONS"; exit 0; fi
. tests/e2e/lib.sh
. tests/e2e/share.sh
trap vm_cleanup EXIT
eval "$(tests/guest/images.sh)"
MKELF=${MKELF:-$PWD/build/mkelf}
# arcvm keeps unpacked kernels under $XDG_CACHE_HOME/arcvm/kernels: a
# private one, fresh for each run, so the first boot that uses it unpacks.
export XDG_CACHE_HOME="$E2E_TMP/cache"
KCACHE="$XDG_CACHE_HOME/arcvm/kernels"
echo "# arcvm e2e on $(uname -r), kernel $KERNEL, $(nproc) host CPUs"

# ---- bad input: one clear line, nonzero status, nothing left behind ----
section_refusals() {


  head -c 4096 /dev/urandom >"$E2E_TMP/garbage"
  head -c 3000000 "$KERNEL" >"$E2E_TMP/truncated"
  : >"$E2E_TMP/empty"
  touch "$E2E_TMP/noaccess"; chmod 000 "$E2E_TMP/noaccess"
  expect_refusal "a missing kernel" "kernel '.*': No such file" --kernel /nonexistent/vmlinuz
  expect_refusal "a missing initrd" "initrd '.*': No such file" --kernel "$KERNEL" --initrd /nonexistent/initrd
  expect_refusal "an empty kernel" "empty" --kernel "$E2E_TMP/empty"
  expect_refusal "a directory as kernel" "not a regular file" --kernel /tmp
  expect_refusal "a garbage kernel" "neither a bzImage nor an ELF" --kernel "$E2E_TMP/garbage"
  expect_refusal "a truncated kernel" "truncated" --kernel "$E2E_TMP/truncated"
  expect_refusal "0 vCPUs" "--cpus '0'" --kernel "$KERNEL" --cpus 0
  expect_refusal "a non-numeric vCPU count" "--cpus 'two'" --kernel "$KERNEL" --cpus two
  expect_refusal "more vCPUs than KVM allows" "choose between 1 and" --kernel "$KERNEL" --cpus 100000
  expect_refusal "absurd memory" "more than this host has" --kernel "$KERNEL" --memory 64T
  expect_refusal "too little memory" "too small" --kernel "$KERNEL" --memory 16M
  expect_refusal "a garbage memory size" "--memory 'lots'" --kernel "$KERNEL" --memory lots
  expect_refusal "an unknown option" "unknown option" --kernel "$KERNEL" --frobnicate
  expect_refusal "no kernel at all" "no kernel given"
  expect_refusal "a missing /dev/kvm" "does not exist: this host has no KVM" --kernel "$KERNEL" --kvm-device /nonexistent/kvm
  if command -v setpriv >/dev/null; then
    # Root ignores file modes, so drop to nobody to meet a permission error.
    RUNAS="setpriv --reuid=65534 --regid=65534 --clear-groups"
    expect_refusal "a /dev/kvm without permission" "no permission to open" --kernel "$KERNEL" --kvm-device "$E2E_TMP/noaccess"
    RUNAS=
  else
    not_ok "setpriv (util-linux) missing: cannot test the permission error"
  fi
  expect_refusal "a kernel that needs more memory than given" "give at least --memory" --kernel "$KERNEL" --memory 64M
  expect_refusal "a missing seccomp filter file" "cannot open the seccomp filter file" --kernel "$KERNEL" --seccomp-filter /nonexistent/filter.bpf
  # Seccomp: a filter set in Firecracker's compiled format whose vCPU
  # program traps ioctl (so the first KVM_RUN) and allows the rest: arcvm
  # dies of SIGSYS after one line naming the thread and the call.
  fc_filters "$E2E_TMP/trap-ioctl.bpf" 16
  timeout 120 "$ARCVM" run --kernel "$KERNEL" --initrd "$INITRD" --memory 128M \
    --seccomp-filter "$E2E_TMP/trap-ioctl.bpf" </dev/null >/dev/null 2>"$E2E_TMP/sigsys.err"
  rc=$?
  check "a forbidden call on a vCPU kills arcvm with SIGSYS (rc $rc) after one line: $(grep seccomp "$E2E_TMP/sigsys.err")" \
    sh -c "[ $rc -eq 159 ] && grep -q 'thread vcpu0 (vcpu filter) made the forbidden system call ioctl (16)' '$E2E_TMP/sigsys.err' && [ \$(grep -c seccomp '$E2E_TMP/sigsys.err') -eq 1 ]"
}

# fc_filters FILE NR: a filter file as Firecracker's seccompiler-bin writes
# it (bincode: u64 count, then u64 name length, name, u64 instruction count,
# 8-byte instructions): "vmm" and "api" allow everything, "vcpu" traps
# system call NR and allows the rest.
fc_filters() {
  local le
  le() { local v=$1 n=$2 i out=''; for ((i = 0; i < n; i++)); do
      out+=$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 ))); done; printf "$out"; }
  ins() { le "$1" 2; le "$2" 1; le "$3" 1; le "$4" 4; }
  { le 3 8
    for name in vmm api; do
      le 3 8; printf '%s' "$name"; le 1 8; ins 6 0 0 $((0x7fff0000))
    done
    le 4 8; printf vcpu; le 4 8
    ins $((0x20)) 0 0 0          # load the call number
    ins $((0x15)) 0 1 "$2"       # equal to NR?
    ins 6 0 0 $((0x30000))       # yes: trap
    ins 6 0 0 $((0x7fff0000))    # no: allow
  } >"$1"
}

# ---- guests that crash: named reason, RIP, registers, status 3; the vCPU
# report of a guest that spins ----
section_crash() {
  "$MKELF" "$E2E_TMP/triple.elf" triple-fault
  timeout 60 "$ARCVM" run --kernel "$E2E_TMP/triple.elf" --memory 64M </dev/null >/dev/null 2>"$E2E_TMP/triple.err"
  rc=$?
  # Intel keeps the faulting RIP; AMD's KVM resets the vCPU on shutdown and
  # arcvm says so instead of printing the reset vector.
  if [ $rc -eq 3 ] && grep -qE "triple fault (at RIP 0x100000|\(RIP unknown)" "$E2E_TMP/triple.err"; then
    ok "a triple fault exits 3 naming reason and RIP: $(cat "$E2E_TMP/triple.err")"
  else
    not_ok "triple fault: rc=$rc, stderr: $(cat "$E2E_TMP/triple.err")"
  fi
  # An instruction KVM must emulate (an MMIO access) but cannot: the report
  # names the sub-error, the instruction bytes and the registers.
  "$MKELF" "$E2E_TMP/emul.elf" emulation-failure
  timeout 60 "$ARCVM" run --kernel "$E2E_TMP/emul.elf" --memory 64M </dev/null >/dev/null 2>"$E2E_TMP/emul.err"
  rc=$?
  if [ $rc -eq 3 ] &&
     grep -q "KVM internal error: emulation failure (suberror 1), instruction bytes 66 0f fe 00" "$E2E_TMP/emul.err" &&
     grep -qE "vcpu0: RIP=0*1000[0-9a-f]{2} .* protected mode, CPL 0" "$E2E_TMP/emul.err" &&
     grep -qE "vcpu0: RAX=0*c0001000 " "$E2E_TMP/emul.err" && grep -q "vcpu0: CR0=" "$E2E_TMP/emul.err"; then
    ok "an emulation failure exits 3 with sub-error, instruction bytes and registers: $(grep 'guest crashed' "$E2E_TMP/emul.err")"
  else
    not_ok "emulation failure: rc=$rc, stderr: $(cat "$E2E_TMP/emul.err")"
  fi
  # The vCPU report (SIGUSR1) of a guest spinning at 0x100000, its second
  # vCPU never started by the guest: both answer, the VM keeps running.
  "$MKELF" "$E2E_TMP/spin.elf" spin
  vm_start spin --kernel "$E2E_TMP/spin.elf" --memory 64M --cpus 2 --console none
  sleep 1
  kill -USR1 "$(cat "$(vm_dir spin)/pid")"
  local end=$((SECONDS + 20))
  while [ $SECONDS -lt $end ] && ! grep -q 'vcpu1:' "$(vm_dir spin)/err"; do sleep 0.2; done
  check "SIGUSR1: vcpu0 answers from the guest at its spin loop: $(grep -m1 'vcpu0:' "$(vm_dir spin)/err")" \
    grep -qE 'arcvm: vcpu0: in (guest|vmm) for [0-9]+ ms, pc 0x10000[0-2], last exit [a-z_]+, [0-9]+ exits' "$(vm_dir spin)/err"
  check "SIGUSR1: vcpu1 (never started by the guest) answers too: $(grep -m1 'vcpu1:' "$(vm_dir spin)/err")" \
    grep -qE 'arcvm: vcpu1: in (guest|vmm) for [0-9]+ ms, pc 0x' "$(vm_dir spin)/err"
  check "the VM runs on after the report" kill -0 "$(cat "$(vm_dir spin)/pid")"
  kill -TERM "$(cat "$(vm_dir spin)/pid")"
  vm_wait spin 30
  check "and stops on SIGTERM (exit $VM_RC)" [ "$VM_RC" -eq 143 ]
}

# ---- arcvm check: the verdict, PVM refused at once, the expert override ----
section_check() {
  local T="$E2E_TMP/check" rc
  mkdir -p "$T"
  # Where the suite runs, KVM runs stock guests: the check must say so.
  "$ARCVM" check >"$T/ok.out" 2>&1; rc=$?
  check "arcvm check passes here (exit $rc): $(tail -1 "$T/ok.out")" [ $rc -eq 0 ]
  check "every line of arcvm check is a PASS/WARN/FAIL verdict, a hint or the summary" \
    sh -c "! grep -vE '^(PASS|WARN|FAIL)  [a-z0-9-]+ +[^ ]|^ {6,}-> |^arcvm check: ' '$T/ok.out'"
  local n missing=
  for n in kvm-device kvm-access kvm-api hardware-virt guest-run cap-irqchip cap-irqfd \
           cap-ioeventfd cap-immediate-exit cap-user-memory cap-pit; do
    grep -qE "^PASS  $n " "$T/ok.out" || missing="$missing $n"
  done
  check "the required pieces PASS: $(grep -E '^PASS  (hardware-virt|guest-run) ' "$T/ok.out" | tr -s ' ' | paste -sd';')${missing:+; not:$missing}" \
    [ -z "$missing" ]
  "$ARCVM" check --json >"$T/ok.json"; rc=$?
  check "arcvm check --json: valid JSON, can_run, every item named with a status" \
    sh -c "[ $rc -eq 0 ] && jq -e '.can_run == true and .fails == 0 and (.checks | length) >= 10 and all(.checks[]; (.status | test(\"^(PASS|WARN|FAIL)$\")) and (.name | length) > 0)' '$T/ok.json' >/dev/null"
  # Unusable devices FAIL and say why.
  "$ARCVM" check --kvm-device /dev/null >"$T/null.out" 2>&1; rc=$?
  check "a device that is not KVM FAILs (exit $rc): $(grep -m1 '^FAIL' "$T/null.out" | tr -s ' ')" \
    sh -c "[ $rc -eq 1 ] && grep -qE '^FAIL  kvm-api .*not a KVM device' '$T/null.out'"
  "$ARCVM" check --kvm-device /nonexistent/kvm >"$T/none.out" 2>&1; rc=$?
  check "a missing device FAILs with what to do (exit $rc)" \
    sh -c "[ $rc -eq 1 ] && grep -q '^FAIL  kvm-device .*does not exist' '$T/none.out' && grep -q -- '-> use a host with VT-x/AMD-V' '$T/none.out'"
  # A paravirtual KVM as a KVM PVM host shows it: the kvm_pvm module and a
  # CPU without vmx/svm (a fake /proc and /sys: ARCVM_HOST_ROOT).
  local pvm="$T/pvm"
  mkdir -p "$pvm/proc" "$pvm/sys/module/kvm" "$pvm/sys/module/kvm_pvm"
  grep -m1 '^flags' /proc/cpuinfo | sed -E 's/ (svm|vmx)( |$)/ /g' >"$pvm/proc/cpuinfo"
  ARCVM_HOST_ROOT=$pvm "$ARCVM" check >"$T/pvm.out" 2>&1; rc=$?
  check "on a PVM host the check FAILs hardware-virt naming kvm_pvm (exit $rc)" \
    sh -c "[ $rc -eq 1 ] && grep -qE '^FAIL  hardware-virt .*kvm_pvm, a paravirtual KVM' '$T/pvm.out'"
  local t0=$EPOCHREALTIME ms
  ARCVM_HOST_ROOT=$pvm expect_refusal "a start on a PVM host" \
    "cannot run a stock Linux guest: KVM here is kvm_pvm" --kernel "$KERNEL" --initrd "$INITRD"
  ms=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
  check "the refusal came within a second (${ms} ms)" [ "$ms" -lt 1000 ]
  expect_refusal "a device that is not KVM" "/dev/null does not answer KVM's API version 12: it is not a KVM device" \
    --kernel "$KERNEL" --kvm-device /dev/null
  # --no-kvm-check goes ahead anyway: the triple-fault guest runs and crashes (3).
  "$MKELF" "$T/triple.elf" triple-fault
  ARCVM_HOST_ROOT=$pvm timeout 60 "$ARCVM" run --no-kvm-check --kernel "$T/triple.elf" \
    --memory 64M </dev/null >/dev/null 2>"$T/override.err"; rc=$?
  check "--no-kvm-check skips the check: the guest ran (exit $rc, crash)" [ $rc -eq 3 ]

  # The API: InstanceStart on a PVM host is refused with a 400 at once; on a
  # running VM GET /vcpus and `arcvm vcpus` report every vCPU.
  local S="$T/api.sock" code fpid
  capi() { curl -s --unix-socket "$S" -o "$T/resp" -w '%{http_code}' -X "$1" \
             "http://localhost$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
  fc_up() { "$@" --api-sock "$S" </dev/null >"$T/fc.out" 2>"$T/fc.err" & fpid=$!
            for _ in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done; }
  fc_down() { kill -TERM $fpid 2>/dev/null; wait $fpid 2>/dev/null; rm -f "$S"; }
  "$MKELF" "$T/spin.elf" spin
  fc_up env ARCVM_HOST_ROOT="$pvm" "$ARCVM"
  capi PUT /boot-source "{\"kernel_image_path\": \"$T/spin.elf\"}" >/dev/null
  t0=$EPOCHREALTIME
  code=$(capi PUT /actions '{"action_type": "InstanceStart"}')
  ms=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
  check "API: InstanceStart on a PVM host is refused with $code in ${ms} ms: $(jq -r .fault_message "$T/resp" 2>/dev/null | cut -c1-120)" \
    sh -c "[ $code = 400 ] && grep -q 'kvm_pvm' '$T/resp' && [ $ms -lt 1000 ]"
  check "API: GET /vcpus before a start is refused with 400" [ "$(capi GET /vcpus)" = 400 ]
  fc_down
  fc_up "$ARCVM"
  capi PUT /boot-source "{\"kernel_image_path\": \"$T/spin.elf\"}" >/dev/null
  capi PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128}' >/dev/null
  code=$(capi PUT /actions '{"action_type": "InstanceStart"}')
  sleep 1
  check "API: GET /vcpus of a guest spinning at 0x100000: both vCPUs answer" \
    sh -c "[ \"\$(curl -s --unix-socket '$S' -o '$T/vcpus.json' -w '%{http_code}' http://localhost/vcpus)\" = 200 ] &&
           jq -e '(.vcpus | length) == 2 and all(.vcpus[]; .answered) and (.vcpus[0].pc | test(\"^0x10000[0-2]$\"))' '$T/vcpus.json' >/dev/null"
  "$ARCVM" vcpus --api-sock "$S" >"$T/vcpus.txt" 2>&1; rc=$?
  check "arcvm vcpus --api-sock prints one line per vCPU: $(head -1 "$T/vcpus.txt")" \
    sh -c "[ $rc -eq 0 ] && [ \$(wc -l <'$T/vcpus.txt') -eq 2 ] && grep -qE '^vcpu0: in (guest|vmm) for [0-9]+ ms, pc 0x10000[0-2]' '$T/vcpus.txt'"
  capi PATCH /vm '{"state": "Paused"}' >/dev/null
  capi GET /vcpus >/dev/null
  check "API: a paused VM's vCPUs report parked" \
    sh -c "jq -e 'all(.vcpus[]; .state == \"parked\" and .answered)' '$T/resp' >/dev/null"
  fc_down
  "$ARCVM" vcpus --api-sock "$S" >"$T/vcpus.txt" 2>&1; rc=$?
  check "arcvm vcpus without a server: one line, exit 1" \
    sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$T/vcpus.txt') -eq 1 ] && grep -q 'cannot connect' '$T/vcpus.txt'"
}

# ---- the C library: two VMs, lifecycle, pause, teardown ----
section_library() {
  EXAMPLE=${EXAMPLE:-$PWD/build/example-boot}
  if timeout 600 "$EXAMPLE" "$KERNEL" "$INITRD" "quiet arcvm.mode=demo" </dev/null \
       >"$E2E_TMP/example.log" 2>&1 &&
     grep -q "example: guest powered off" "$E2E_TMP/example.log" &&
     grep -q "^cpus:    2" "$E2E_TMP/example.log"; then
    ok "the library example (examples/boot.c) boots a guest: $(grep 'example: exits' "$E2E_TMP/example.log")"
  else
    not_ok "examples/boot.c:"; tail -5 "$E2E_TMP/example.log" | sed 's/^/     /'
  fi
  LIFECYCLE=${LIFECYCLE:-$PWD/build/lifecycle}
  if timeout 900 "$LIFECYCLE" "$KERNEL" "$INITRD" >"$E2E_TMP/lifecycle.log" 2>&1; then
    ok "library lifecycle: $(grep -c '^ok' "$E2E_TMP/lifecycle.log") checks passed"
  else
    not_ok "library lifecycle (exit $?):"
  fi
  grep -E '^(ok|FAIL)' "$E2E_TMP/lifecycle.log" | sed 's/^/     /'
}

# ---- a terminal: raw mode, keys and Ctrl-C to the guest, Ctrl-A x, restore ----
section_terminal() {
  PTYTEST=${PTYTEST:-$PWD/build/ptytest}
  if timeout 600 "$PTYTEST" "$ARCVM" "$KERNEL" "$INITRD" >"$E2E_TMP/pty.log" 2>&1; then
    ok "console on a terminal: $(grep -c '^ok' "$E2E_TMP/pty.log") checks passed"
  else
    not_ok "console on a terminal (exit $?):"
  fi
  grep -E '^(ok|FAIL)' "$E2E_TMP/pty.log" | sed 's/^/     /'
}

# ---- boot 1: bzImage, 1 vCPU, commands on stdin, power-off exits 0 ----
section_bzimage() {
  host_now=$(date +%s)
  # Without the kernel cache: the bzImage's own 64-bit boot protocol path.
  vm_start bz --kernel "$KERNEL" --initrd "$INITRD" --cpus 1 --memory 256M --boot-timer \
    --kernel-cache off --cmdline "quiet arcvm.e2e=1"
  if vm_expect bz "ARCVM-GUEST-READY cpus=1 " 180; then
    ok "bzImage boots to init with 1 vCPU"
    vm_send bz 'echo R1-$((6*7))'
    check "a command typed on stdin runs in the guest and its output returns" vm_expect bz '^R1-42$' 30
    vm_send bz 'echo NPROC-$(nproc)'
    check "nproc in the guest is 1" vm_expect bz '^NPROC-1$' 30
    vm_send bz 'echo CMDLINE-$(cat /proc/cmdline)'
    check "the guest command line has arcvm's defaults and --cmdline" \
      vm_expect bz '^CMDLINE-console=ttyS0 reboot=k panic=1 .*quiet arcvm.e2e=1$' 30
    vm_send bz 'echo CLOCK-$(date +%s) RTC-$(cat /sys/class/rtc/rtc0/name 2>&1) HW-$(hwclock -u 2>&1 | head -c 40)'
    if vm_expect bz '^CLOCK-[0-9]+ ' 30; then
      guest_now=$(vm_grep bz '^CLOCK-' | sed 's/^CLOCK-\([0-9]*\).*/\1/')
      drift=$(( guest_now - host_now )); drift=${drift#-}
      check "the guest clock starts at the host's wall-clock time (off by ${drift}s)" [ "$drift" -lt 300 ]
      check "the CMOS RTC is registered as rtc0 by rtc_cmos" vm_expect bz 'RTC-rtc_cmos' 1
    else
      not_ok "guest clock query"
    fi
    vm_send bz 'echo MEM-$(awk "/MemTotal/ {print \$2}" /proc/meminfo)'
    if vm_expect bz '^MEM-[0-9]+$' 30; then
      mem=$(vm_grep bz '^MEM-' | cut -d- -f2)
      check "guest sees its 256 MiB of RAM (MemTotal ${mem} kB)" [ "$mem" -gt 180000 -a "$mem" -le 262144 ]
    fi
    errs='ACPI( BIOS)? (Error|Warning)|Firmware Bug|irq.*(fail|error)|rtc.*fail'
    vm_send bz "dmesg | grep -iE '$errs' | sed 's/^/BADLOG: /'; echo ERRS-\$(dmesg | grep -ciE '$errs')"
    check "the guest kernel log has no ACPI, IRQ or RTC errors" vm_expect bz '^ERRS-0$' 30
    tr -d '\r' <"$(vm_dir bz)/out" | grep -a '^BADLOG:' | sed 's/^/     /' 
    vm_send bz 'poweroff -f'
    vm_wait bz 60
    check "guest power-off ends arcvm with status 0 (got $VM_RC)" [ "$VM_RC" -eq 0 ]
    check "--boot-timer logs the guest's boot time" grep -q "Guest-boot-time = " "$(vm_dir bz)/err"
    grep "Guest-boot-time" "$(vm_dir bz)/err" | sed 's/^/     /'
  else
    not_ok "bzImage boot to init"
    vm_wait bz 5
  fi
}

# ---- boot 2: PVH vmlinux, 4 vCPUs, reboot exits 2 ----
section_pvh() {
  vm_start pvh --kernel "$VMLINUX" --initrd "$INITRD" --cpus 4 --memory 256M --cmdline "quiet"
  if vm_expect pvh "ARCVM-GUEST-READY cpus=4 " 300; then
    ok "PVH vmlinux boots to init with 4 vCPUs, nproc = 4"
    vm_send pvh 'echo ONLINE-$(cat /sys/devices/system/cpu/online)'
    check "all 4 vCPUs are online" vm_expect pvh '^ONLINE-0-3$' 30
    vm_send pvh 'reboot -f'
    vm_wait pvh 60
    check "guest reboot ends arcvm with status 2 (got $VM_RC)" [ "$VM_RC" -eq 2 ]
  else
    not_ok "PVH vmlinux boot to init with 4 vCPUs"; vm_report pvh "no init marker"
    vm_wait pvh 5
  fi
}

# ---- boot 3: virtio: ext4 root disk, read-only disk, rng, hvc0, attacks ----
section_disks() {
  # The root filesystem is the test initramfs itself, unpacked into an ext4
  # image by mkfs.ext4 -d, plus a file the guest must read back.
  rootsrc="$E2E_TMP/rootfs"
  mkdir -p "$rootsrc"
  (cd "$rootsrc" && gzip -dc "$INITRD" | cpio -id --quiet)
  echo "made on the host" >"$rootsrc/hello.txt"
  truncate -s 128M "$E2E_TMP/root.ext4"
  mkfs.ext4 -q -F -L arcvm-root -d "$rootsrc" "$E2E_TMP/root.ext4"
  head -c 4M /dev/urandom >"$E2E_TMP/ro.img"
  ro_md5=$(md5sum <"$E2E_TMP/ro.img" | cut -d' ' -f1)
  vm_start disk --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 256M --console virtio --rng \
    --balloon 64M \
    --disk "$E2E_TMP/root.ext4,id=rootdisk" --disk "$E2E_TMP/ro.img,ro,id=rodisk" \
    --cmdline "quiet arcvm.root=/dev/vda"
  if vm_expect disk "ARCVM-GUEST-READY cpus=2 " 240; then
    ok "boots with virtio disks and its console on hvc0"
    check "the bzImage's kernel was unpacked into the kernel cache ($(ls "$KCACHE" 2>/dev/null | tr '\n' ' '))" \
      [ "$(ls "$KCACHE" 2>/dev/null | grep -c '^kernel-.*\.elf$')" -eq 1 ]
    expect_refusal "a disk image another arcvm is writing" "in use" \
      --kernel "$KERNEL" --disk "$E2E_TMP/root.ext4"
    vm_send disk 'echo ROOT-$(awk "\$2 == \"/\" {print \$1, \$3}" /proc/mounts | tail -1 | tr " " :)'
    check "the root filesystem is the ext4 image on virtio-blk" vm_expect disk '^ROOT-/dev/vda:ext4$' 30
    vm_send disk 'echo CONSOLE-$(cat /sys/class/tty/console/active)'
    check "the console is virtio-console hvc0" vm_expect disk '^CONSOLE-hvc0$' 30
    vm_send disk 'echo HELLO-$(cat /hello.txt | tr " " _)'
    check "the guest reads the file made on the host" vm_expect disk '^HELLO-made_on_the_host$' 30
    vm_send disk 'echo SERIAL-$(cat /sys/block/vda/serial)-$(cat /sys/block/vdb/serial)-RO$(cat /sys/block/vdb/ro)'
    check "two disks with their ids; the ro one is read-only in the guest" \
      vm_expect disk '^SERIAL-rootdisk-rodisk-RO1$' 30
    vm_send disk 'echo RNG-$(cat /sys/class/misc/hw_random/rng_current)-$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d " \n" | wc -c)'
    check "virtio-rng is the guest's hwrng and gives bytes" vm_expect disk '^RNG-virtio_rng.0-32$' 30
    vm_send disk 'sleep 3; echo BMEM-$(awk "/MemTotal/ {print \$2}" /proc/meminfo)'
    if vm_expect disk '^BMEM-[0-9]+$' 60; then
      bmem=$(vm_grep disk '^BMEM-' | cut -d- -f2)
      check "--balloon 64M at start takes 64 MiB from the guest (MemTotal ${bmem} kB)" [ "$bmem" -lt 160000 ]
    fi
    vm_send disk 'dd if=/dev/urandom of=/data.bin bs=1M count=8 2>/dev/null; echo "written by the guest" >/guest.txt; sync; echo DATA-$(md5sum </data.bin | cut -c1-32)'
    if vm_expect disk '^DATA-[0-9a-f]{32}$' 120; then
      guest_md5=$(vm_grep disk '^DATA-' | cut -d- -f2)
      ok "the guest writes 8 MiB and syncs"
    else
      not_ok "guest write and sync"; guest_md5=none
    fi
    vm_send disk 'echo RODD-$(dd if=/dev/vdb bs=4M count=1 2>/dev/null | md5sum | cut -c1-32); dd if=/dev/zero of=/dev/vdb bs=512 count=1 oflag=direct 2>/dev/null; echo ROWRITE-$?'
    check "the guest reads the read-only disk's exact content" vm_expect disk "^RODD-$ro_md5\$" 60
    check "a write to the read-only disk fails in the guest" vm_expect disk '^ROWRITE-[1-9]' 30
    errs='virtio.*(error|fail)|ACPI( BIOS)? (Error|Warning)|Firmware Bug|irq.*(fail|error)|blk_update_request|I/O error'
    vm_send disk "dmesg | grep -iE '$errs' | sed 's/^/BADLOG: /'; echo ERRS-\$(dmesg | grep -ciE '$errs')"
    check "the kernel log has no virtio, ACPI, irq or I/O errors" vm_expect disk '^ERRS-0$' 30
    tr -d '\r' <"$(vm_dir disk)/out" | grep -a '^BADLOG:' | sed 's/^/     /'
    # A hostile driver takes the read-only disk and feeds it malformed queues.
    vm_send disk 'virtq-attack rodisk ro 2>&1; echo ATTACK-RC-$?'
    if vm_expect disk '^ATTACK-RC-[0-9]+$' 180; then
      tr -d '\r' <"$(vm_dir disk)/out" | grep -a '^ATTACK ' | sed 's/^/     /'
      check "malformed descriptors are refused, bad requests fail, arcvm runs on" \
        vm_expect disk '^ATTACK-RC-0$' 1
    else
      not_ok "virtq-attack did not finish"
    fi
    vm_send disk 'echo AFTER-$(dd if=/dev/vdb bs=4M count=1 2>/dev/null | md5sum | cut -c1-32)'
    check "after the attack the device works again with the same content" \
      vm_expect disk "^AFTER-$ro_md5\$" 60
    vm_send disk 'poweroff -f'
    vm_wait disk 60
    check "power-off with disks exits 0 (got $VM_RC)" [ "$VM_RC" -eq 0 ]
    fsck_clean() { e2fsck -fn "$1" >"$E2E_TMP/fsck.log" 2>&1; }
    check "e2fsck -fn finds the guest-written ext4 image clean" fsck_clean "$E2E_TMP/root.ext4"
    host_txt=$(debugfs -R "cat /guest.txt" "$E2E_TMP/root.ext4" 2>/dev/null)
    check "the host reads back the guest's file" [ "$host_txt" = "written by the guest" ]
    debugfs -R "dump /data.bin $E2E_TMP/data.bin" "$E2E_TMP/root.ext4" >/dev/null 2>&1
    host_md5=$(md5sum <"$E2E_TMP/data.bin" 2>/dev/null | cut -d' ' -f1)
    check "the host reads back the guest's 8 MiB exactly (md5 $host_md5)" [ "$host_md5" = "$guest_md5" ]
    check "the read-only image is unchanged" [ "$(md5sum <"$E2E_TMP/ro.img" | cut -d' ' -f1)" = "$ro_md5" ]
  else
    not_ok "boot with virtio disks"
    vm_wait disk 5
    tail -5 "$(vm_dir disk)/err" | sed 's/^/     /'
  fi
}

# ---- nothing lost on kill -9: what the guest flushed survives arcvm's
# death; a drive's backing file swapped at run time (PATCH /drives) ----
section_durability() {
  local T="$E2E_TMP/dura" fio
  mkdir -p "$T"
  if ! fio=$(command -v fio); then
    not_ok "fio is missing (scripts/install-deps.sh installs it)"; return
  fi
  # The root file system: the test initramfs's tree plus fio with its
  # libraries and the guest half of the test (tests/guest/durability.sh).
  tests/guest/mkinitramfs.sh -d "$T/rootsrc" -i tests/guest/init.sh -b "$fio" \
    -f "$PWD/tests/guest/durability.sh:/bin/durability"
  truncate -s 384M "$T/pristine.ext4"
  mkfs.ext4 -q -F -d "$T/rootsrc" "$T/pristine.ext4"
  rm -rf "$T/rootsrc"
  # open_fds PID TARGET: how many of PID's descriptors are open on TARGET.
  open_fds() { local f n=0; for f in /proc/"$1"/fd/*; do
      [ "$(readlink "$f")" = "$2" ] && n=$((n + 1)); done; echo $n; }
  uring_fds() { open_fds "$1" 'anon_inode:[io_uring]'; }

  # dura_kill NAME IMG WHAT: run the guest half, SIGKILL arcvm at KILL-NOW,
  # then check IMG as a host that finds it after a crash would.
  dura_kill() {
    local name=$1 img=$2 what=$3 out pid
    out=$(vm_dir "$name")/out; pid=$(cat "$(vm_dir "$name")/pid")
    vm_send "$name" 'durability'
    if ! vm_expect "$name" '^KILL-NOW' 900; then
      not_ok "$what: the guest never reached KILL-NOW"; vm_report "$name" "durability stuck"
      kill -9 "$pid" 2>/dev/null; vm_wait "$name" 10
      echo "     [$name] arcvm's status $VM_RC, its stderr and the host kernel's log:"
      { vm_stderr "$name" | tail -n 5; dmesg | tail -n 10; } | sed 's/^/       | /'
      return
    fi
    kill -9 "$pid"
    vm_wait "$name" 30
    check "$what: arcvm died of SIGKILL at the marker (status $VM_RC)" [ "$VM_RC" -eq 137 ]
    local writers; writers=$(vm_grep "$name" '^WRITERS-' | cut -d- -f2)
    check "$what: fio was writing when arcvm died (${writers:-no} fio processes)" [ "${writers:-0}" -ge 2 ]
    # What mounting it would do first: replay the journal. Then nothing may
    # be wrong with the file system.
    e2fsck -E journal_only -y "$img" >"$T/$name.replay" 2>&1
    check "$what: after the journal replay e2fsck -fn finds the file system clean" \
      sh -c "e2fsck -fn '$img' >'$T/$name.fsck' 2>&1"
    tail -n 1 "$T/$name.fsck" | sed 's/^/     | /'
    local known flushed got n=0 bad=0 line i md5
    known=$(vm_grep "$name" '^KNOWN-' | cut -d- -f2)
    flushed=$(vm_grep "$name" '^FLUSHED-' | cut -d- -f2)
    # Every file the guest reported flushed, in one debugfs run.
    { echo "dump /known.bin $T/$name.known"; echo "dump /flushed.fio $T/$name.flushed"
      tr -d '\r' <"$out" | grep -aE '^SYNCED-[0-9]+-[0-9a-f]{32}$' | cut -d- -f2 |
        sed "s|.*|dump /seq/& $T/$name.seq-&|"; } >"$T/$name.cmds"
    debugfs -f "$T/$name.cmds" "$img" >/dev/null 2>&1
    got=$(sha256sum <"$T/$name.known" 2>/dev/null | cut -c1-64)
    check "$what: the 4 MiB file synced before the kill is intact (sha256 ${got:0:16}...)" \
      [ -n "$known" -a "$got" = "$known" ]
    got=$(sha256sum <"$T/$name.flushed" 2>/dev/null | cut -c1-64)
    check "$what: fio's 16 MiB, fsynced before the kill, are intact (sha256 ${got:0:16}..., the guest's ${flushed:0:16}...)" \
      [ -n "$flushed" -a "$got" = "$flushed" ]
    check "$what: and pass fio --verify_only (crc32c headers)" \
      "$fio" --name=flushed --filename="$T/$name.flushed" --rw=write --bs=64k --size=16M \
        --ioengine=psync --verify=crc32c --verify_only --verify_state_save=0 --output="$T/$name.verify"
    grep -aiE 'verify|err=' "$T/$name.verify" 2>/dev/null | head -n 3 | sed 's/^/     | /'
    while read -r line; do
      i=$(echo "$line" | cut -d- -f2); md5=$(echo "$line" | cut -d- -f3)
      n=$((n + 1))
      [ "$(md5sum <"$T/$name.seq-$i" 2>/dev/null | cut -c1-32)" = "$md5" ] || bad=$((bad + 1))
    done < <(tr -d '\r' <"$out" | grep -aE '^SYNCED-[0-9]+-[0-9a-f]{32}$')
    check "$what: every file the guest reported fsynced is intact ($n reported, $bad lost or wrong)" \
      [ $n -ge 5 -a $bad -eq 0 ]
    [ $n -ge 5 ] || tr -d '\r' <"$out" | grep -a -A1 -E 'SYNCED|FLUSHED' | head -n 20 | sed 's/^/     > /'
  }

  # 1. Firecracker's API, io_uring: first a drive's backing file swapped
  #    while the guest reads it, then the kill.
  local S="$T/api.sock" code
  dapi() { curl -s --unix-socket "$S" -o "$T/resp" -w '%{http_code}' -X "$1" \
             "http://localhost$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
  cp --sparse=always "$T/pristine.ext4" "$T/uring.ext4"
  head -c 8M /dev/urandom >"$T/swap-a.img"
  head -c 24M /dev/urandom >"$T/swap-b.img"
  local md5a md5b
  md5a=$(head -c 1M "$T/swap-a.img" | md5sum | cut -c1-32)
  md5b=$(head -c 1M "$T/swap-b.img" | md5sum | cut -c1-32)
  VM_SUBCMD='' vm_start dapi --api-sock "$S"
  for _ in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done
  dapi PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off quiet arcvm.root=/dev/vda\"}" >/dev/null
  dapi PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$T/uring.ext4\", \"is_root_device\": false, \"is_read_only\": false}" >/dev/null
  dapi PUT /drives/swap "{\"drive_id\": \"swap\", \"path_on_host\": \"$T/swap-a.img\", \"is_root_device\": false, \"is_read_only\": true}" >/dev/null
  dapi PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 384}' >/dev/null
  code=$(dapi PUT /actions '{"action_type": "InstanceStart"}')
  if [ "$code" = 204 ] && vm_expect dapi 'ARCVM-GUEST-READY' 300; then
    ok "a guest with an ext4 root and fio boots through the API"
    local apid; apid=$(cat "$(vm_dir dapi)/pid")
    check "its disks run on io_uring ($(uring_fds "$apid") rings)" [ "$(uring_fds "$apid")" -ge 2 ]
    # direct reads of vdb: NAME-<sectors>-<md5 of its first MiB>
    vdb() { vm_send dapi "echo $1-\$(cat /sys/block/vdb/size)-\$(dd if=/dev/vdb bs=1M count=1 iflag=direct 2>/dev/null | md5sum | cut -c1-32)"; }
    vdb SWAP0
    check "before the swap the guest reads image A (16384 sectors)" vm_expect dapi "^SWAP0-16384-$md5a\$" 60
    # Reads keep going while the file changes under them.
    vm_send dapi '(while :; do dd if=/dev/vdb of=/dev/null bs=64k count=128 iflag=direct 2>/dev/null; done) & echo READER-$!'
    vm_expect dapi '^READER-[0-9]+' 30 >/dev/null
    sleep 1
    code=$(dapi PATCH /drives/swap "{\"drive_id\": \"swap\", \"path_on_host\": \"$T/swap-b.img\"}")
    check "PATCH /drives/swap path_on_host to image B while the guest reads: $code" [ "$code" = 204 ]
    vm_send dapi 'i=0; while [ "$(cat /sys/block/vdb/size)" = 16384 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; kill $!'
    vdb SWAP1
    check "the guest sees image B's size (49152 sectors) and reads its content" \
      vm_expect dapi "^SWAP1-49152-$md5b\$" 60
    code=$(dapi GET /vm/config)
    check "GET /vm/config shows image B as the drive's path_on_host" \
      sh -c "[ $code = 200 ] && jq -e '.drives[] | select(.drive_id == \"swap\") | .path_on_host == \"$T/swap-b.img\"' '$T/resp' >/dev/null"
    code=$(dapi PATCH /drives/swap "{\"drive_id\": \"swap\", \"path_on_host\": \"$T/no-such.img\"}")
    check "a missing file is refused with 400 and a fault_message: $(jq -r .fault_message "$T/resp" 2>/dev/null)" \
      sh -c "[ $code = 400 ] && grep -q 'No such file' '$T/resp'"
    code=$(dapi PATCH /drives/nope '{"drive_id": "nope", "path_on_host": "/x"}')
    check "an unknown drive is refused with 400: $(jq -r .fault_message "$T/resp" 2>/dev/null)" [ "$code" = 400 ]
    vdb SWAP2
    check "after the refusals the guest still reads image B" vm_expect dapi "^SWAP2-49152-$md5b\$" 60
    vm_send dapi "echo IOERR-\$(dmesg | grep -c 'I/O error')"
    check "no I/O error in the guest through the swap" vm_expect dapi '^IOERR-0$' 30
    check "arcvm closed image A (and so its lock) and holds image B" \
      [ "$(open_fds "$apid" "$T/swap-a.img")" -eq 0 -a "$(open_fds "$apid" "$T/swap-b.img")" -eq 1 ]
    dura_kill dapi "$T/uring.ext4" "io_uring"
  else
    not_ok "boot through the API for the durability checks (InstanceStart: $code)"
    vm_stderr dapi | tail -5 | sed 's/^/     /'; kill -9 "$(cat "$(vm_dir dapi)/pid")"; vm_wait dapi 5
  fi

  # 2. The command line, the synchronous engine.
  cp --sparse=always "$T/pristine.ext4" "$T/sync.ext4"
  VM_PREFIX="env ARCVM_DISK_NO_URING=1" vm_start dsync --kernel "$KERNEL" --initrd "$INITRD" \
    --cpus 2 --memory 384M --disk "$T/sync.ext4,id=root" --cmdline "quiet arcvm.root=/dev/vda"
  if vm_expect dsync 'ARCVM-GUEST-READY' 300; then
    ok "the same guest boots with ARCVM_DISK_NO_URING=1"
    check "its disk runs on the synchronous engine (no io_uring)" \
      [ "$(uring_fds "$(cat "$(vm_dir dsync)/pid")")" -eq 0 ]
    dura_kill dsync "$T/sync.ext4" "synchronous"
  else
    not_ok "boot with the synchronous engine"; vm_stderr dsync | tail -5; vm_wait dsync 5
  fi
  rm -f "$T"/*.ext4 "$T"/*.img "$T"/*.flushed "$T"/*.known
}

# ---- virtio-fs: section_share is in tests/e2e/share.sh ----

# ---- Firecracker mode: the API over a Unix socket, config file, signals ----
section_firecracker() {
  local T="$E2E_TMP/fc" fd rc pid
  mkdir -p "$T"
  # api METHOD PATH [BODY]: prints the HTTP status; the body lands in $T/resp.
  api() { curl -s --unix-socket "$T/api.sock" -o "$T/resp" -w '%{http_code}' -X "$1" \
            "http://localhost$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
  fc_expect() { local end=$((SECONDS + ${2:-60})); while [ $SECONDS -lt $end ]; do
      tr -d '\r' <"$T/out" | grep -aqE "$1" && return 0; sleep 0.2; done
    echo "     timed out waiting for /$1/; console tail:"; tail -5 "$T/out" | sed 's/^/       | /'
    return 1; }
  status_is() { local want=$1; shift; local got; got=$(api "$@"); [ "$got" = "$want" ] ||
    { echo "     $* -> $got $(cat "$T/resp")"; return 1; }; }
  rootsrc="$T/rootsrc"; mkdir -p "$rootsrc"
  (cd "$rootsrc" && gzip -dc "$INITRD" | cpio -id --quiet)
  truncate -s 128M "$T/root.ext4"; mkfs.ext4 -q -F -d "$rootsrc" "$T/root.ext4"

  mkfifo "$T/in"; exec {fd}<>"$T/in"
  # Firecracker's own process flags, given to the arcvm binary.
  "$ARCVM" --api-sock "$T/api.sock" --id e2e-fc --boot-timer <"$T/in" >"$T/out" 2>"$T/err" &
  pid=$!
  for _ in $(seq 100); do [ -S "$T/api.sock" ] && break; sleep 0.05; done
  check "arcvm --api-sock serves Firecracker's API on a Unix socket" status_is 200 GET /
  check "GET /version answers" status_is 200 GET /version
  # Firecracker's getting-started sequence.
  check "PUT /logger" status_is 204 PUT /logger "{\"log_path\": \"$T/log\", \"level\": \"Info\"}"
  check "PUT /boot-source" status_is 204 PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off quiet arcvm.root=/dev/vda\"}"
  check "PUT /drives/rootfs" status_is 204 PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$T/root.ext4\", \"is_root_device\": true, \"is_read_only\": false}"
  check "PUT /machine-config" status_is 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
  # A drive limited to 10 MiB/s: buckets of 1 MiB refilled every 100 ms.
  dd if=/dev/urandom of="$T/limited.img" bs=1M count=64 2>/dev/null
  check "PUT /drives/limited with a rate_limiter" status_is 204 PUT /drives/limited "{\"drive_id\": \"limited\", \"path_on_host\": \"$T/limited.img\", \"is_root_device\": false, \"is_read_only\": true, \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"refill_time\": 100}}}"
  check "PUT /metrics" status_is 204 PUT /metrics "{\"metrics_path\": \"$T/metrics\"}"
  check "PUT /entropy" status_is 204 PUT /entropy '{}'
  # arcvm's virtio-fs extension: a read-only shared directory.
  mkdir -p "$T/fcshare"; echo from-the-host >"$T/fcshare/hello.txt"
  check "PUT /shared-dirs/fcshare" status_is 204 PUT /shared-dirs/fcshare "{\"tag\": \"fcshare\", \"host_path\": \"$T/fcshare\", \"read_only\": true}"
  check "a shared dir that is not a directory is refused with 400" status_is 400 PUT /shared-dirs/bad "{\"tag\": \"bad\", \"host_path\": \"$T/root.ext4\"}"
  # Bad requests before boot: 4xx, nothing changes.
  check "malformed JSON is refused with 400" status_is 400 PUT /machine-config '{"vcpu_count": 2,'
  grep -q fault_message "$T/resp" || not_ok "a 400 carries a fault_message"
  check "unknown fields are refused with 400" status_is 400 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256, "bogus": 1}'
  check "a wrong type is refused with 400" status_is 400 PUT /machine-config '{"vcpu_count": "two", "mem_size_mib": 256}'
  check "pause before start is refused with 400" status_is 400 PATCH /vm '{"state": "Paused"}'
  check "an unknown path is 404" status_is 404 GET /no/such/thing
  check "a network interface with a bad host_dev_name is refused with 400" status_is 400 PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "tap/0"}'
  check "a network interface's rate limiter without refill_time is refused with 400" status_is 400 PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "tap0", "rx_rate_limiter": {"bandwidth": {"size": 1}}}'
  # PUT /serial: the file is created at once; {} gives the console back
  # (its output landing in the file is checked with the config-file boot).
  check "PUT /serial opens serial_out_path (mode 0600)" sh -c "[ \$(curl -s --unix-socket '$T/api.sock' -o /dev/null -w '%{http_code}' -X PUT http://localhost/serial -d '{\"serial_out_path\": \"$T/unused.serial\"}') = 204 ] && [ \$(stat -c %a '$T/unused.serial') = 600 ]"
  check "PUT /serial {} gives the output back to stdout" status_is 204 PUT /serial '{}'
  check "PUT /serial with a wrong type is refused with 400" status_is 400 PUT /serial '{"serial_out_path": 1}'
  check "PUT /serial to a missing directory is refused with 400" status_is 400 PUT /serial '{"serial_out_path": "/nonexistent/dir/serial"}'
  # CPU templates. A leaf, an MSR or a capability KVM lacks: InstanceStart
  # refuses the template with a sentence, and a corrected one still starts.
  start_refused() { status_is 400 PUT /actions '{"action_type": "InstanceStart"}' && grep -q "$1" "$T/resp" ||
    { echo "     $(cat "$T/resp")"; return 1; }; }
  api PUT /cpu-config '{"cpuid_modifiers": [{"leaf": "0x4ffffff0", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "eax", "bitmap": "0b1"}]}]}' >/dev/null
  check "a template changing a CPUID leaf KVM lacks fails InstanceStart with 400" start_refused "leaf 0x4ffffff0 subleaf 0x0, which KVM does not offer"
  api PUT /cpu-config '{"msr_modifiers": [{"addr": "0x4fff0000", "bitmap": "0b1"}]}' >/dev/null
  check "a template changing an MSR KVM lacks fails InstanceStart with 400" start_refused "MSR 0x4fff0000, which KVM does not offer"
  api PUT /cpu-config '{"kvm_capabilities": ["99999"]}' >/dev/null
  check "a template requiring a KVM capability the host lacks fails InstanceStart with 400" start_refused "lacks capability 99999"
  check "a malformed bitmap is refused with 400" status_is 400 PUT /cpu-config '{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "ecx", "bitmap": "0b2"}]}]}'
  # The real one: hide a leaf-1 ECX feature this CPU has (the guest would
  # see it: KVM passes these through) and set leaf 1's stepping (EAX 3:0)
  # to another value, so the guest's /proc/cpuinfo shows both took effect.
  local hide="" c flags step newstep
  flags=$(grep -m1 '^flags' /proc/cpuinfo)
  for c in "rdrand 30" "sse4_2 20" "popcnt 23"; do
    set -- $c; case " ${flags#*:} " in *" $1 "*) hide=$c; break ;; esac
  done
  step=$(awk -F: '/^stepping/ {print $2 + 0; exit}' /proc/cpuinfo)
  newstep=$(( (step ^ 5) & 15 ))
  if [ -n "$hide" ]; then
    set -- $hide
    local ecx eax want
    ecx="0b0$(printf 'x%.0s' $(seq "$2"))"
    eax="0b$(for b in 3 2 1 0; do printf '%d' $(( newstep >> b & 1 )); done)"
    check "PUT /cpu-config: leaf 1 ecx bit $2 ($1) cleared, stepping $step -> $newstep, MSR 0x1a0 bit 0 set" status_is 204 PUT /cpu-config "{\"kvm_capabilities\": [\"!56\", \"0\"], \"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, \"modifiers\": [{\"register\": \"eax\", \"bitmap\": \"$eax\"}, {\"register\": \"ecx\", \"bitmap\": \"$ecx\"}]}], \"msr_modifiers\": [{\"addr\": \"0x1a0\", \"bitmap\": \"0b1\"}]}"
    want="0b$(printf 'x%.0s' $(seq $((31 - $2))))0$(printf 'x%.0s' $(seq "$2"))"
    check "GET /vm/config shows the CPU template" sh -c "curl -s --unix-socket '$T/api.sock' http://localhost/vm/config | grep -qF '\"register\":\"ecx\",\"bitmap\":\"$want\"'"
  else
    not_ok "this CPU has none of rdrand, sse4_2, popcnt to hide: ${flags:0:200}"
  fi
  check "InstanceStart boots the VM" status_is 204 PUT /actions '{"action_type": "InstanceStart"}'
  check "starting twice is refused with 400" status_is 400 PUT /actions '{"action_type": "InstanceStart"}'
  check "PUT /cpu-config after boot is refused with 400" status_is 400 PUT /cpu-config '{}'
  check "PUT /serial after boot is refused with 400" status_is 400 PUT /serial '{}'
  if fc_expect 'ARCVM-GUEST-READY cpus=2 ' 240; then
    if [ -n "$hide" ]; then
      set -- $hide
      # Lines with the hidden flag, lines with sse2 (one per CPU), steppings.
      printf '%s\n' "echo CPUID-\$(grep '^flags' /proc/cpuinfo | grep -cw $1)-\$(grep '^flags' /proc/cpuinfo | grep -cw sse2)-\$(awk -F: '/^stepping/ {printf \"s%d\", \$2}' /proc/cpuinfo)" >&$fd
      check "the template hid $1 and set stepping $newstep on both vCPUs (/proc/cpuinfo)" fc_expect "^CPUID-0-2-s$newstep""s$newstep\$" 30
    fi
    ok "the API-configured guest boots to init with 2 vCPUs"
    # Every thread that takes untrusted input runs under its seccomp filter
    # (status 2): the API thread from its start, the main thread since the
    # boot, the event loop, each vCPU.
    threads=$(for t in /proc/$pid/task/*; do
        c=$(cat "$t/comm"); case $c in arcvm|fc_api|arcvm-evloop|vcpu[0-9]*) ;; *) continue;; esac
        printf '%s=%s ' "$c" "$(awk '/^Seccomp:/ {print $2}' "$t/status")"; done)
    check "every VMM thread runs under a seccomp filter: $threads" \
      sh -c "[ \$(echo '$threads' | tr ' ' '\n' | grep -c '=2\$') -eq 5 ] && ! echo '$threads' | tr ' ' '\n' | grep -q '=[01]\$'"
    printf '%s\n' 'echo ROOT-$(awk "\$2 == \"/\" {print \$1, \$3}" /proc/mounts | tail -1 | tr " " :) SER-$(cat /sys/block/vda/serial)' >&$fd
    check "its root is the API's drive (serial = drive_id)" fc_expect '^ROOT-/dev/vda:ext4 SER-rootfs$' 30
    printf '%s\n' 'modprobe virtiofs 2>/dev/null; mkdir -p /mnt/fc; mount -t virtiofs fcshare /mnt/fc && echo FS-$(cat /mnt/fc/hello.txt); touch /mnt/fc/new 2>/dev/null || echo FSRO-refused' >&$fd
    check "the guest mounts the API's shared dir and reads the host's file" fc_expect '^FS-from-the-host$' 30
    check "the API's read_only share refuses a new file" fc_expect '^FSRO-refused$' 30
    check "GET / says Running" sh -c "[ \"\$(curl -s --unix-socket '$T/api.sock' http://localhost/)\" != '' ] && curl -s --unix-socket '$T/api.sock' http://localhost/ | grep -q '\"state\":\"Running\"'"
    # A counter the guest prints every second stops while paused.
    printf '%s\n' '(i=0; while true; do i=$((i+1)); echo COUNT-$i; sleep 1; done) &' >&$fd
    fc_expect '^COUNT-3$' 60 >/dev/null
    check "PATCH /vm Paused" status_is 204 PATCH /vm '{"state": "Paused"}'
    sleep 1
    before=$(tr -d '\r' <"$T/out" | grep -a '^COUNT-' | tail -1)
    sleep 4
    after=$(tr -d '\r' <"$T/out" | grep -a '^COUNT-' | tail -1)
    check "while paused the guest's counter stops ($before -> $after)" [ "$before" = "$after" ]
    check "pausing twice is refused with 400" status_is 400 PATCH /vm '{"state": "Paused"}'
    check "PATCH /vm Resumed" status_is 204 PATCH /vm '{"state": "Resumed"}'
    n=${after#COUNT-}
    check "after resume the counter advances" fc_expect "^COUNT-$((n + 2))\$" 30
    check "resuming a running VM is refused with 400" status_is 400 PATCH /vm '{"state": "Resumed"}'
    # rate MIB TAG: the guest reads MIB MiB of /dev/vdb directly (no cache)
    # and prints TAG-<KiB/s>, timed with /proc/uptime.
    rate() { printf '%s\n' "a=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/vdb of=/dev/null bs=256k count=$(($1 * 4)) iflag=direct 2>/dev/null; b=\$(cut -d' ' -f1 /proc/uptime); echo $2-\$(awk -v a=\$a -v b=\$b 'BEGIN {printf \"%d\", $1 * 1024 / (b - a)}')" >&$fd; }
    rate 30 RATE1
    if fc_expect '^RATE1-[0-9]+$' 120; then
      r1=$(tr -d '\r' <"$T/out" | grep -a '^RATE1-' | tail -1 | cut -d- -f2)
      check "a drive limited to 10 MiB/s reads at $((r1 / 1024)) MiB/s ($r1 KiB/s, within 15%)" \
        [ "$r1" -ge 8704 -a "$r1" -le 11776 ]
    else
      not_ok "rate-limited read"
    fi
    check "PATCH /drives/limited to 20 MiB/s while the guest runs" status_is 204 PATCH /drives/limited '{"drive_id": "limited", "rate_limiter": {"bandwidth": {"size": 2097152, "refill_time": 100}}}'
    rate 40 RATE2
    if fc_expect '^RATE2-[0-9]+$' 120; then
      r2=$(tr -d '\r' <"$T/out" | grep -a '^RATE2-' | tail -1 | cut -d- -f2)
      check "after the PATCH it reads at $((r2 / 1024)) MiB/s ($r2 KiB/s, 20 MiB/s within 15%)" \
        [ "$r2" -ge 17408 -a "$r2" -le 23552 ]
    else
      not_ok "rate-limited read after PATCH"
    fi
    printf '%s\n' 'echo CLOCK-$(date +%s)' >&$fd
    if fc_expect '^CLOCK-[0-9]+' 30; then
      gclock=$(tr -d '\r' <"$T/out" | grep -a '^CLOCK-' | tail -1 | cut -d- -f2)
      drift=$(( gclock - $(date +%s) )); drift=${drift#-}
      check "after the pause the guest's clock agrees with the host's (off by ${drift}s)" [ "$drift" -lt 30 ]
    fi
    check "pre-boot settings are refused after boot" status_is 400 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}'
    check "malformed JSON while running is refused" status_is 400 PATCH /vm '{"state":'
    # 100 clients at once, while the guest runs.
    : >"$T/codes"
    for i in $(seq 100); do
      ( p=/machine-config; [ $((i % 2)) = 0 ] && p=/vm/config
        curl -s --unix-socket "$T/api.sock" -o /dev/null -w '%{http_code}\n' "http://localhost$p" >>"$T/codes" ) &
    done
    wait_clients=0
    for _ in $(seq 300); do [ "$(wc -l <"$T/codes")" -ge 100 ] && break; sleep 0.2; done
    check "100 concurrent clients all get 200 ($(sort "$T/codes" | uniq -c | tr '\n' ' '))" \
      [ "$(grep -c '^200$' "$T/codes")" -eq 100 ]
    printf '%s\n' 'echo ALIVE-$((6*7))' >&$fd
    check "the guest kept running through all of it" fc_expect '^ALIVE-42$' 60
    check "GET /vm/config shows the drive and machine config" sh -c "curl -s --unix-socket '$T/api.sock' http://localhost/vm/config | grep -q '\"drive_id\":\"rootfs\"'"
    check "GET /vm/config shows the shared dir" sh -c "curl -s --unix-socket '$T/api.sock' http://localhost/vm/config | grep -q '\"shared-dirs\":\\[{\"tag\":\"fcshare\",\"host_path\":\"$T/fcshare\",\"read_only\":true}'"
    check "FlushMetrics" status_is 204 PUT /actions '{"action_type": "FlushMetrics"}'
    # Lines hold what changed since the previous one (the 60 s timer may
    # have written one already): some line counts the root disk's reads.
    check "the metrics lines count disk reads" sh -c "grep -oE '\"block_rootfs\":\\{[^}]*\\}' '$T/metrics' | grep -qE '\"read_bytes\":[1-9]'"
    check "the logger wrote its file" [ -s "$T/log" ]
    check "SendCtrlAltDel" status_is 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'
    for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
    wait $pid; rc=$?
    check "Ctrl-Alt-Del reboots the guest and arcvm exits 0 like Firecracker (got $rc)" [ $rc -eq 0 ]
    check "the API socket is removed on exit" [ ! -e "$T/api.sock" ]
  else
    not_ok "boot through the API"; kill $pid; wait $pid
    tail -5 "$T/err" | sed 's/^/     /'
  fi
  exec {fd}>&-

  # The same kind of VM from a config file, without an API.
  # Its serial output goes to a FIFO (the "serial" key takes PUT /serial's
  # body through the same handler), read by cat into a file.
  mkfifo "$T/serial.fifo"
  cat "$T/serial.fifo" >"$T/serial.out" &
  local catpid=$!
  cat >"$T/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$VMLINUX", "initrd_path": "$INITRD",
                 "boot_args": "console=ttyS0 reboot=k panic=1 pci=off quiet arcvm.mode=demo"},
 "drives": [{"drive_id": "rootfs", "path_on_host": "$T/root.ext4", "is_root_device": false, "is_read_only": true}],
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 192},
 "serial": {"serial_out_path": "$T/serial.fifo"}}
JSON
  timeout 300 "$ARCVM" --no-api --config-file "$T/vm.json" </dev/null >"$T/out2" 2>"$T/err2"; rc=$?
  check "--config-file --no-api boots the VM and power-off exits 0 (got $rc)" [ $rc -eq 0 ]
  for _ in $(seq 50); do kill -0 $catpid 2>/dev/null || break; sleep 0.1; done
  kill $catpid 2>/dev/null; wait $catpid 2>/dev/null
  check "that guest ran with the file's 2 vCPUs, its console in the serial_out_path FIFO" grep -aq "^cpus:    2" "$T/serial.out"
  check "and nothing of the console on arcvm's stdout" sh -c "! grep -aq '^cpus:' '$T/out2'"
  echo '{"boot-source": {"kernel_image_path": 5}}' >"$T/bad.json"
  "$ARCVM" --no-api --config-file "$T/bad.json" </dev/null >/dev/null 2>"$T/err3"; rc=$?
  check "a bad config file is refused with one line and a nonzero status (rc $rc)" \
    [ $rc -ne 0 -a "$(wc -l <"$T/err3")" -eq 1 ]
}

# ---- a guest booted through arcvm-jailer, as an orchestrator boots Firecracker ----
section_jailer() {
  local T="$E2E_TMP/jail" JAILER=${JAILER:-$PWD/build/arcvm-jailer} id=e2e-jail pid rc vmm
  local root="$T/base/arcvm/$id/root" sock api_ ok_=1
  mkdir -p "$T"
  if readelf -l "$ARCVM" | grep -q INTERP; then
    not_ok "the jailer needs a static arcvm; $ARCVM is dynamic"; return
  fi
  # Unprivileged: nobody; no cgroup (tests/jailer.sh covers cgroups).
  "$JAILER" --id "$id" --exec-file "$ARCVM" --uid 65534 --gid 65534 \
    --chroot-base-dir "$T/base" </dev/null >"$T/out" 2>"$T/err" &
  pid=$!
  sock="$root/run/firecracker.socket"
  for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
  check "arcvm-jailer starts arcvm with its API socket in the jail" [ -S "$sock" ]
  # As with Firecracker: the orchestrator puts the guest's files in the jail
  # and names them by their paths inside it.
  cp "$KERNEL" "$root/vmlinuz"; cp "$INITRD" "$root/initrd"
  chown 65534:65534 "$root/vmlinuz" "$root/initrd"
  api_() { curl -s --unix-socket "$sock" -o "$T/resp" -w '%{http_code}' -X "$1" \
             "http://localhost$2" -H 'Content-Type: application/json' -d "$3"; }
  check "PUT /boot-source with paths inside the jail" [ "$(api_ PUT /boot-source \
    '{"kernel_image_path": "/vmlinuz", "initrd_path": "/initrd", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off quiet arcvm.mode=demo"}')" = 204 ]
  check "PUT /machine-config" [ "$(api_ PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 192}')" = 204 ]
  check "InstanceStart" [ "$(api_ PUT /actions '{"action_type": "InstanceStart"}')" = 204 ]
  vmm=$pid # the jailer execs arcvm in its place (no --new-pid-ns)
  if [ -r "/proc/$vmm/status" ]; then
    # Its root (pivot_root in its own mount namespace) is the jail's
    # directory: the same inode.
    local who; who="uid $(awk '/^Uid:/ {print $2}' "/proc/$vmm/status"), root inode $(stat -L -c %i "/proc/$vmm/root") (jail $(stat -c %i "$root")), seccomp $(awk '/^Seccomp:/ {print $2}' "/proc/$vmm/status")"
    check "the jailed VMM runs as nobody, in the jail, with seccomp on: $who" \
      sh -c "grep -q '^Uid:\s*65534\s' /proc/$vmm/status && [ \$(stat -L -c %d:%i /proc/$vmm/root) = \$(stat -c %d:%i '$root') ] && grep -q '^Seccomp:\s*2' /proc/$vmm/status"
  else
    not_ok "the jailed VMM is gone before it could be inspected: $(tail -2 "$T/err")"
  fi
  for _ in $(seq 1500); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
  kill -9 $pid 2>/dev/null; wait $pid; rc=$?
  check "the guest booted in the jail with 2 vCPUs and powered off; arcvm exits 0 (rc $rc)" \
    sh -c "[ $rc -eq 0 ] && grep -aq '^cpus:    2' '$T/out'"
  rm -rf "$T/base"
}

# Helpers of the sections that drive one arcvm through its API socket and
# its console (balloon, hotplug): they use the calling section's locals T
# (its directory: api.sock, resp, out) and fd (the console's input).
# bapi METHOD PATH [BODY]: the HTTP status; the body lands in $T/resp.
bapi() { curl -s --unix-socket "$T/api.sock" -o "$T/resp" -w '%{http_code}' -X "$1" \
           "http://localhost$2" ${3:+-d "$3"}; }
# bexpect REGEX [SECONDS]: wait for a console line matching REGEX.
bexpect() { local end=$((SECONDS + ${2:-60})); while [ $SECONDS -lt $end ]; do
    tr -d '\r' <"$T/out" | grep -aqE "$1" && return 0; sleep 0.2; done
  echo "     timed out waiting for /$1/"; tail -3 "$T/out" | sed 's/^/       | /'; return 1; }
# memtotal TAG: the guest's MemTotal in kB.
memtotal() { printf '%s\n' "echo MT$1-\$(awk '/MemTotal/ {print \$2}' /proc/meminfo)" >&$fd
             bexpect "^MT$1-[0-9]+" 30 && tr -d '\r' <"$T/out" | grep -a "^MT$1-" | tail -1 | cut -d- -f2; }

# ---- balloon: inflate returns memory to the host, deflate gives it back ----
section_balloon() {
  local T="$E2E_TMP/balloon" fd pid rc
  mkdir -p "$T"
  shmem_kib() { awk '/^RssShmem:/ {print $2}' "/proc/$pid/status"; }
  # Wait until the guest holds @1 MiB in the balloon (actual_mib).
  actual_is() { local end=$((SECONDS + 120)); while [ $SECONDS -lt $end ]; do
      bapi GET /balloon/statistics >/dev/null
      grep -q "\"actual_mib\":$1[,}]" "$T/resp" && return 0; sleep 1; done
    echo "     balloon never reached $1 MiB: $(cat "$T/resp")"; return 1; }
  mkfifo "$T/in"; exec {fd}<>"$T/in"
  "$ARCVM" --api-sock "$T/api.sock" <"$T/in" >"$T/out" 2>"$T/err" &
  pid=$!
  for _ in $(seq 100); do [ -S "$T/api.sock" ] && break; sleep 0.05; done
  bapi PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off quiet\"}" >/dev/null
  bapi PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 512}' >/dev/null
  check "PUT /balloon (empty, statistics every second)" \
    [ "$(bapi PUT /balloon '{"amount_mib": 0, "deflate_on_oom": false, "stats_polling_interval_s": 1}')" = 204 ]
  bapi PUT /actions '{"action_type": "InstanceStart"}' >/dev/null
  if bexpect 'ARCVM-GUEST-READY' 240; then
    total0=$(memtotal 0)
    # Touch 300 MiB in the guest and free it: the host now backs it.
    printf '%s\n' 'memhog 300 && echo HOGGED' >&$fd
    bexpect '^HOGGED' 120 >/dev/null
    before=$(shmem_kib)
    check "PATCH /balloon to 256 MiB" [ "$(bapi PATCH /balloon '{"amount_mib": 256}')" = 204 ]
    if actual_is 256; then
      sleep 1
      after=$(shmem_kib)
      drop=$(( (before - after) / 1024 ))
      check "inflating 256 MiB drops arcvm's RSS by ${drop} MiB (at least 205: 80%)" [ "$drop" -ge 205 ]
      total1=$(memtotal 1)
      check "the guest's memory shrank (MemTotal $total0 -> $total1 kB)" [ "$total1" -lt $((total0 - 200000)) ]
      check "GET /balloon/statistics reports the guest's memory" \
        sh -c "grep -q '\"total_memory\":[1-9]' '$T/resp' && grep -q '\"free_memory\":' '$T/resp'"
    else
      not_ok "inflating the balloon"
    fi
    check "PATCH /balloon back to 0" [ "$(bapi PATCH /balloon '{"amount_mib": 0}')" = 204 ]
    if actual_is 0; then
      total2=$(memtotal 2)
      check "deflating gives the memory back (MemTotal $total2 kB)" [ "$total2" -ge "$total0" ]
      printf '%s\n' 'memhog 300 && echo HOGGED-AGAIN' >&$fd
      check "and the guest can use it again (memhog 300 MiB)" bexpect '^HOGGED-AGAIN' 120
    else
      not_ok "deflating the balloon"
    fi
    printf 'poweroff -f\n' >&$fd
    for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
    wait $pid; rc=$?
    check "power-off ends it with 0 (got $rc)" [ $rc -eq 0 ]
  else
    not_ok "balloon guest boot"; kill $pid; wait $pid; tail -3 "$T/err"
  fi
  exec {fd}>&-
}

# ---- hotplug: virtio-mem grows and shrinks the guest; balloon hinting ----
# One boot through the API: PATCH /hotplug/memory plugs memory the guest
# sees in MemTotal and unplugs it again, giving the host its memory back;
# then a free page hinting run gives back the guest's free memory. A pmem
# device rides along: its region comes after the hotplug region.
section_hotplug() {
  local T="$E2E_TMP/hotplug" fd pid rc
  mkdir -p "$T"
  shmem_mib() { awk '/^RssShmem:/ {print int($2 / 1024)}' "/proc/$pid/status"; }
  # Wait until GET @1 answers a body matching @2.
  api_until() { local end=$((SECONDS + ${3:-180})); while [ $SECONDS -lt $end ]; do
      bapi GET "$1" >/dev/null; grep -qE "$2" "$T/resp" && return 0; sleep 1; done
    echo "     GET $1 never matched /$2/: $(cat "$T/resp")"; return 1; }
  mkfifo "$T/in"; exec {fd}<>"$T/in"
  "$ARCVM" --api-sock "$T/api.sock" <"$T/in" >"$T/out" 2>"$T/err" &
  pid=$!
  for _ in $(seq 100); do [ -S "$T/api.sock" ] && break; sleep 0.05; done
  # online_movable: the guest onlines plugged memory at once, in the zone
  # it can empty again for an unplug.
  bapi PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off quiet memhp_default_state=online_movable\"}" >/dev/null
  bapi PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 512}' >/dev/null
  check "PUT /hotplug/memory with 3 MiB blocks is refused: $(bapi PUT /hotplug/memory '{"total_size_mib": 1024, "block_size_mib": 3}'; cat "$T/resp")" \
    grep -q 'power of 2' "$T/resp"
  check "PUT /hotplug/memory of 1024 MiB" [ "$(bapi PUT /hotplug/memory '{"total_size_mib": 1024}')" = 204 ]
  check "GET /hotplug/memory before boot: $(bapi GET /hotplug/memory; cat "$T/resp")" \
    grep -q '"plugged_size_mib":0' "$T/resp"
  check "PUT /balloon with free_page_hinting" \
    [ "$(bapi PUT /balloon '{"amount_mib": 0, "deflate_on_oom": false, "free_page_hinting": true}')" = 204 ]
  head -c 4M /dev/urandom >"$T/pm.img"
  local pm_md5; pm_md5=$(md5sum <"$T/pm.img" | cut -c1-32)
  check "PUT /pmem/pm0 (read-only, 4 MiB)" \
    [ "$(bapi PUT /pmem/pm0 "{\"id\": \"pm0\", \"path_on_host\": \"$T/pm.img\", \"read_only\": true}")" = 204 ]
  bapi PUT /actions '{"action_type": "InstanceStart"}' >/dev/null
  if bexpect 'ARCVM-GUEST-READY' 240; then
    local total0 total1 total2 before after
    total0=$(memtotal 0)
    check "PATCH /hotplug/memory to 512 MiB" \
      [ "$(bapi PATCH /hotplug/memory '{"requested_size_mib": 512}')" = 204 ]
    if api_until /hotplug/memory '"plugged_size_mib":512[,}]'; then
      total1=$(memtotal 1)
      check "the guest grew by 512 MiB (MemTotal $total0 -> $total1 kB)" \
        [ "$total1" -ge $((total0 + 500000)) ]
      printf '%s\n' 'echo PM-$(dd if=/dev/pmem0 bs=1M count=4 2>/dev/null | md5sum | cut -c1-32)' >&$fd
      check "the pmem device next to the hotplug region reads the file's bytes" \
        bexpect "^PM-$pm_md5" 30
      # Fill most of the guest, so the plugged memory holds data, and free it.
      printf '%s\n' 'memhog 700 && echo HOGGED' >&$fd
      check "the guest uses it: memhog 700 MiB in a 512 MiB guest" bexpect '^HOGGED' 180
      before=$(shmem_mib)
      check "PATCH /hotplug/memory back to 0" \
        [ "$(bapi PATCH /hotplug/memory '{"requested_size_mib": 0}')" = 204 ]
      if api_until /hotplug/memory '"plugged_size_mib":0[,}]'; then
        after=$(shmem_mib)
        total2=$(memtotal 2)
        check "the guest shrank again (MemTotal $total1 -> $total2 kB)" \
          [ "$total2" -le $((total0 + 10000)) ]
        check "unplugging gave the host back $((before - after)) MiB (RssShmem $before -> $after MiB; want >= 256)" \
          [ $((before - after)) -ge 256 ]
      else
        not_ok "the guest unplugged its hotplug memory"
      fi
    else
      not_ok "the guest plugged 512 MiB"
    fi
    printf '%s\n' 'memhog 300 && echo HOGGED2' >&$fd
    bexpect '^HOGGED2' 180 >/dev/null
    before=$(shmem_mib)
    check "PATCH /balloon/hinting/start" \
      [ "$(bapi PATCH /balloon/hinting/start '{"acknowledge_on_stop": true}')" = 204 ]
    if api_until /balloon/hinting/status '"hinted_pages":[1-9]' 120; then
      ok "GET /balloon/hinting/status shows progress: $(cat "$T/resp")"
      # The guest ends its run with STOP; acknowledge_on_stop answers DONE.
      check "the run ends, acknowledged: $(api_until /balloon/hinting/status '"host_cmd":1[,}]' 120; cat "$T/resp")" \
        grep -q '"guest_cmd":0' "$T/resp"
      after=$(shmem_mib)
      check "hinting gave the host back $((before - after)) MiB (RssShmem $before -> $after MiB; want >= 100)" \
        [ $((before - after)) -ge 100 ]
    else
      not_ok "free page hinting made progress"
    fi
    check "PATCH /balloon/hinting/stop" [ "$(bapi PATCH /balloon/hinting/stop)" = 204 ]
    check "after stop the host says DONE: $(bapi GET /balloon/hinting/status; cat "$T/resp")" \
      grep -q '"host_cmd":1[,}]' "$T/resp"
    printf '%s\n' 'memhog 300 && echo HOGGED3' >&$fd
    check "the guest has its hinted memory back (memhog 300 MiB)" bexpect '^HOGGED3' 180
    printf 'poweroff -f\n' >&$fd
    for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
    wait $pid; rc=$?
    check "power-off ends it with 0 (got $rc)" [ $rc -eq 0 ]
  else
    not_ok "hotplug guest boot"; kill $pid; wait $pid; tail -5 "$T/err"
  fi
  grep -a 'virtio-mem\|virtio-balloon' "$T/err" | head -5 | sed 's/^/     | /'
  exec {fd}>&-
}

# ---- vsock, hybrid like Firecracker's: echo both ways, 100 MiB each way ----
section_vsock() {
  local VT=$PWD/build/vsock-tool U="$E2E_TMP/v.sock" N=$((100 << 20)) hpid out rc
  # count REGEX: how many console lines of guest "vs" match.
  vs_count() { tr -d '\r' <"$(vm_dir vs)/out" | grep -acE "$1"; }
  local cached; cached=$(ls "$KCACHE" 2>/dev/null | grep -c '\.elf$')
  vm_start vs --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 512M \
    --vsock "cid=3,uds=$U" --cmdline "quiet" --log-level info
  if ! vm_expect vs "ARCVM-GUEST-READY" 240; then
    not_ok "boot with --vsock"; vm_wait vs 5; return
  fi
  ok "boots with --vsock; the host socket exists: $(test -S "$U" && echo yes)"
  # From the cache when an earlier section filled it, else unpacked now.
  if [ "$cached" -gt 0 ]; then
    check "it started the kernel unpacked from the cache" \
      grep -q "booting the unpacked kernel cached in $KCACHE/kernel-" "$(vm_dir vs)/err"
  else
    check "it unpacked the kernel into the cache" \
      grep -q "unpacked the kernel into $KCACHE/kernel-" "$(vm_dir vs)/err"
  fi
  # host -> guest: CONNECT <port>, then an echo round trip of 1 MiB
  vm_send vs 'vsock-tool listen 5000 echo &'
  vm_expect vs 'listening on 5000' 30 >/dev/null
  out=$(timeout 120 "$VT" -t 30 connect-guest "$U" 5000 roundtrip 1M 2>&1); rc=$?
  [ $rc -eq 0 ] || echo "$out" | sed 's/^/     /'
  check "host->guest: CONNECT and a 1 MiB echo round trip" [ $rc -eq 0 ]
  # guest -> host: to <uds>_6000
  "$VT" listen-unix "${U}_6000" echo >/dev/null 2>&1 &
  hpid=$!
  sleep 0.5
  vm_send vs 'vsock-tool connect-host 6000 roundtrip 1M; echo RT-RC-$?'
  check "guest->host: a 1 MiB echo round trip through <uds>_6000" vm_expect vs '^RT-RC-0' 120
  wait $hpid
  out=$(timeout 120 "$VT" connect-guest "$U" 7777 sink 2>&1); rc=$?
  check "a host connection to a guest port nobody listens on is refused" [ $rc -ne 0 ]
  # 100 MiB host -> guest
  vm_send vs 'vsock-tool listen 5001 sink &'
  vm_expect vs 'listening on 5001' 30 >/dev/null
  local t0=$SECONDS
  # Bounded: a stalled transfer fails this check with a vCPU report instead
  # of hanging the suite until the outer guest's deadline.
  out=$(timeout 300 "$VT" -t 30 connect-guest "$U" 5001 source 100M 2>/dev/null) ||
    vm_report vs "100 MiB host->guest ended with status $?"
  hs=$(echo "$out" | sed -n 's/.*sent_fnv=\([0-9a-f]*\).*/\1/p')
  if vm_expect vs "^sink sent=0 .*recv=$N " 600; then
    g=$(tr -d '\r' <"$(vm_dir vs)/out" | grep -aE "^sink sent=0 .*recv=$N " | tail -1)
    check "100 MiB host->guest arrive intact in $((SECONDS - t0)) s (checksum $hs)" \
      sh -c "[ -n '$hs' ] && echo '$g' | grep -q 'recv_fnv=$hs '"
  else
    not_ok "100 MiB host->guest"; vm_report vs "no sink line"
  fi
  # 100 MiB guest -> host
  "$VT" listen-unix "${U}_6001" sink >"$E2E_TMP/sink6001.out" 2>/dev/null &
  hpid=$!
  sleep 0.5
  t0=$SECONDS
  vm_send vs "vsock-tool connect-host 6001 source 100M; echo SRC-RC-\$?"
  if vm_expect vs '^SRC-RC-' 600; then
    wait $hpid
    g=$(tr -d '\r' <"$(vm_dir vs)/out" | grep -aE "^source sent=$N " | tail -1)
    gs=$(echo "$g" | sed -n 's/.*sent_fnv=\([0-9a-f]*\).*/\1/p')
    check "100 MiB guest->host arrive intact in $((SECONDS - t0)) s (checksum $gs)" \
      sh -c "[ -n '$gs' ] && grep -q 'recv=$N recv_fnv=$gs ' '$E2E_TMP/sink6001.out'"
  else
    not_ok "100 MiB guest->host"; vm_report vs "no SRC-RC line"; kill $hpid 2>/dev/null
  fi
  vm_send vs 'poweroff -f'
  vm_wait vs 60
  check "power-off exits 0 and the socket file is gone (rc $VM_RC)" [ "$VM_RC" -eq 0 -a ! -e "$U" ]
}

# ---- snapshots: save a running guest, kill arcvm, bring it back ----
# restore_refusal DESCRIPTION REGEX STATE MEM: arcvm restore must exit 1 with
# one line matching REGEX and leave no process behind.
restore_refusal() {
  local err="$E2E_TMP/rr.err" rc lines
  timeout 60 "$ARCVM" restore --state "$3" --mem "$4" </dev/null >/dev/null 2>"$err"; rc=$?
  lines=$(wc -l <"$err")
  if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -qE -- "$2" "$err"; then
    ok "restore refuses $1: $(cat "$err")"
  else
    not_ok "restore refuses $1 (rc=$rc, $lines lines, want /$2/): $(head -c 300 "$err")"
  fi
}

section_snapshot() {
  local T="$E2E_TMP/snap" VT=$PWD/build/vsock-tool rc out hp httpd pid fd
  local U="$T/v.sock"
  mkdir -p "$T/www"
  head -c 1M /dev/urandom >"$T/www/file"
  local hsha; hsha=$(sha "$T/www/file")
  truncate -s 64M "$T/disk.img"
  hp=$((20000 + RANDOM % 10000))
  busybox httpd -f -p "127.0.0.1:$hp" -h "$T/www" &
  httpd=$!
  vm_start sn --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 256M --rng \
    --disk "$T/disk.img,id=data" --net user --vsock "cid=3,uds=$U" \
    --cmdline "quiet arcvm.net=dhcp" --snapshot-to "$T/state,$T/mem" --log-level info
  if ! vm_expect sn "ARCVM-GUEST-READY cpus=2 " 240; then
    not_ok "boot for the snapshot"; vm_wait sn 5; kill $httpd; return
  fi
  # What the restored guest must still have: a counter that runs, 32 MiB of
  # random RAM, 8 MiB written to its disk and flushed.
  # (renamed into place: a reader never sees a half-written count)
  vm_send sn '(i=0; while true; do i=$((i+1)); echo $i >/tmp/c.new; mv /tmp/c.new /tmp/count; sleep 0.2; done) &'
  # (busybox head knows no "M": dd throughout.)
  vm_send sn 'dd if=/dev/urandom of=/ram.bin bs=1M count=32 2>/dev/null; echo RAMSHA-$(sha256sum </ram.bin | cut -c1-64)-$(wc -c </ram.bin)'
  vm_send sn 'dd if=/dev/urandom of=/dev/vda bs=1M count=8 conv=fsync 2>/dev/null; echo DISKSHA-$(dd if=/dev/vda bs=1M count=8 2>/dev/null | sha256sum | cut -c1-64)'
  if ! vm_expect sn '^DISKSHA-[0-9a-f]{64}$' 120 || ! vm_expect sn '^RAMSHA-[0-9a-f]{64}-33554432$' 10; then
    not_ok "the guest's RAM and disk checksums"; vm_report sn "no checksums"; vm_stderr sn | tail -5
    vm_wait sn 5; kill $httpd; return
  fi
  local ramsha disksha
  ramsha=$(vm_grep sn '^RAMSHA-' | cut -d- -f2)
  disksha=$(vm_grep sn '^DISKSHA-' | cut -d- -f2)
  local hostsha; hostsha=$(head -c 8M "$T/disk.img" | sha256sum | cut -c1-64)
  check "the guest's flushed disk write is on the host before the snapshot (guest $disksha, host $hostsha)" \
    [ "$hostsha" = "$disksha" ]
  vm_send sn 'echo BEFORE-$(cat /tmp/count)'
  vm_expect sn '^BEFORE-[0-9]+$' 30 >/dev/null
  # The VM generation ID (16 bytes at 0xdf000, arch/x86/layout.h).
  vm_send sn "echo GEN-\$(for a in 0xdf000 0xdf004 0xdf008 0xdf00c; do devmem \$a 32; done | tr -d '\\n') DRV-\$(ls /sys/bus/acpi/drivers/vmgenid | grep -c :)"
  vm_expect sn '^GEN-(0x[0-9A-Fa-f]{8}){4} DRV-' 30 >/dev/null
  local gen0; gen0=$(vm_grep sn '^GEN-' | sed 's/^GEN-\([0-9A-Fa-fx]*\).*/\1/')
  check "the guest's vmgenid driver has the VM generation ID device ($(vm_grep sn '^GEN-'))" \
    sh -c "tr -d '\r' <'$(vm_dir sn)/out' | grep -aq '^GEN-.* DRV-1'"
  local before; before=$(vm_grep sn '^BEFORE-' | cut -d- -f2)
  # SIGUSR2 with --snapshot-to: save and stop, like a suspend to disk.
  kill -USR2 "$(cat "$(vm_dir sn)/pid")"
  vm_wait sn 120
  check "SIGUSR2 saves the VM and arcvm exits 0 (rc $VM_RC): $(grep -a 'snapshot (' "$(vm_dir sn)/err" | tail -1)" \
    sh -c "[ $VM_RC -eq 0 ] && grep -q 'saved the VM' '$(vm_dir sn)/err' && [ -s '$T/state' ] && [ -s '$T/mem' ]"
  local mem_kib state_b
  mem_kib=$(du -k "$T/mem" | cut -f1) state_b=$(stat -c %s "$T/state")
  check "the memory file is 256 MiB long and sparse (${mem_kib} KiB used); the state is ${state_b} bytes" \
    [ "$(stat -c %s "$T/mem")" -eq $((256 << 20)) -a "$mem_kib" -lt $((200 << 10)) -a "$state_b" -lt $((1 << 20)) ]
  check "no temporary files are left next to the snapshot" sh -c "! ls -a '$T' | grep -q '^\.state\.\|^\.mem\.'"
  check "Firecracker's --describe-snapshot names its format ($("$ARCVM" --describe-snapshot "$T/state" 2>&1))" \
    [ "$("$ARCVM" --describe-snapshot "$T/state")" = "$("$ARCVM" --snapshot-version)" ]

  # Files that cannot be trusted are refused, naming what is wrong.
  cp "$T/state" "$T/bad"; printf '\377' | dd of="$T/bad" bs=1 seek=200 conv=notrunc 2>/dev/null
  restore_refusal "a corrupt state file" "corrupt" "$T/bad" "$T/mem"
  head -c 1000 "$T/state" >"$T/bad"
  restore_refusal "a truncated state file" "truncated" "$T/bad" "$T/mem"
  cp "$T/state" "$T/bad"; printf '\143' | dd of="$T/bad" bs=1 seek=8 conv=notrunc 2>/dev/null
  restore_refusal "another format version" "format version 99" "$T/bad" "$T/mem"
  head -c 4096 /dev/urandom >"$T/bad"
  restore_refusal "a file that is no snapshot" "not an arcvm snapshot" "$T/bad" "$T/mem"
  truncate -s 1M "$T/short"
  restore_refusal "a memory file shorter than the guest's RAM" "smaller than" "$T/state" "$T/short"
  restore_refusal "a missing state file" "No such file" "$T/nonexistent" "$T/mem"

  # Back: the counter goes on, RAM and disk match, console, network, vsock.
  local msum gen1=''; msum=$(md5sum <"$T/mem")
  # Old enough that a guest clock resumed where it stopped is plainly behind.
  sleep 15
  VM_SUBCMD=restore vm_start r1 --state "$T/state" --mem "$T/mem" --log-level info
  vm_send r1 'echo CLK1-$(date +%s)'
  vm_expect r1 '^CLK1-[0-9]+' 60 >/dev/null
  local now c1 c2; now=$(date +%s); c1=$(vm_grep r1 '^CLK1-' | cut -d- -f2)
  local lag1=$(( now - ${c1:-$now} ))
  vm_send r1 'echo AFTER-$(cat /tmp/count)'
  if vm_expect r1 '^AFTER-[0-9]+$' 60; then
    local a1 a2
    a1=$(vm_grep r1 '^AFTER-' | cut -d- -f2)
    ok "the restored guest answers on its console: $(grep -ao 'restored .* in [0-9]* us' "$(vm_dir r1)/err")"
    sleep 1
    vm_send r1 'echo AGAIN-$(cat /tmp/count)'
    vm_expect r1 '^AGAIN-[0-9]+$' 30 >/dev/null
    a2=$(vm_grep r1 '^AGAIN-' | cut -d- -f2)
    check "the counter goes on from where it was ($before before the save, $a1 then $a2 after)" \
      [ "${a1:-0}" -ge "$before" -a "${a2:-0}" -gt "${a1:-0}" ]
    vm_send r1 "echo GEN1-\$(for a in 0xdf000 0xdf004 0xdf008 0xdf00c; do devmem \$a 32; done | tr -d '\\n') FORK-\$(dmesg | grep -c 'virtual machine fork')"
    vm_expect r1 '^GEN1-(0x[0-9A-Fa-f]{8}){4} FORK-[0-9]+' 30 >/dev/null
    gen1=$(vm_grep r1 '^GEN1-' | sed 's/^GEN1-\([0-9A-Fa-fx]*\).*/\1/')
    check "the restore gave a new VM generation ID and the guest reseeded its RNG ($gen0 -> $gen1)" \
      sh -c "[ -n '$gen1' ] && [ '$gen1' != '$gen0' ] && tr -d '\r' <'$(vm_dir r1)/out' | grep -aq '^GEN1-.* FORK-1'"
    check "by default the guest's clock goes on from the snapshot (it is ${lag1}s behind)" [ "$lag1" -ge 12 ]
    vm_send r1 'echo RAMSHA2-$(sha256sum </ram.bin | cut -c1-64)'
    check "the 32 MiB in the guest's RAM are intact" vm_expect r1 "^RAMSHA2-$ramsha" 60
    vm_send r1 'echo 3 >/proc/sys/vm/drop_caches; echo DISKSHA2-$(dd if=/dev/vda bs=1M count=8 2>/dev/null | sha256sum | cut -c1-64)'
    check "the disk reads back what was flushed before the save" vm_expect r1 "^DISKSHA2-$disksha" 60
    guest_fetch r1 "http://10.0.2.2:$hp/file" NSHA
    check "user-mode networking passes traffic after the restore" vm_expect r1 "^NSHA-$hsha" 120
    vm_send r1 'vsock-tool listen 5000 echo &'
    vm_expect r1 'listening on 5000' 30 >/dev/null
    out=$(timeout 120 "$VT" -t 30 connect-guest "$U" 5000 roundtrip 64K 2>&1); rc=$?
    [ $rc -eq 0 ] || echo "$out" | sed 's/^/     /'
    check "a vsock listener in the restored guest accepts a new connection" [ $rc -eq 0 ]
    vm_send r1 'poweroff -f'
    vm_wait r1 60
    check "the restored guest powers off with 0 (rc $VM_RC)" [ "$VM_RC" -eq 0 ]
  else
    not_ok "restore"; vm_report r1 "no answer"; vm_stderr r1 | tail -5; vm_wait r1 5
  fi
  check "the memory file was not written by the restored guest" [ "$(md5sum <"$T/mem")" = "$msum" ]

  # Firecracker's Uffd backend with the example page-fault handler.
  local uh
  "$PWD/build/arcvm-uffd-handler" "$T/uffd.sock" "$T/mem" 2>"$T/uffd.err" &
  uh=$!
  for _ in $(seq 100); do [ -S "$T/uffd.sock" ] && break; sleep 0.05; done
  VM_SUBCMD=restore vm_start ru --state "$T/state" --uffd "$T/uffd.sock" --clock-realtime
  vm_send ru 'echo CLK2-$(date +%s)'
  vm_expect ru '^CLK2-[0-9]+' 60 >/dev/null
  now=$(date +%s); c2=$(vm_grep ru '^CLK2-' | cut -d- -f2)
  local lag2=$(( now - ${c2:-0} ))
  vm_send ru 'echo UFFD-$(sha256sum </ram.bin | cut -c1-64)'
  if vm_expect ru "^UFFD-$ramsha" 90; then
    ok "restored with its RAM served by arcvm-uffd-handler, the 32 MiB intact"
    check "with --clock-realtime the restored guest's clock is right (off by ${lag2#-}s)" \
      [ "${lag2#-}" -le 8 ]
    vm_send ru "echo GEN2-\$(for a in 0xdf000 0xdf004 0xdf008 0xdf00c; do devmem \$a 32; done | tr -d '\\n')"
    vm_expect ru '^GEN2-(0x[0-9A-Fa-f]{8}){4}' 30 >/dev/null
    local gen2; gen2=$(vm_grep ru '^GEN2-' | sed 's/^GEN2-//')
    check "a second restore of the same snapshot gets yet another generation ID ($gen2)" \
      sh -c "[ -n '$gen2' ] && [ '$gen2' != '$gen0' ] && [ '$gen2' != '${gen1:-}' ]"
  else
    not_ok "Uffd restore"; vm_report ru "no answer"; vm_stderr ru | tail -3; cat "$T/uffd.err"
  fi
  vm_send ru 'poweroff -f'
  vm_wait ru 60
  wait $uh; rc=$?
  check "the handler served the faults and exits 0 when the VM is gone (rc $rc): $(tail -1 "$T/uffd.err")" \
    sh -c "[ $rc -eq 0 ] && grep -q 'faults served' '$T/uffd.err'"

  # Firecracker's API: load (File backend), GET /vm/config, pause, create.
  local F="$T/fc"
  mkdir -p "$F"
  api() { curl -s --unix-socket "$F/api.sock" -o "$F/resp" -w '%{http_code}' -X "$1" \
            "http://localhost$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
  status_is() { local want=$1; shift; local got; got=$(api "$@"); [ "$got" = "$want" ] ||
    { echo "     $* -> $got $(cat "$F/resp")"; return 1; }; }
  mkfifo "$F/in"; exec {fd}<>"$F/in"
  "$ARCVM" --api-sock "$F/api.sock" <"$F/in" >"$F/out" 2>"$F/err" &
  pid=$!
  for _ in $(seq 100); do [ -S "$F/api.sock" ] && break; sleep 0.05; done
  check "PUT /snapshot/load refuses a body without a memory file (400)" \
    status_is 400 PUT /snapshot/load "{\"snapshot_path\": \"$T/state\"}"
  check "PUT /snapshot/load with the File backend, resume_vm and dirty tracking (204)" \
    status_is 204 PUT /snapshot/load "{\"snapshot_path\": \"$T/state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$T/mem\"}, \"resume_vm\": true, \"track_dirty_pages\": true}"
  check "GET /vm/config shows the restored machine (2 vCPUs, 256 MiB, drive data)" \
    sh -c "[ \"\$(curl -s --unix-socket '$F/api.sock' -o '$F/cfg' -w '%{http_code}' http://localhost/vm/config)\" = 200 ] &&
           grep -q '\"vcpu_count\":2' '$F/cfg' && grep -q '\"mem_size_mib\":256' '$F/cfg' && grep -q '\"drive_id\":\"data\"' '$F/cfg'"
  printf '%s\n' 'echo FC-$(cat /tmp/count)' >&$fd
  local end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ] && ! tr -d '\r' <"$F/out" | grep -aqE '^FC-[0-9]+$'; do sleep 0.2; done
  check "the API-restored guest answers on its console" sh -c "tr -d '\r' <'$F/out' | grep -aqE '^FC-[0-9]+$'"
  check "PUT /snapshot/create while running is refused (400)" \
    status_is 400 PUT /snapshot/create "{\"snapshot_path\": \"$F/s2\", \"mem_file_path\": \"$F/m2\"}"
  check "PUT /snapshot/create of type Diff is refused (400, not supported yet)" \
    status_is 400 PUT /snapshot/create "{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"$F/s2\", \"mem_file_path\": \"$F/m2\"}"
  check "PATCH /vm Paused" status_is 204 PATCH /vm '{"state": "Paused"}'
  check "PUT /snapshot/create on the paused VM (204), a snapshot of a restored one" \
    sh -c "[ \"\$(curl -s --unix-socket '$F/api.sock' -o /dev/null -w '%{http_code}' -X PUT http://localhost/snapshot/create -H 'Content-Type: application/json' -d '{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$F/s2\", \"mem_file_path\": \"$F/m2\"}')\" = 204 ] && [ -s '$F/s2' ] && [ -s '$F/m2' ]"
  check "with tracking from the load, a Diff of the restored VM holds only what changed since" \
    sh -c "[ \"\$(curl -s --unix-socket '$F/api.sock' -o /dev/null -w '%{http_code}' -X PUT http://localhost/snapshot/create -H 'Content-Type: application/json' -d '{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"$F/d\", \"mem_file_path\": \"$F/dm\"}')\" = 204 ] && [ \$(du -k '$F/dm' | cut -f1) -lt 65536 ]"
  check "PUT /snapshot/load after a start is refused (400)" \
    status_is 400 PUT /snapshot/load "{\"snapshot_path\": \"$T/state\", \"mem_file_path\": \"$T/mem\"}"
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  exec {fd}>&-
  # A second generation: the snapshot of the restored VM comes back too.
  VM_SUBCMD=restore vm_start r2 --state "$F/s2" --mem "$F/m2"
  vm_send r2 'echo GEN2-$(cat /tmp/count); echo GEN2RAM-$(sha256sum </ram.bin | cut -c1-64)'
  check "a snapshot taken of a restored VM restores, RAM intact" vm_expect r2 "^GEN2RAM-$ramsha" 90
  vm_send r2 'poweroff -f'
  vm_wait r2 60
  # Firecracker allows a load only into an unconfigured microVM.
  rm -f "$F/api.sock"
  "$ARCVM" --api-sock "$F/api.sock" </dev/null >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -S "$F/api.sock" ] && break; sleep 0.05; done
  api PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}' >/dev/null
  check "PUT /snapshot/load after configuring the microVM is refused (400)" \
    status_is 400 PUT /snapshot/load "{\"snapshot_path\": \"$T/state\", \"mem_file_path\": \"$T/mem\"}"
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  kill $httpd 2>/dev/null; wait $httpd 2>/dev/null
  snapshot_diff_chain "$F"
}

# A Diff chain through Firecracker's API: a Full base, then two Diffs that
# hold what the guest wrote and what the disk device wrote into its RAM;
# merged, restored, the guest's own checksums match.
snapshot_diff_chain() {
  local F=$1 D="$1/diff" fd pid
  mkdir -p "$D"
  rm -f "$F/api.sock"
  dd if=/dev/urandom of="$D/disk.img" bs=1M count=8 2>/dev/null
  truncate -s 64M "$D/disk.img"
  local dsha; dsha=$(head -c 8388608 "$D/disk.img" | sha256sum | cut -c1-64)
  mkfifo "$D/in"; exec {fd}<>"$D/in"
  "$ARCVM" --api-sock "$F/api.sock" <"$D/in" >"$D/out" 2>"$D/err" &
  pid=$!
  for _ in $(seq 100); do [ -S "$F/api.sock" ] && break; sleep 0.05; done
  say() { printf '%s\n' "$1" >&$fd; }
  hear() { local end=$((SECONDS + ${2:-60})); while [ $SECONDS -lt $end ]; do
      tr -d '\r' <"$D/out" | grep -aqE "$1" && return 0; sleep 0.2; done; return 1; }
  # init_on_alloc=0: Debian's kernel zeroes every page it allocates, which
  # KVM's dirty log sees; without it the page cache a disk read fills is
  # written by the disk device alone, as arcvm's own record must show.
  api PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off quiet init_on_alloc=0\"}" >/dev/null
  api PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$D/disk.img\", \"is_root_device\": false, \"is_read_only\": false}" >/dev/null
  check "PUT /machine-config with track_dirty_pages (204)" \
    status_is 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256, "track_dirty_pages": true}'
  api PUT /actions '{"action_type": "InstanceStart"}' >/dev/null
  if ! hear 'ARCVM-GUEST-READY' 240; then
    not_ok "boot for the Diff chain"; tail -3 "$D/err" | sed 's/^/     /'
    kill -9 $pid; wait $pid 2>/dev/null; exec {fd}>&-; return
  fi
  # The shell keeps /dev/vda open: Linux drops a block device's page cache
  # at its last close, and this test needs that cache to live on.
  say 'exec 3</dev/vda; dd if=/dev/urandom of=/a.bin bs=1M count=8 2>/dev/null; echo A-DONE'
  hear '^A-DONE' 60
  # snap DESCRIPTION TYPE NAME: pause, create NAME.state/.mem, resume.
  snap() { api PATCH /vm '{"state": "Paused"}' >/dev/null
    check "$1 (204)" status_is 204 PUT /snapshot/create "{\"snapshot_type\": \"$2\", \"snapshot_path\": \"$D/$3.state\", \"mem_file_path\": \"$D/$3.mem\"}"
    api PATCH /vm '{"state": "Resumed"}' >/dev/null; }
  snap "the base: a Full snapshot of the tracked VM" Full base
  # The disk device writes 8 MiB into guest RAM; the guest changes 2 MiB.
  say 'dd if=/dev/vda of=/b.bin bs=1M count=8 2>/dev/null; dd if=/dev/urandom of=/a.bin bs=1M count=2 conv=notrunc 2>/dev/null; echo B-DONE'
  hear '^B-DONE' 60
  snap "a first Diff" Diff d1
  say 'dd if=/dev/urandom of=/c.bin bs=1M count=4 2>/dev/null; echo SUMS-$(cat /a.bin /b.bin /c.bin | sha256sum | cut -c1-64) BSUM-$(sha256sum </b.bin | cut -c1-64)'
  hear '^SUMS-[0-9a-f]{64} BSUM' 60
  local sums; sums=$(tr -d '\r' <"$D/out" | grep -aE '^SUMS-' | head -1 | sed 's/^SUMS-\([0-9a-f]*\).*/\1/')
  check "the guest read the host's disk data into RAM" \
    sh -c "tr -d '\r' <'$D/out' | grep -aq 'BSUM-$dsha'"
  snap "a second Diff" Diff d2
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  exec {fd}>&-
  local k1 k2; k1=$(du -k "$D/d1.mem" | cut -f1) k2=$(du -k "$D/d2.mem" | cut -f1)
  check "the Diffs hold only what changed (${k1} KiB, ${k2} KiB of 256 MiB)" \
    [ "$k1" -lt 65536 -a "$k2" -lt 65536 -a "$k1" -ge 8192 ]
  restore_refusal "a Diff snapshot before merging" "merge it onto its base" "$D/d2.state" "$D/d2.mem"
  out=$("$ARCVM" snapshot-merge --base "$D/base.mem" --diff "$D/d1.state,$D/d1.mem" \
          --diff "$D/d2.state,$D/d2.mem" --state-out "$D/merged.state" 2>&1); rc=$?
  check "snapshot-merge applies both Diffs onto the base (rc $rc): $out" [ $rc -eq 0 ]
  VM_SUBCMD=restore vm_start dm --state "$D/merged.state" --mem "$D/base.mem"
  vm_send dm 'echo SUMS2-$(cat /a.bin /b.bin /c.bin | sha256sum | cut -c1-64)'
  check "the merged chain restores with the guest's own checksums ($sums)" \
    vm_expect dm "^SUMS2-${sums:-none}" 90
  # Served from the guest's page cache, which only the disk device wrote:
  # KVM's dirty log never saw those pages, arcvm's own record did.
  vm_send dm 'echo VDA-$(dd if=/dev/vda bs=1M count=8 2>/dev/null | sha256sum | cut -c1-64)'
  check "pages only the disk device wrote (the guest's page cache) came through the Diffs" \
    vm_expect dm "^VDA-$dsha" 60
  vm_send dm 'poweroff -f'
  vm_wait dm 60
}

# ---- virtio-net: rootless user-mode networking, then TAP in a namespace ----
# sha256 of a file's contents, or of the guest's answer line "SHA-<hash>".
sha() { sha256sum "$1" | cut -d' ' -f1; }
# guest_fetch VM URL TAG: the guest downloads URL and prints TAG-<sha256>.
guest_fetch() {
  vm_send "$1" "wget -q -O /tmp/f $2 && echo $3-\$(sha256sum /tmp/f | cut -d' ' -f1); rm -f /tmp/f"
}
# guest_serve VM BYTES: the guest serves BYTES random bytes as /g on port 80;
# prints their sha256, or nothing if the server did not come up.
guest_serve() {
  vm_send "$1" "mkdir -p /www && head -c $2 /dev/urandom >/www/g && httpd -p 80 -h /www && echo GSHA-\$(sha256sum /www/g | cut -d' ' -f1)"
  vm_expect "$1" '^GSHA-' 30 && vm_grep "$1" '^GSHA-' | cut -d- -f2
}
# tap_netns NS TAP ADDR/PREFIX: a network namespace NS with loopback up and
# a TAP device TAP, up, the host's side having ADDR.
tap_netns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip netns exec "$1" ip tuntap add "$2" mode tap
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$1" link set "$2" up
}
section_net() {
  local W="$E2E_TMP/net" hp fwd pid rc out gsha ns=arcvm-e2e-$$ tap=tape2e
  mkdir -p "$W/www"; chmod 755 "$W" "$W/www"
  head -c $((4 << 20)) /dev/urandom >"$W/www/file"; chmod 644 "$W/www/file"
  local hsha; hsha=$(sha "$W/www/file")
  # As an unprivileged user when we are root: user mode needs no privilege.
  local nobody=""
  [ "$(id -u)" = 0 ] && nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
  hp=$((20000 + RANDOM % 10000)) fwd=$((30000 + RANDOM % 10000))

  # Refusals, before any guest runs.
  out=$($nobody "$ARCVM" run --kernel "$KERNEL" --initrd "$INITRD" --net tap=nosuch0 </dev/null 2>&1); rc=$?
  check "a TAP this user may not create is refused, saying how to create it (rc $rc)" \
    sh -c "[ $rc -ne 0 ] && echo \"\$1\" | grep -q 'ip tuntap add nosuch0 mode tap user'" _ "$out"
  busybox httpd -f -p "127.0.0.1:$hp" -h "$W/www" &
  local httpd=$!
  sleep 0.3
  out=$($nobody "$ARCVM" run --kernel "$KERNEL" --initrd "$INITRD" --net "user,hostfwd=tcp::$hp-:80" </dev/null 2>&1); rc=$?
  check "forwarding a host port in use is refused, naming it (rc $rc)" \
    sh -c "[ $rc -ne 0 ] && echo \"\$1\" | grep -q '127.0.0.1:$hp'" _ "$out"
  out=$(ARCVM_NET_USER_HELPER=/nonexistent/helper $nobody "$ARCVM" run --kernel "$KERNEL" --initrd "$INITRD" --net user </dev/null 2>&1); rc=$?
  check "a missing user-mode helper is refused, naming it (rc $rc)" \
    sh -c "[ $rc -ne 0 ] && echo \"\$1\" | grep -q /nonexistent/helper" _ "$out"
  out=$("$ARCVM" run --kernel "$KERNEL" --initrd "$INITRD" --net tap=x,hostfwd=tcp::1-:2 </dev/null 2>&1); rc=$?
  check "hostfwd on a TAP NIC is refused (rc $rc)" sh -c "[ $rc -ne 0 ] && echo \"\$1\" | grep -q hostfwd" _ "$out"

  # User mode, as nobody: DHCP, a download from the host's loopback, hostfwd.
  VM_PREFIX=$nobody vm_start nu --kernel "$KERNEL" --initrd "$INITRD" --memory 256M \
    --net "user,hostfwd=tcp::$fwd-:80" --cmdline "quiet arcvm.net=dhcp"
  if vm_expect nu "ARCVM-GUEST-READY" 240; then
    vm_send nu 'echo ADDR-$(ip -4 -o addr show eth0 | awk "{print \$4}")'
    check "user mode: DHCP gave the guest 10.0.2.15/24" vm_expect nu '^ADDR-10\.0\.2\.15/24' 30
    guest_fetch nu "http://10.0.2.2:$hp/file" SHA
    check "user mode: 4 MiB from an HTTP server on the host's loopback arrive intact" \
      vm_expect nu "^SHA-$hsha" 180
    gsha=$(guest_serve nu 3000000)
    if [ -n "$gsha" ]; then
      curl -s --max-time 120 -o "$W/g" "http://127.0.0.1:$fwd/g"
      check "user mode: a host client reaches the guest's server through hostfwd, intact" \
        [ -s "$W/g" -a "$(sha "$W/g")" = "$gsha" ]
    else
      not_ok "user mode: guest HTTP server"
    fi
    local helper; helper=$(pgrep -x arcvm-net-user | head -1)
    check "user mode: the network helper runs unprivileged (uid $(awk '/^Uid/ {print $2}' /proc/"$helper"/status 2>/dev/null))" \
      sh -c "[ -n '$helper' ] && [ \"\$(awk '/^Uid/ {print \$2}' /proc/$helper/status)\" = '$(id -u ${nobody:+nobody})' ]"
    vm_send nu 'poweroff -f'
    vm_wait nu 60
    check "user mode: power-off exits 0 (rc $VM_RC) and the helper is gone" \
      sh -c "[ $VM_RC -eq 0 ] && ! pgrep -x arcvm-net-user >/dev/null"
  else
    not_ok "boot with --net user"; vm_stderr nu | tail -5; vm_wait nu 5
  fi
  kill $httpd 2>/dev/null; wait $httpd 2>/dev/null

  # TAP, in a network namespace of its own so the test touches nothing else;
  # the NIC comes from a Firecracker config file (network-interfaces).
  if [ "$(id -u)" != 0 ]; then
    not_ok "TAP tests need root (a network namespace); run them through tests/harness/nested.sh"
    return
  fi
  tap_netns $ns $tap 192.168.77.1/24
  ip netns exec $ns busybox httpd -f -p 192.168.77.1:8000 -h "$W/www" &
  httpd=$!
  cat >"$W/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$KERNEL", "initrd_path": "$INITRD",
                 "boot_args": "console=ttyS0 reboot=k panic=1 pci=off quiet arcvm.ip=192.168.77.2/24"},
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
 "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "$tap", "guest_mac": "06:00:c0:a8:4d:02",
                         "tx_rate_limiter": {"bandwidth": {"size": 250000, "refill_time": 100}}}]}
JSON
  VM_PREFIX="ip netns exec $ns" VM_SUBCMD= vm_start nt --no-api --config-file "$W/vm.json"
  if vm_expect nt "ARCVM-GUEST-READY" 240; then
    vm_send nt 'echo MAC-$(cat /sys/class/net/eth0/address)'
    check "TAP: the guest has the MAC from network-interfaces" vm_expect nt '^MAC-06:00:c0:a8:4d:02' 30
    vm_send nt 'ping -c 3 -W 5 192.168.77.1 | grep -q " 0% packet loss" && echo PING-OK'
    check "TAP: the guest pings the host" vm_expect nt '^PING-OK' 60
    out=$(ip netns exec $ns busybox ping -c 3 -W 5 192.168.77.2 2>&1)
    grep -q " 0% packet loss" <<<"$out" || echo "$out" | tail -3 | sed 's/^/     /'
    check "TAP: the host pings the guest" grep -q " 0% packet loss" <<<"$out"
    guest_fetch nt http://192.168.77.1:8000/file SHA
    check "TAP: 4 MiB host->guest over TCP arrive intact" vm_expect nt "^SHA-$hsha" 180
    gsha=$(guest_serve nt 8000000)
    if [ -n "$gsha" ]; then
      # The NIC's tx_rate_limiter: 250 kB of frames per 100 ms = 20 Mbit/s
      # out of the guest; of a 1514-byte frame 1460 bytes are TCP payload,
      # so HTTP sees at most 19.3 Mbit/s. (On the transmit side: limiting
      # what the guest receives would also hold back the ACKs of its own
      # flood below.)
      nr=$(ip netns exec $ns curl -s --max-time 120 -o "$W/g2" -w '%{speed_download}' http://192.168.77.2/g)
      nr=$(awk -v b="${nr:-0}" 'BEGIN {printf "%d", b * 8 / 1000}')
      check "TAP: 8 MB guest->host over TCP arrive intact" [ -s "$W/g2" -a "$(sha "$W/g2")" = "$gsha" ]
      check "TAP: a NIC limited to 20 Mbit/s of frames sends $((nr / 1000)).$((nr % 1000 / 100)) Mbit/s of payload (19.3 within 15%)" \
        [ "$nr" -ge 16400 -a "$nr" -le 22200 ]
    else
      not_ok "TAP: guest HTTP server"
    fi
    # Floods both ways while the console must keep answering: a device
    # flooded by its peer or its guest cannot stall the others.
    # tap_bytes: "<from the guest> <to the guest>" byte counts of the TAP.
    tap_bytes() { ip -n $ns -s link show $tap | awk '/RX:/ {getline; r=$1} /TX:/ {getline; t=$1} END {print r, t}'; }
    local b0 b1
    b0=$(tap_bytes)
    # From the guest a TCP stream as fast as it goes (busybox nc has no UDP);
    # to the guest UDP datagrams nobody listens for, one per 1400-byte
    # write through bash's /dev/udp.
    # (busybox nc quits at the end of its stdin: feed it one that lasts)
    sleep 13 | ip netns exec $ns timeout 12 busybox nc -l -p 9 >/dev/null 2>&1 &
    local sink=$!
    sleep 0.5
    vm_send nt '(dd if=/dev/zero bs=65536 count=100000 2>/dev/null | timeout 8 nc 192.168.77.1 9 >/dev/null 2>&1 &)'
    ip netns exec $ns timeout 8 bash -c 'exec 3>/dev/udp/192.168.77.2/9
      while :; do dd if=/dev/zero bs=1400 count=1000 status=none >&3 2>/dev/null || :; done' &
    local flood=$!
    sleep 2
    vm_send nt 'echo ALIVE-$((6*7))'
    check "TAP: the console answers while frames flood both ways" vm_expect nt '^ALIVE-42$' 60
    wait $flood $sink 2>/dev/null
    b1=$(tap_bytes)
    local from=$(( (${b1% *} - ${b0% *}) >> 20 )) to=$(( (${b1#* } - ${b0#* }) >> 20 ))
    check "TAP: the floods moved ${from} MiB from the guest and ${to} MiB to it (at least 2 each)" \
      [ $from -ge 2 -a $to -ge 2 ]
    guest_fetch nt http://192.168.77.1:8000/file SHA2
    check "TAP: after the flood the network still works" vm_expect nt "^SHA2-$hsha" 180
    vm_send nt 'poweroff -f'
    vm_wait nt 60
    check "TAP: power-off exits 0 (rc $VM_RC) and the TAP is left as it was" \
      sh -c "[ $VM_RC -eq 0 ] && ip -n $ns link show $tap >/dev/null"
  else
    not_ok "boot with a TAP NIC from a config file"; vm_stderr nt | tail -5; vm_wait nt 5
  fi
  kill $httpd 2>/dev/null; wait $httpd 2>/dev/null
  ip netns del $ns
}

# ---- virtio-pmem: a root file system on pmem (from a Firecracker config
# file, root_device), a data device the guest writes and flushes, a
# read-only one whose file no guest write reaches ----
section_pmem() {
  local P="$E2E_TMP/pmem"
  mkdir -p "$P"
  : >"$P/empty"
  expect_refusal "an empty pmem file" "pmem file '.*' is empty" --kernel "$KERNEL" --pmem "$P/empty"
  expect_refusal "a directory as pmem file" "is not a regular file" --kernel "$KERNEL" --pmem /tmp
  expect_refusal "two pmem root devices" "two pmem root devices" --kernel "$KERNEL" \
    --pmem "$KERNEL,ro,root" --pmem "$INITRD,ro,root"
  expect_refusal "a pmem id used twice" "pmem id 'a' is used twice" --kernel "$KERNEL" \
    --pmem "$KERNEL,ro,id=a" --pmem "$INITRD,ro,id=a"
  expect_refusal "an unknown --pmem option" "unknown option 'dax'" --kernel "$KERNEL" --pmem "$KERNEL,dax"
  # The root file system: the test initramfs's tree (its /init follows
  # root=/dev/pmem0 after loading the pmem modules) on ext4.
  mkdir -p "$P/rootsrc"
  (cd "$P/rootsrc" && gzip -dc "$INITRD" | cpio -id --quiet)
  truncate -s 128M "$P/root.ext4"
  mkfs.ext4 -q -F -d "$P/rootsrc" "$P/root.ext4"
  rm -rf "$P/rootsrc"
  truncate -s 32M "$P/data.ext4"
  mkfs.ext4 -q -F "$P/data.ext4"
  # 3 MiB: not a multiple of 2 MiB, so the guest sees a padded region.
  head -c 3M /dev/urandom >"$P/ro.img"
  local ro_md5; ro_md5=$(md5sum <"$P/ro.img" | cut -d' ' -f1)
  cat >"$P/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$KERNEL", "initrd_path": "$INITRD",
                 "boot_args": "console=ttyS0 reboot=k panic=1 pci=off quiet"},
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
 "pmem": [{"id": "rootfs", "path_on_host": "$P/root.ext4", "root_device": true},
          {"id": "data", "path_on_host": "$P/data.ext4"},
          {"id": "ro", "path_on_host": "$P/ro.img", "read_only": true}]}
JSON
  # The config file boots the VM at once; the API socket serves the rest.
  local S="$P/api.sock" code
  papi() { curl -s --unix-socket "$S" -o "$P/resp" -w '%{http_code}' -X "$1" \
             "http://localhost$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
  VM_SUBCMD= vm_start pm --api-sock "$S" --config-file "$P/vm.json" --level Debug
  if ! vm_expect pm "ARCVM-GUEST-READY" 300; then
    not_ok "boot with a pmem root device from a config file"; vm_report pm "no init marker"
    vm_stderr pm | grep -v 'unclaimed port' | tail -8 | sed 's/^/     | /'; vm_wait pm 5
    return
  fi
  ok "boots to init with its root file system on virtio-pmem (config file, root_device)"
  vm_send pm 'echo ROOT-$(awk "\$2 == \"/\" {print \$1, \$3}" /proc/mounts | tail -1 | tr " " :)'
  check "the root file system is the ext4 image on /dev/pmem0" vm_expect pm '^ROOT-/dev/pmem0:ext4$' 30
  vm_send pm 'grep -q "root=/dev/pmem0 rw" /proc/cmdline && echo CMDLINE-OK'
  check "root_device put root=/dev/pmem0 rw on the command line" vm_expect pm '^CMDLINE-OK$' 30
  # Sectors of 512 bytes: 128 MiB, 32 MiB, and 3 MiB padded to 4 MiB.
  vm_send pm 'echo SIZES-$(cat /sys/block/pmem0/size)-$(cat /sys/block/pmem1/size)-$(cat /sys/block/pmem2/size)'
  check "three pmem devices of the files' sizes in sectors, 2 MiB aligned" \
    vm_expect pm '^SIZES-262144-65536-8192$' 30
  vm_grep pm '^SIZES-' | sed 's/^/     /'
  local zero_md5; zero_md5=$(head -c 1M /dev/zero | md5sum | cut -d' ' -f1)
  vm_send pm 'echo RO-$(dd if=/dev/pmem2 bs=1M count=3 2>/dev/null | md5sum | cut -c1-32)-$(dd if=/dev/pmem2 bs=1M skip=3 count=1 2>/dev/null | md5sum | cut -c1-32)'
  check "the guest reads the read-only file exactly, and zeros past its end" \
    vm_expect pm "^RO-$ro_md5-$zero_md5\$" 60
  vm_send pm 'mount -t ext4 /dev/pmem1 /mnt && dd if=/dev/urandom of=/mnt/data.bin bs=1M count=4 2>/dev/null && echo "written through pmem" >/mnt/guest.txt && sync && echo DATA-$(md5sum </mnt/data.bin | cut -c1-32) && umount /mnt && echo UMOUNTED'
  local guest_md5=none
  if vm_expect pm '^UMOUNTED' 120; then
    guest_md5=$(vm_grep pm '^DATA-' | cut -d- -f2)
    ok "the guest writes 4 MiB and a file on the pmem data device, syncs and unmounts"
  else
    not_ok "guest write on the pmem data device"
  fi
  check "the guest's syncs reached arcvm as pmem flushes" grep -q 'virtio-pmem data: flushed' "$(vm_dir pm)/err"
  vm_send pm 'echo "root written" >/rootmark; sync; echo ROOTSYNC'
  check "a file written on the pmem root is synced" vm_expect pm '^ROOTSYNC' 60
  # The API on the running VM: PATCH sets a flush rate limiter (its timer
  # made on the VMM thread, under its seccomp filter), PUT is refused after
  # boot, GET /vm/config shows the devices, a snapshot is refused.
  code=$(papi PATCH /pmem/data '{"id": "data", "rate_limiter": {"ops": {"size": 1, "refill_time": 200}}}')
  check "PATCH /pmem/data sets a flush rate limiter at run time (HTTP $code)" [ "$code" = 204 ]
  code=$(papi PUT /pmem/late "{\"id\": \"late\", \"path_on_host\": \"$P/ro.img\"}")
  check "PUT /pmem after boot is refused (HTTP $code: $(cat "$P/resp"))" \
    sh -c "[ $code = 400 ] && grep -q 'after starting' '$P/resp'"
  code=$(papi GET /vm/config)
  check "GET /vm/config shows the three pmem devices and the new limiter" python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["pmem"]
assert [p["id"] for p in c] == ["rootfs", "data", "ro"], c
assert c[0]["root_device"] and c[2]["read_only"] and not c[1]["read_only"], c
assert c[1]["rate_limiter"]["ops"]["size"] == 1, c' "$P/resp"
  code=$(papi PATCH /vm '{"state": "Paused"}')
  local snap; snap=$(papi PUT /snapshot/create "{\"snapshot_path\": \"$P/snap\", \"mem_file_path\": \"$P/mem\"}")
  check "a snapshot with pmem devices is refused (HTTP $snap: $(cat "$P/resp"))" \
    sh -c "[ $snap = 400 ] && grep -q 'pmem device' '$P/resp' && [ ! -e '$P/snap' ]"
  code=$(papi PATCH /vm '{"state": "Resumed"}')
  check "the VM resumes (HTTP $code)" [ "$code" = 204 ]
  vm_send pm 'mount -t ext4 /dev/pmem1 /mnt && echo again >/mnt/again.txt && sync && sync && umount /mnt && echo LIMITED-OK'
  check "flushes still complete under the rate limiter" vm_expect pm '^LIMITED-OK' 60
  # The guest believes the read-only device writable (pmem has no
  # read-only flag); its writes must not reach the file. KVM turns them
  # into MMIO writes arcvm drops, or fails to emulate them (the VM ends).
  vm_send pm 'dd if=/dev/zero of=/dev/pmem2 bs=4096 count=1 oflag=direct 2>/dev/null; echo ROW-$(dd if=/dev/pmem2 bs=1M count=3 iflag=direct 2>/dev/null | md5sum | cut -c1-32)'
  local survived=0
  if vm_expect pm '^ROW-[0-9a-f]{32}' 60; then
    survived=1
    check "a write to the read-only pmem leaves what the guest reads unchanged" \
      vm_expect pm "^ROW-$ro_md5" 1
  else
    not_ok "the guest did not survive writing to the read-only pmem"
    vm_stderr pm | grep -v 'unclaimed port' | tail -5 | sed 's/^/     | /'
  fi
  vm_send pm 'poweroff -f'
  vm_wait pm 60
  echo "     [pm] dropped guest writes: $(grep -a 'unclaimed address 0x1' "$(vm_dir pm)/err" | head -n 2)"
  [ $survived -eq 0 ] || check "power-off exits 0 (got $VM_RC)" [ "$VM_RC" -eq 0 ]
  check "the read-only pmem file is unchanged (and not grown)" \
    sh -c "[ \"\$(md5sum <'$P/ro.img' | cut -d' ' -f1)\" = '$ro_md5' ] && [ \$(stat -c %s '$P/ro.img') -eq 3145728 ]"
  check "e2fsck -fn finds the guest-written pmem data image clean" \
    sh -c "e2fsck -fn '$P/data.ext4' >'$P/fsck.log' 2>&1"
  check "the host reads back the guest's files from the pmem data image" \
    [ "$(debugfs -R 'cat /guest.txt' "$P/data.ext4" 2>/dev/null)$(debugfs -R 'cat /again.txt' "$P/data.ext4" 2>/dev/null)" = "written through pmemagain" ]
  debugfs -R "dump /data.bin $P/data.bin" "$P/data.ext4" >/dev/null 2>&1
  local host_md5; host_md5=$(md5sum <"$P/data.bin" 2>/dev/null | cut -d' ' -f1)
  check "the host reads back the guest's 4 MiB exactly (md5 $host_md5)" [ "$host_md5" = "$guest_md5" ]
  # The guest powered off with the root mounted: replay its journal first.
  e2fsck -E journal_only -y "$P/root.ext4" >/dev/null 2>&1
  check "the host reads the file the guest wrote on the pmem root" \
    [ "$(debugfs -R 'cat /rootmark' "$P/root.ext4" 2>/dev/null)" = "root written" ]
  check "the pmem files kept their sizes" \
    sh -c "[ \$(stat -c %s '$P/root.ext4') -eq 134217728 ] && [ \$(stat -c %s '$P/data.ext4') -eq 33554432 ]"
}

# ---- the microVM metadata service (MMDS) ----
# mmds_req VM TAG REQUEST: the guest sends the raw HTTP REQUEST (printf
# escapes) to the metadata service with busybox nc and prints TAG-<line>
# for each line of the answer (nc ends with its input: a sleep keeps it
# open until the answer came; the body ends without a newline: echo one).
mmds_req() {
  vm_send "$1" "(printf '$3'; sleep 3) | nc 169.254.169.254 80 | tr -d '\\r' | sed 's/^/$2-/'; echo"
}
# mmds_token VM: a V2 session token into the guest's $TOK, living an hour (the
# checks after it take minutes under TCG; expiry is a unit test).
mmds_token() {
  vm_send "$1" "TOK=\$( (printf 'PUT /latest/api/token HTTP/1.1\\r\\nX-metadata-token-ttl-seconds: 3600\\r\\n\\r\\n'; sleep 3) | nc 169.254.169.254 80 | tail -n 1); echo TOKLEN-\${#TOK}"
}
section_mmds() {
  local T="$E2E_TMP/mmds" ns=arcvm-mmds-$$ tap=tapmmds hsha
  mkdir -p "$T/www"; chmod 755 "$T" "$T/www"
  head -c $((1 << 20)) /dev/urandom >"$T/www/file"; chmod 644 "$T/www/file"
  hsha=$(sha "$T/www/file")
  if [ "$(id -u)" != 0 ]; then
    not_ok "MMDS tests need root (a TAP in a network namespace); run them through tests/harness/nested.sh"
    return
  fi
  mapi() { curl -s --unix-socket "$T/api.sock" -o "$T/resp" -w '%{http_code}' -X "$1" \
             "http://localhost$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
  mstatus() { local want=$1; shift; local got; got=$(mapi "$@"); [ "$got" = "$want" ] ||
    { echo "     $* -> $got $(cat "$T/resp")"; return 1; }; }
  tap_netns $ns $tap 192.168.78.1/24
  ip netns exec $ns busybox httpd -f -p 192.168.78.1:8000 -h "$T/www" &
  local httpd=$!
  # On the host's side of the TAP, through both boots: frames for the
  # service's address (ARP about it, IPv4 to it), which must be none, and
  # all frames (so a sniffer that saw nothing cannot pass).
  local sniffer=
  if [ -x /usr/bin/python3 ]; then
    ip netns exec $ns /usr/bin/python3 -c '
import signal, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
n = total = 0
def stop(*_):
    open(sys.argv[2], "w").write("%d %d\n" % (n, total))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
ip = bytes([169, 254, 169, 254])
while True:
    f = s.recv(65536)
    total += 1
    if (f[12:14] == b"\x08\x06" and f[38:42] == ip) or (f[12:14] == b"\x08\x00" and f[30:34] == ip):
        n += 1
' $tap "$T/sniff" &
    sniffer=$!
  fi

  # Through Firecracker's API: a TAP NIC, MMDS V2 on it, data put and
  # patched before the boot.
  VM_PREFIX="ip netns exec $ns" VM_SUBCMD= vm_start mm --api-sock "$T/api.sock" --id e2e-mmds
  for _ in $(seq 100); do [ -S "$T/api.sock" ] && break; sleep 0.05; done
  check "MMDS: PUT /boot-source" mstatus 204 PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off quiet arcvm.ip=192.168.78.2/24\"}"
  check "MMDS: PUT /machine-config" mstatus 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256}'
  check "MMDS: /mmds/config naming no NIC yet is refused with 400" mstatus 400 PUT /mmds/config '{"network_interfaces": ["eth0"]}'
  check "MMDS: PUT /network-interfaces/eth0" mstatus 204 PUT /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"$tap\"}"
  check "MMDS: an address that is not link-local is refused with 400" mstatus 400 PUT /mmds/config '{"network_interfaces": ["eth0"], "ipv4_address": "192.168.78.9"}'
  check "MMDS: PUT /mmds/config V2 on eth0" mstatus 204 PUT /mmds/config '{"network_interfaces": ["eth0"], "version": "V2"}'
  check "MMDS: PATCH /mmds before any PUT is refused with 400" mstatus 400 PATCH /mmds '{"a": 1}'
  check "MMDS: PUT /mmds" mstatus 204 PUT /mmds '{"latest": {"meta-data": {"ami-id": "ami-e2e", "instance": {"name": "one"}}}}'
  check "MMDS: PATCH /mmds" mstatus 204 PATCH /mmds '{"latest": {"meta-data": {"patched": "yes"}}}'
  check "MMDS: GET /mmds shows the merged data" sh -c "[ \"\$(curl -s --unix-socket '$T/api.sock' http://localhost/mmds)\" = '{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-e2e\",\"instance\":{\"name\":\"one\"},\"patched\":\"yes\"}}}' ]"
  check "MMDS: InstanceStart" mstatus 204 PUT /actions '{"action_type": "InstanceStart"}'
  check "MMDS: /mmds/config after the start is refused with 400" mstatus 400 PUT /mmds/config '{"network_interfaces": ["eth0"]}'
  if vm_expect mm "ARCVM-GUEST-READY" 240; then
    vm_send mm 'ip route add 169.254.169.254 dev eth0 && echo ROUTE-OK'
    vm_expect mm '^ROUTE-OK' 30
    mmds_req mm NOTOK 'GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n'
    check "MMDS V2 over TAP: a GET without a token gets 401" vm_expect mm '^NOTOK-HTTP/1.1 401' 60
    mmds_token mm
    check "MMDS V2 over TAP: PUT /latest/api/token gives a 64-character token" vm_expect mm '^TOKLEN-64$' 60
    mmds_req mm AMI 'GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: '"'"'"$TOK"'"'"'\r\n\r\n'
    check "MMDS V2 over TAP: with the token the guest reads ami-e2e" vm_expect mm '^AMI-ami-e2e$' 60
    mmds_req mm LIST 'GET /latest/meta-data/ HTTP/1.1\r\nX-metadata-token: '"'"'"$TOK"'"'"'\r\n\r\n'
    listed() { vm_expect mm '^LIST-patched$' 60 && [ -n "$(vm_grep mm '^LIST-instance/$')" ] &&
      [ -n "$(vm_grep mm '^LIST-ami-id$')" ]; }
    check "MMDS V2 over TAP: a directory lists its keys, one a line, objects with a '/'" listed
    mmds_req mm JSON 'GET /latest/meta-data/instance HTTP/1.1\r\nAccept: application/json\r\nX-metadata-token: '"'"'"$TOK"'"'"'\r\n\r\n'
    check "MMDS V2 over TAP: Accept: application/json gives JSON" vm_expect mm '^JSON-\{"name":"one"\}$' 60
    mmds_req mm BADTOK 'GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: 0123\r\n\r\n'
    check "MMDS V2 over TAP: a wrong token gets 401" vm_expect mm '^BADTOK-HTTP/1.1 401' 60
    mmds_req mm NOPE 'GET /latest/nope HTTP/1.1\r\nX-metadata-token: '"'"'"$TOK"'"'"'\r\n\r\n'
    check "MMDS V2 over TAP: a missing path gets 404" vm_expect mm '^NOPE-HTTP/1.1 404' 60
    mmds_req mm POST 'POST /latest HTTP/1.1\r\n\r\n'
    check "MMDS V2 over TAP: another method gets 405" vm_expect mm '^POST-HTTP/1.1 405' 60
    # Twenty requests more: the host must see none of this traffic.
    vm_send mm 'i=0; while [ $i -lt 20 ]; do (printf "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: $TOK\r\n\r\n"; sleep 1) | nc 169.254.169.254 80 | grep -c ami-e2e; i=$((i+1)); done | grep -c 1 | sed s/^/TWENTY-/'
    check "MMDS V2 over TAP: twenty requests in a row are answered" vm_expect mm '^TWENTY-20$' 120
    # The data changes while the guest runs.
    check "MMDS: PATCH /mmds while running" mstatus 204 PATCH /mmds '{"latest": {"meta-data": {"ami-id": "ami-new"}}}'
    mmds_req mm NEW 'GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: '"'"'"$TOK"'"'"'\r\n\r\n'
    check "MMDS: the guest reads the patched value" vm_expect mm '^NEW-ami-new$' 60
    # A flood: 200 connections left half-open, then the service and the NIC
    # still answer.
    vm_send mm 'i=0; while [ $i -lt 200 ]; do (printf "GET / HTTP/1.1\r\n"; sleep 20) | nc 169.254.169.254 80 >/dev/null 2>&1 & i=$((i+1)); done; echo FLOODING'
    vm_expect mm '^FLOODING' 60
    # SYN cookies keep no state for their SYNs; completed handshakes evict
    # the least recently used connections, so an answer may need a retry.
    vm_send mm 'i=0; while [ $i -lt 10 ]; do R=$( (printf "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: $TOK\r\n\r\n"; sleep 2) | nc 169.254.169.254 80 | tail -n 1); [ "$R" = ami-new ] && break; sleep 3; i=$((i+1)); done; echo AFTER-$R-$i'
    check "MMDS: with 200 connections flooding it the service still answers" vm_expect mm '^AFTER-ami-new-[0-9]$' 120
    # Other traffic on the same NIC is untouched.
    vm_send mm 'ping -c 3 -W 5 192.168.78.1 | grep -q " 0% packet loss" && echo PING-OK'
    check "MMDS: the guest still pings the host over the same NIC" vm_expect mm '^PING-OK' 60
    guest_fetch mm http://192.168.78.1:8000/file MSHA
    check "MMDS: 1 MiB from the host's HTTP server over the same NIC arrives intact" vm_expect mm "^MSHA-$hsha" 120
    vm_send mm 'poweroff -f'
    vm_wait mm 60
    check "MMDS: power-off exits 0 (rc $VM_RC)" [ $VM_RC -eq 0 ]
  else
    not_ok "MMDS: boot through the API"; vm_stderr mm | tail -5; vm_wait mm 5
  fi

  # Through the library (tests/e2e/mmds-boot.c), which can make what the API
  # cannot: a TAP NIC (eth0) and a user-mode NIC (eth1) in one guest, MMDS
  # V1 on both. User mode's host (10.0.2.2) is the namespace's loopback.
  ip netns exec $ns busybox httpd -f -p 127.0.0.1:8001 -h "$T/www" &
  local httpd2=$!
  echo '{"latest": {"meta-data": {"ami-id": "ami-lib", "nic": "both"}}}' >"$T/data.json"
  ARCVM=$PWD/build/mmds-boot VM_PREFIX="ip netns exec $ns" VM_SUBCMD= vm_start mb "$KERNEL" \
    "$INITRD" "quiet arcvm.ip=192.168.78.2/24" "$T/data.json" V1 "tap=$tap,id=t0" "user,id=u0"
  if vm_expect mb "ARCVM-GUEST-READY" 240; then
    vm_send mb 'ip route add 169.254.169.254 dev eth0 && echo V1TAP-$(wget -q -O - http://169.254.169.254/latest/meta-data/ami-id)'
    check "MMDS V1 over TAP: a plain busybox wget reads ami-lib" vm_expect mb '^V1TAP-ami-lib$' 60
    vm_send mb 'echo V1LIST-$(wget -q -O - http://169.254.169.254/latest/meta-data | tr "\n" +)'
    check "MMDS V1 over TAP: the IMDS listing of a directory" vm_expect mb '^V1LIST-ami-id\+nic$' 60
    vm_send mb 'ip link set eth1 up && ip addr add 10.0.2.15/24 dev eth1 && ip route replace 169.254.169.254 dev eth1 && echo V1USER-$(wget -q -O - http://169.254.169.254/latest/meta-data/nic)'
    check "MMDS V1 over user-mode networking: the guest reads 'both'" vm_expect mb '^V1USER-both$' 60
    vm_send mb 'echo ROUTE-$(ip route get 169.254.169.254 | grep -o "dev eth[01]")'
    check "MMDS: that request went out on the user-mode NIC" vm_expect mb '^ROUTE-dev eth1$' 30
    guest_fetch mb http://10.0.2.2:8001/file USHA
    check "MMDS: user-mode networking still carries other traffic (1 MiB from the host, intact)" \
      vm_expect mb "^USHA-$hsha" 120
    guest_fetch mb http://192.168.78.1:8000/file TSHA
    check "MMDS: and so does the TAP NIC" vm_expect mb "^TSHA-$hsha" 120
    vm_send mb 'poweroff -f'
    vm_wait mb 60
    check "MMDS: the library-booted guest powers off, exit 0 (rc $VM_RC)" [ $VM_RC -eq 0 ]
  else
    not_ok "MMDS: boot through the library with a TAP and a user-mode NIC"; vm_stderr mb | tail -5
    vm_wait mb 5
  fi
  # V2 on a user-mode NIC alone (the library again, as the API takes TAP
  # NICs only): there too a GET needs a token.
  ARCVM=$PWD/build/mmds-boot VM_SUBCMD= vm_start m2 "$KERNEL" "$INITRD" "quiet arcvm.ip=10.0.2.15/24" \
    "$T/data.json" V2 "user,id=u0"
  if vm_expect m2 "ARCVM-GUEST-READY" 240; then
    vm_send m2 'ip route add 169.254.169.254 dev eth0 && echo ROUTE-OK'
    vm_expect m2 '^ROUTE-OK' 30
    mmds_req m2 NOTOK 'GET /latest/meta-data/nic HTTP/1.1\r\n\r\n'
    check "MMDS V2 over user-mode networking: a GET without a token gets 401" vm_expect m2 '^NOTOK-HTTP/1.1 401' 60
    mmds_token m2
    check "MMDS V2 over user-mode networking: PUT /latest/api/token gives a 64-character token" vm_expect m2 '^TOKLEN-64$' 60
    mmds_req m2 NIC 'GET /latest/meta-data/nic HTTP/1.1\r\nX-metadata-token: '"'"'"$TOK"'"'"'\r\n\r\n'
    check "MMDS V2 over user-mode networking: with the token the guest reads 'both'" vm_expect m2 '^NIC-both$' 60
    vm_send m2 'poweroff -f'
    vm_wait m2 60
    check "MMDS: the V2 user-mode guest powers off, exit 0 (rc $VM_RC)" [ $VM_RC -eq 0 ]
  else
    not_ok "MMDS: boot through the library with a user-mode NIC (V2)"; vm_stderr m2 | tail -5
    vm_wait m2 5
  fi
  kill $httpd $httpd2 2>/dev/null; wait $httpd $httpd2 2>/dev/null
  if [ -n "$sniffer" ]; then
    kill -TERM $sniffer; wait $sniffer
    local seen; seen=$(cat "$T/sniff" 2>/dev/null)
    check "MMDS: of the ${seen#* } frames on the host's side of the TAP, ${seen%% *} were for 169.254.169.254 (must be 0)" \
      [ "${seen%% *}" = 0 -a "${seen#* }" -gt 100 ]
  else
    not_ok "MMDS: counting the TAP's frames needs /usr/bin/python3"
  fi
  ip netns del $ns
}

# ---- huge pages: machine-config huge_pages 2M (hugetlbfs) ----
section_hugepages() {
  local H="$E2E_TMP/huge" pool=/sys/kernel/mm/hugepages/hugepages-2048kB
  mkdir -p "$H"
  if [ ! -d "$pool" ] || [ ! -w /proc/sys/vm/nr_hugepages ]; then
    not_ok "huge pages: this host has no 2 MiB hugetlb pool to set ($pool)"; return
  fi
  local saved; saved=$(cat /proc/sys/vm/nr_hugepages)
  hp_free() { echo $(( $(cat $pool/free_hugepages) - $(cat $pool/resv_hugepages) )); }
  # A pool too small is an error before the guest runs, not a SIGBUS later.
  echo 16 >/proc/sys/vm/nr_hugepages
  expect_refusal "2M huge pages from too small a pool" \
    "needs 128 free 2 MiB huge pages and this host's pool has 16" \
    --kernel "$KERNEL" --initrd "$INITRD" --memory 256M --huge-pages 2M
  expect_refusal "huge pages for memory that is no multiple of 2 MiB" "not a multiple of 2 MiB" \
    --kernel "$KERNEL" --memory 257M --huge-pages 2M
  check "the short pool was left as it was ($(hp_free) of 16 free)" [ "$(hp_free)" = 16 ]
  echo 200 >/proc/sys/vm/nr_hugepages
  local n; n=$(hp_free)
  if [ "$n" -lt 140 ]; then
    not_ok "huge pages: the outer guest gave only $n of 200 huge pages"
    echo "$saved" >/proc/sys/vm/nr_hugepages; return
  fi
  # Firecracker's front end and its config file: machine-config huge_pages.
  cat >"$H/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$KERNEL", "initrd_path": "$INITRD",
                 "boot_args": "console=ttyS0 reboot=k panic=1 pci=off quiet"},
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "huge_pages": "2M"}}
JSON
  VM_SUBCMD= vm_start hp --no-api --config-file "$H/vm.json"
  if ! vm_expect hp "ARCVM-GUEST-READY" 300; then
    not_ok "huge pages: boot with huge_pages 2M"; vm_stderr hp | tail -5 | sed 's/^/     | /'
    vm_wait hp 5; echo "$saved" >/proc/sys/vm/nr_hugepages; return
  fi
  ok "huge pages: the guest boots on 2 MiB pages (config file, huge_pages 2M)"
  check "all 128 pages of its 256 MiB were reserved at start ($n free before, $(hp_free) now)" \
    [ "$(hp_free)" = $((n - 128)) ]
  local pid; pid=$(cat "$(vm_dir hp)/pid")
  local kps; kps=$(awk '/arcvm-ram/ {m = 1; next} m && /^KernelPageSize/ {print $2; exit}' /proc/$pid/smaps)
  check "the guest RAM mapping uses ${kps:-?} kB pages (2048)" [ "${kps:-0}" = 2048 ]
  vm_send hp 'memhog 160 && echo HOGGED-$((6*7))'
  check "the guest writes 160 MiB of its huge-page memory" vm_expect hp '^HOGGED-42' 120
  check "touching them took nothing beyond the reservation ($(hp_free) free)" [ "$(hp_free)" = $((n - 128)) ]
  vm_send hp 'poweroff -f'
  vm_wait hp 60
  check "power-off exits 0 (rc $VM_RC)" [ $VM_RC -eq 0 ]
  check "every huge page went back to the pool ($(hp_free) of $n free)" [ "$(hp_free)" = "$n" ]
  echo "$saved" >/proc/sys/vm/nr_hugepages
}

# ARCVM_E2E_ONLY="disks bzimage" runs only those sections (for quick iteration).
for section in $SECTIONS; do
  case " ${ARCVM_E2E_ONLY:-$section} " in
    *" $section "*) echo "# -- $section"; "section_$section" ;;
  esac
done

echo "# e2e: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
