#!/bin/sh
# arm64.sh - arcvm's arm64 end-to-end suite (issue 13). The default job of
# tests/harness/nested-arm64.sh: busybox sh in the outer aarch64 guest,
# whose /dev/kvm (in-kernel GICv3) runs arcvm's guests. Two inner boots of
# Debian's arm64 kernel, many checks each:
#
#  Kernels: boot 1 the plain Image (as Firecracker takes it); boot 2
#  Image.gz, which arcvm unpacks into its kernel cache; the snapshot part's
#  first boot Image.gz again, from the cache.
#  boot 1, through the Firecracker-compatible API (api-call on its Unix
#    socket): the getting-started sequence (boot source, machine config, a
#    drive, vsock, InstanceStart), GET / and /vm/config; the guest (2 vCPUs)
#    reads a file the host put into the ext4 disk and writes another,
#    syncs; it reads the API's entropy device (virtio-rng); the boot timer
#    logs; vsock echo both ways (vsock-tool at both ends of the hybrid Unix
#    socket protocol); PATCH /vm Paused stops a counter the guest prints,
#    Resumed lets it go on; the guest powers off: arcvm exits 0.
#  boot 2, through `arcvm run`: the file written in boot 1 reads back with
#    the same checksum; user-mode
#    networking (DHCP, then wget of a file busybox httpd serves on the outer
#    guest's loopback, 10.0.2.2 to the guest); the guest reboots: exit 2.
#  Before both: `arcvm check` passes, in arm64's words.
#  boot 3, through the API again: a balloon inflated to 64 MiB (MemTotal
#    shrinks, statistics answer) and deflated, a virtio-fs share read and
#    written both ways, virtio-pmem read and written with a flush that
#    reaches the host file; power-off exit 0.
#  Then the C library (tests/e2e/lifecycle.c): two VMs in one process,
#    legal and refused transitions, pause, the vCPU report, a reboot, stop
#    with a stalled console, no descriptor or thread left behind.
#  After both: snapshots (/arm64/snapshot.sh, tests/harness/arm64-snapshot.sh:
#    SIGUSR2 saves, `arcvm restore` resumes, twice, with its own boots).
#
# What it expects in the outer guest (nested-arm64.sh puts it there):
#   /bin/arcvm /bin/api-call /bin/vsock-tool /bin/arcvm-net-user /bin/lifecycle + libs
#   /arm64/snapshot.sh
#   /arm64/Image /arm64/Image.gz /arm64/initrd.cpio.gz (tests/guest/init.sh, modules, vsock-tool)
#   /arm64/data.ext4 (ext4 with /seed.txt = "arm64-e2e seed")
#   /etc/arm64-e2e-audit (optional): run arcvm with ARCVM_SECCOMP_AUDIT and
#     list what the filters would refuse (for fixing the lists, not a test)
# Output: PASS/FAIL/TIME lines and a summary; exit 1 on any failure.
# shellcheck disable=SC2016 # the single-quoted commands are typed into the guest
T=/tmp/e2e
mkdir -p "$T"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS  $*"; }
not_ok() { fail=$((fail + 1)); echo "FAIL  $*"; }
check() { # check WHAT COMMAND...
  what=$1; shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
now_ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }
if [ -f /etc/arm64-e2e-audit ]; then
  export ARCVM_SECCOMP_AUDIT=$T/seccomp-audit.txt
  echo "INFO  seccomp audit mode: the filters log instead of refusing"
fi

# --- one guest at a time, its console on a FIFO (in) and a file (out) -----
# vm_start NAME CMD...: start CMD in the background as guest NAME.
vm_start() {
  vm=$1; shift
  rm -f "$T/$vm.in"; mkfifo "$T/$vm.in"
  exec 3<>"$T/$vm.in" # held open: arcvm never sees end-of-input
  "$@" <"$T/$vm.in" >"$T/$vm.out" 2>"$T/$vm.err" &
  vmpid=$!
  vm_t0=$(now_ms)
}
send() { printf '%s\n' "$1" >&3; }
# lines: the console's complete lines, carriage returns removed; a last
# line the guest is still writing is left out, so that expect and last
# never see half of one.
lines() {
  tr -d '\r' <"$T/$vm.out" >"$T/$vm.lines"
  if [ -n "$(tail -c 1 "$T/$vm.lines")" ]; then sed '$d' "$T/$vm.lines"; else cat "$T/$vm.lines"; fi
}
# expect REGEX [SECS]: wait for a console line matching REGEX.
expect() {
  end=$(( $(now_ms) + ${2:-60} * 1000 ))
  while [ "$(now_ms)" -lt "$end" ]; do
    lines | grep -aqE "$1" && return 0
    kill -0 "$vmpid" 2>/dev/null || break
    sleep 0.2
  done
  lines | grep -aqE "$1" && return 0
  echo "      [$vm] no /$1/ within ${2:-60} s; console and log tails:"
  tail -n 12 "$T/$vm.out" | sed 's/^/      | /'
  tail -n 8 "$T/$vm.err" | sed 's/^/      ! /'
  return 1
}
# last REGEX: the last console line matching REGEX.
last() { lines | grep -aE "$1" | tail -n 1; }
# vm_wait SECS: wait for arcvm to exit (killed after SECS); its status in $rc.
vm_wait() {
  end=$(( $(now_ms) + $1 * 1000 ))
  while kill -0 "$vmpid" 2>/dev/null && [ "$(now_ms)" -lt "$end" ]; do sleep 0.2; done
  if kill -0 "$vmpid" 2>/dev/null; then
    echo "      [$vm] still running after $1 s; killing it"
    kill -9 "$vmpid" 2>/dev/null
  fi
  wait "$vmpid"; rc=$?
  exec 3>&-
}

# --- arcvm check ------------------------------------------------------------
arcvm check >"$T/check.out" 2>&1; rc=$?
sed 's/^/      | /' "$T/check.out"
check "arcvm check: this host can run VMs (exit $rc)" [ "$rc" = 0 ]
check "arcvm check speaks arm64 (no x86 terms)" \
  sh -c "! grep -qiE 'vmx|svm|VT-x|AMD-V|real-mode|bzImage|PIT|LAPIC|TSC|kvm_intel|kvm_amd' '$T/check.out'"

# --- boot 1: the Firecracker-compatible API --------------------------------
S=$T/api.sock V=$T/v.sock
# api METHOD PATH [BODY]: the status in $code, the body in $T/resp.
api() { api-call "$S" "$@" >"$T/resp.all" 2>&1; code=$(head -n 1 "$T/resp.all"); sed 1d "$T/resp.all" >"$T/resp"; }
status_is() {
  want=$1; shift
  api "$@"
  [ "$code" = "$want" ] && return 0
  echo "      $1 $2 -> $(cat "$T/resp.all")"
  return 1
}
body_has() { grep -qF "$1" "$T/resp" || { echo "      no '$1' in: $(cat "$T/resp")"; return 1; }; }

vm_start api arcvm --api-sock "$S" --id arm64-e2e --boot-timer
i=0; while [ ! -S "$S" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "arcvm --api-sock serves the API: GET / before boot" status_is 200 GET /
check "GET / says Not started" body_has '"state":"Not started"'
check "PUT /boot-source" status_is 204 PUT /boot-source \
  '{"kernel_image_path": "/arm64/Image", "initrd_path": "/arm64/initrd.cpio.gz", "boot_args": "console=ttyS0 panic=1 quiet"}'
check "PUT /machine-config (2 vCPUs, 256 MiB)" status_is 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
check "PUT /drives/data" status_is 204 PUT /drives/data \
  '{"drive_id": "data", "path_on_host": "/arm64/data.ext4", "is_root_device": false, "is_read_only": false}'
check "PUT /vsock" status_is 204 PUT /vsock "{\"guest_cid\": 3, \"uds_path\": \"$V\"}"
check "PUT /entropy" status_is 204 PUT /entropy '{}'
check "malformed JSON is refused with 400" status_is 400 PUT /machine-config '{"vcpu_count": 2,'
check "pause before start is refused with 400" status_is 400 PATCH /vm '{"state": "Paused"}'
check "PUT /actions InstanceStart" status_is 204 PUT /actions '{"action_type": "InstanceStart"}'
if expect 'ARCVM-GUEST-READY cpus=2 ' 180; then
  ok "the API-configured guest boots to init with 2 vCPUs"
  echo "TIME  API boot: InstanceStart to the init's marker $(( $(now_ms) - vm_t0 )) ms (from arcvm's start)"
  check "GET / says Running" status_is 200 GET /
  body_has '"state":"Running"' || not_ok "GET / state Running"
  check "GET /vm/config shows the machine config, the drive and vsock" status_is 200 GET /vm/config
  for want in '"vcpu_count":2' '"mem_size_mib":256' '"drive_id":"data"' "\"uds_path\":\"$V\""; do
    body_has "$want" || not_ok "GET /vm/config has $want"
  done

  # The disk: a file the host made, and one the guest writes.
  send 'mount -t ext4 /dev/vda /mnt && echo SEED-$(cat /mnt/seed.txt)'
  check "the guest mounts the ext4 drive and reads the host's file" expect '^SEED-arm64-e2e seed$' 60
  # The API's entropy device: the guest's hwrng is virtio-rng and reads.
  send 'echo RNG-$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c)-$(cat /sys/class/misc/hw_random/rng_current)'
  check "the guest reads 32 bytes from the API's virtio-rng (/dev/hwrng)" expect '^RNG-32-virtio_rng' 60
  send 'dd if=/dev/urandom of=/mnt/data.bin bs=64k count=32 2>/dev/null; sync; echo WROTE-$(sha256sum </mnt/data.bin | cut -c1-64)'
  if expect '^WROTE-[0-9a-f]{64}$' 60; then
    wrote=$(last '^WROTE-'); wrote=${wrote#WROTE-}
    ok "the guest wrote 2 MiB to the disk and synced"
  else
    wrote=none; not_ok "the guest writes and syncs a file"
  fi

  # vsock, host -> guest: CONNECT 5000 and a 1 MiB echo round trip.
  send 'vsock-tool listen 5000 echo &'
  expect 'listening on 5000' 30 >/dev/null
  timeout 120 vsock-tool -t 30 connect-guest "$V" 5000 roundtrip 1M >"$T/vs1" 2>&1; rc=$?
  [ $rc = 0 ] || sed 's/^/      /' "$T/vs1"
  check "vsock host->guest: CONNECT and a 1 MiB echo round trip" [ $rc = 0 ]
  # guest -> host: to <uds>_6000
  vsock-tool listen-unix "${V}_6000" echo >"$T/vs2" 2>&1 &
  hpid=$!
  sleep 0.5
  send 'vsock-tool connect-host 6000 roundtrip 1M; echo RT-RC-$?'
  check "vsock guest->host: a 1 MiB echo round trip through <uds>_6000" expect '^RT-RC-0' 120
  wait $hpid
  timeout 60 vsock-tool connect-guest "$V" 7777 sink >/dev/null 2>&1; rc=$?
  check "vsock: a connection to a port nobody listens on is refused (exit $rc)" [ $rc != 0 ]

  # Pause and resume: a counter the guest prints every second stops.
  send '(i=0; while true; do i=$((i+1)); echo COUNT-$i; sleep 1; done) &'
  expect '^COUNT-3$' 60 >/dev/null
  check "PATCH /vm Paused" status_is 204 PATCH /vm '{"state": "Paused"}'
  sleep 1
  before=$(last '^COUNT-[0-9]+$')
  check "GET / says Paused" status_is 200 GET /
  body_has '"state":"Paused"' || not_ok "GET / state Paused"
  sleep 4
  after=$(last '^COUNT-[0-9]+$')
  check "while paused the guest's counter stops ($before -> $after)" [ -n "$before" -a "$before" = "$after" ]
  check "pausing twice is refused with 400" status_is 400 PATCH /vm '{"state": "Paused"}'
  check "PATCH /vm Resumed" status_is 204 PATCH /vm '{"state": "Resumed"}'
  n=${after#COUNT-}
  check "after resume the counter goes on (to COUNT-$((n + 2)))" expect "^COUNT-$((n + 2))\$" 60
  send 'kill $!'

  send 'umount /mnt && sync && poweroff -f'
  vm_wait 60
  check "guest power-off ends arcvm with 0 (got $rc)" [ "$rc" = 0 ]
  check "the API socket is removed on exit" [ ! -e "$S" ]
else
  not_ok "the API-configured guest boots to init"
  wrote=none
  kill "$vmpid" 2>/dev/null; vm_wait 10
fi
check "--boot-timer: arcvm logged the guest's boot-timer write" grep -q 'Guest-boot-time' "$T/api.err"
grep -h 'Guest-boot-time' "$T/api.err" | sed 's/^/TIME  API boot: /'

# --- boot 2: arcvm run, the disk again, user-mode networking, reboot --------
netargs='' netcmd=''
if [ -x /bin/arcvm-net-user ]; then
  mkdir -p /srv
  dd if=/dev/urandom of=/srv/blob bs=64k count=8 2>/dev/null
  blobsum=$(sha256sum </srv/blob | cut -c1-64)
  httpd -f -p 127.0.0.1:8080 -h /srv &
  httpdpid=$!
  netargs='--net user' netcmd=' arcvm.net=dhcp'
fi
# shellcheck disable=SC2086 # $netargs is two words or none
vm_start run arcvm run --kernel /arm64/Image.gz --initrd /arm64/initrd.cpio.gz --cpus 2 --memory 256M \
  --disk /arm64/data.ext4 $netargs --boot-timer --log-level info --cmdline "quiet$netcmd"
if expect 'ARCVM-GUEST-READY cpus=2 mode=shell' 180; then
  ok "arcvm run boots to init with 2 vCPUs"
  echo "TIME  CLI boot: start to the init's marker $(( $(now_ms) - vm_t0 )) ms"
  send 'mount -t ext4 /dev/vda /mnt && echo READ-$(sha256sum </mnt/data.bin | cut -c1-64)'
  check "the file written in boot 1 is intact after sync, power-off and a new boot" \
    expect "^READ-$wrote\$" 60
  if [ -n "$netargs" ]; then
    send 'echo NET-$(wget -q -O - http://10.0.2.2:8080/blob | sha256sum | cut -c1-64)'
    check "user-mode networking: DHCP, then wget of 512 KiB from the host's httpd, checksum equal" \
      expect "^NET-$blobsum\$" 120
    kill "$httpdpid" 2>/dev/null
  else
    # make cross-arm64 builds it wherever install-deps --arm64 ran: its
    # absence is a broken build, not a reason to pass.
    not_ok "user-mode networking: no /bin/arcvm-net-user (the cross build did not make it)"
  fi
  send 'umount /mnt; reboot -f'
  vm_wait 60
  check "guest reboot ends arcvm with 2 (got $rc)" [ "$rc" = 2 ]
else
  not_ok "arcvm run boots to init"
  kill "$vmpid" 2>/dev/null; vm_wait 10
fi
grep -h 'Guest-boot-time' "$T/run.err" | sed 's/^/TIME  CLI boot: /'
check "Image.gz through arcvm run: unpacked into the kernel cache" grep -q 'unpacked the kernel into /root/.cache/arcvm/kernels/' "$T/run.err"

# --- boot 3: the API again: balloon, virtio-fs, virtio-pmem ----------------
S=$T/api3.sock
mkdir -p /srv/share
dd if=/dev/urandom of=/srv/share/host.bin bs=64k count=4 2>/dev/null
hostsum=$(sha256sum </srv/share/host.bin | cut -c1-64)
dd if=/dev/urandom of=$T/pmem.img bs=1M count=4 2>/dev/null
pmemsum=$(head -c 4096 $T/pmem.img | sha256sum | cut -c1-64)
# le A B: both numbers, A <= B.
le() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -le "$2" ]; }
# memtotal: the guest's MemTotal in kB, typed into its shell.
memtotal() { send "echo MT$1-\$(awk '/MemTotal/ {print \$2}' /proc/meminfo)"; expect "^MT$1-[0-9]+\$" 30 && { m=$(last "^MT$1-"); echo "${m#MT$1-}"; }; }
# balloon_is MIB: GET /balloon/statistics until actual_mib is MIB (60 s).
balloon_is() {
  i=0
  while [ $i -lt 60 ]; do
    api GET /balloon/statistics
    grep -q "\"actual_mib\":$1[,}]" "$T/resp" && return 0
    sleep 1; i=$((i + 1))
  done
  echo "      balloon never reached $1 MiB: $(cat "$T/resp")"; return 1
}
vm_start dev arcvm --api-sock "$S" --id arm64-dev
i=0; while [ ! -S "$S" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
status_is 204 PUT /boot-source \
  '{"kernel_image_path": "/arm64/Image", "initrd_path": "/arm64/initrd.cpio.gz", "boot_args": "console=ttyS0 panic=1 quiet"}' ||
  not_ok "PUT /boot-source (boot 3)"
status_is 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}' || not_ok "PUT /machine-config (boot 3)"
check "PUT /balloon (empty, statistics every second)" status_is 204 PUT /balloon \
  '{"amount_mib": 0, "deflate_on_oom": false, "stats_polling_interval_s": 1}'
check "PUT /shared-dirs/hostshare (virtio-fs)" status_is 204 PUT /shared-dirs/hostshare \
  '{"tag": "hostshare", "host_path": "/srv/share"}'
check "PUT /pmem/pm0 (virtio-pmem on a 4 MiB file)" status_is 204 PUT /pmem/pm0 \
  "{\"id\": \"pm0\", \"path_on_host\": \"$T/pmem.img\"}"
status_is 204 PUT /actions '{"action_type": "InstanceStart"}' || not_ok "InstanceStart (boot 3)"
if expect 'ARCVM-GUEST-READY cpus=2 ' 180; then
  ok "boot 3 (balloon, virtio-fs, virtio-pmem) reaches init"
  # The balloon: 64 MiB out of the guest, then back.
  t0=$(memtotal 0)
  check "PATCH /balloon to 64 MiB" status_is 204 PATCH /balloon '{"amount_mib": 64}'
  if balloon_is 64; then
    t1=$(memtotal 1)
    check "the balloon holds 64 MiB: the guest's MemTotal shrank ($t0 -> $t1 kB)" \
      le "$t1" "$((${t0:-0} - 60000))"
    check "GET /balloon/statistics reports the guest's memory" grep -q '"total_memory":[1-9]' "$T/resp"
  else
    not_ok "the balloon inflates to 64 MiB"
  fi
  check "PATCH /balloon back to 0" status_is 204 PATCH /balloon '{"amount_mib": 0}'
  if balloon_is 0; then
    t2=$(memtotal 2)
    check "deflated: MemTotal back ($t2 kB)" le "$t0" "$t2"
  else
    not_ok "the balloon deflates to 0"
  fi
  # virtio-fs: read the host's file, write one the host reads.
  send 'mkdir -p /share && mount -t virtiofs hostshare /share && echo FS-$(sha256sum </share/host.bin | cut -c1-64)'
  check "virtio-fs: the guest mounts the share and reads the host's file" expect "^FS-$hostsum\$" 60
  send 'echo from-the-guest >/share/guest.txt && sync && echo FSW-done'
  expect '^FSW-done' 30 >/dev/null
  check "virtio-fs: the host reads the file the guest wrote" grep -qx from-the-guest /srv/share/guest.txt
  send 'umount /share; echo FSU-$?'
  check "virtio-fs: the share unmounts" expect '^FSU-0$' 30
  # virtio-pmem: the guest reads the file's bytes through /dev/pmem0, and
  # what it writes and flushes (fsync of the block device: a FLUSH
  # request) is in the host file.
  send 'echo PM-$(head -c 4096 /dev/pmem0 | sha256sum | cut -c1-64)'
  check "virtio-pmem: /dev/pmem0 holds the host file's bytes" expect "^PM-$pmemsum\$" 60
  send 'echo pmem-from-the-guest | dd of=/dev/pmem0 bs=512 seek=8 conv=fsync 2>/dev/null; echo PMW-$?'
  expect '^PMW-[0-9]+$' 30 >/dev/null
  check "virtio-pmem: what the guest writes (dd conv=fsync, a FLUSH) is in the host file" \
    sh -c "dd if=$T/pmem.img bs=512 skip=8 count=1 2>/dev/null | grep -aq pmem-from-the-guest"
  send 'poweroff -f'
  vm_wait 60
  check "boot 3's power-off ends arcvm with 0 (got $rc)" [ "$rc" = 0 ]
else
  not_ok "boot 3 (balloon, virtio-fs, virtio-pmem) reaches init"
  kill "$vmpid" 2>/dev/null; vm_wait 10
fi

if [ "$fail" != 0 ]; then
  for f in api run dev; do
    echo "---- $f: arcvm's log (tail)"
    tail -n 30 "$T/$f.err" | sed 's/^/      ! /'
  done
fi

# ---- the C library: tests/e2e/lifecycle.c, two VMs in one process ----
if [ -x /bin/lifecycle ]; then
  t0=$(now_ms)
  timeout 600 lifecycle /arm64/Image /arm64/initrd.cpio.gz </dev/null >"$T/lifecycle.log" 2>&1
  lrc=$?
  sed -n 's/^ok   - /PASS  [lifecycle] /p; s/^FAIL - /FAIL  [lifecycle] /p' "$T/lifecycle.log"
  pass=$((pass + $(grep -c '^ok' "$T/lifecycle.log")))
  fail=$((fail + $(grep -c '^FAIL' "$T/lifecycle.log")))
  if [ "$lrc" != 0 ] && ! grep -q '^FAIL' "$T/lifecycle.log"; then
    not_ok "library: lifecycle ended with status $lrc"; tail -n 20 "$T/lifecycle.log" | sed 's/^/      ! /'
  fi
  echo "TIME  library lifecycle: $(( $(now_ms) - t0 )) ms"
else
  not_ok "library: no /bin/lifecycle (the cross build did not make it)"
fi

# ---- snapshots: their own job, its PASS/FAIL lines counted here ----
sh /arm64/snapshot.sh >"$T/snapshot.log" 2>&1
snaprc=$?
cat "$T/snapshot.log"
check "Image.gz: the snapshot part's boot took the copy boot 2 cached" \
  grep -q 'booting the unpacked kernel cached in /root/.cache/arcvm/kernels/' /tmp/snap/vm1.err
pass=$((pass + $(grep -c '^PASS' "$T/snapshot.log")))
fail=$((fail + $(grep -c '^FAIL' "$T/snapshot.log")))
if [ "$snaprc" != 0 ] && ! grep -q '^FAIL' "$T/snapshot.log"; then
  not_ok "the snapshot job ended with status $snaprc"
fi
if [ -n "${ARCVM_SECCOMP_AUDIT:-}" ]; then
  echo "---- system calls the filters would refuse:"
  sort -u "$ARCVM_SECCOMP_AUDIT" 2>/dev/null | sed 's/^/INFO  seccomp: /'
fi
echo "arm64 e2e: $pass passed, $fail failed"
[ "$fail" = 0 ]
