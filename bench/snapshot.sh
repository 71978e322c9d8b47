#!/usr/bin/env bash
# snapshot.sh - snapshot benchmark: arcvm's snapshot create and restore
# against cold boots and against QEMU microvm saving to and restoring from
# a migration file, with the same kernel, initramfs and command line, in one
# run on one machine. Prints one markdown table per guest RAM size.
#
# Usage: bench/snapshot.sh [-n ROUNDS] [-m "MEMORY_MIB..."]   (defaults: 3, "256 1024")
#
# Per round and RAM size, alternately arcvm and QEMU, 1 vCPU each:
#  1. arcvm boots with --snapshot-to (kernel cache warm, as boot.sh's default
#     row): start -> the guest's init marker on the console is the arcvm cold
#     boot. The guest then writes random data to a file in its RAM (32 MiB,
#     64 MiB from 1 GiB up) and says so; SIGUSR2 saves the VM and arcvm exits:
#     SIGUSR2 -> exit is the snapshot time, next to the figure arcvm logs.
#     The state file's size and the memory file's apparent and allocated
#     (du) sizes are recorded.
#  2. `arcvm restore` of that snapshot: from the spawn to the guest answering
#     `echo RESTORED-$((6*7))` (typed at once; the console input waits in
#     its FIFO), and the restore time arcvm logs (VMM side).
#  3. QEMU microvm boots the bzImage (boot.sh's command line plus a monitor
#     socket): start -> marker is QEMU's cold boot; the guest dirties the
#     same RAM; over the monitor `stop`, `migrate "exec:cat > FILE"` until
#     `info migrate` says completed (wall time, and QEMU's own total time),
#     `quit`. The file's size is recorded.
#  4. QEMU restore: from the spawn of the same command line with
#     `-incoming "exec:cat FILE"` to the guest answering the same command.
#     A source stopped before the migration stays paused on the destination,
#     so a helper, started before the clock, polls `info status` on the
#     monitor every 20 ms and sends `cont` (and types the command again, in
#     case the serial port dropped what came during the incoming migration)
#     as soon as the migration is in.
#  5. QEMU microvm boots the ELF vmlinux through PVH (-kernel VMLINUX): the
#     cold boot that does the same work as arcvm's boot from its cache.
# Every wait is bounded: a VM that does not get there in time is killed and
# its values are NA (left out of the medians; the rounds column counts what
# is there). No new round starts after ARCVM_BENCH_BUDGET seconds (default
# 1320), and from ARCVM_BENCH_DEADLINE seconds (default 1650) every wait
# gives up at once, so the tables are printed before the outer guest's time
# limit (1800 s) ends it; a run with fewer rounds than asked says PARTIAL.
# Where `arcvm check` says this host's KVM cannot run a stock guest, this
# runs inside the nested QEMU/TCG guest (tests/harness/nested.sh): absolute
# numbers are then slow and noisy; the ratios within one run are what to read.
set -euo pipefail
# One { } block: bash parses it whole before running it, so editing this file
# during a run cannot derail that run.
{
cd "$(dirname "$0")/.."
n=3 mems="256 1024"
while getopts 'n:m:' o; do
  case $o in n) n=$OPTARG ;; m) mems=$OPTARG ;; *) exit 2 ;; esac
done

. bench/lib.sh
if [ -z "${ARCVM_BENCH_INNER:-}" ]; then
  # The ELF vmlinux for QEMU's PVH row (ARCVM_* variables reach the nested guest).
  eval "$(tests/guest/images.sh)"
  export ARCVM_BENCH_VMLINUX=${ARCVM_BENCH_VMLINUX:-$VMLINUX}
fi
bench_enter snapshot.sh 1800 -n "$n" -m "$mems"

set +e  # from here on a failure is an NA in the table, not the end of the run
kernel=$ARCVM_BENCH_KERNEL initrd=$ARCVM_BENCH_INITRD vmlinux=${ARCVM_BENCH_VMLINUX:-}
budget=${ARCVM_BENCH_BUDGET:-1320} deadline=${ARCVM_BENCH_DEADLINE:-1650}
tmp=$(mktemp -d /tmp/arcvm-snapbench.XXXXXX)
declare -A PID IN RD
cleanup() {
  local k
  for k in "${!PID[@]}"; do kill -KILL "${PID[$k]}" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_CACHE_HOME=$tmp/cache  # arcvm's kernel cache: private to this run
extra="quiet"                     # init's default mode: a shell on the console
cmdline="console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 $extra"

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3  # no version-manager shim
# alive PID: running (not exited, not a zombie waiting to be reaped)
alive() { kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
log() { echo "snapshot.sh: $*" >&2; }
# cap SECS: SECS, or less so as to end by the deadline (at least 1)
cap() { local l=$((deadline - SECONDS)); [ "$l" -ge 1 ] || l=1; echo $(( $1 < l ? $1 : l )); }

# Console lines with the time each arrived: "<us> <line>".
ts_reader() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s %s\n' "${EPOCHREALTIME/./}" "${line%$'\r'}"
  done
}

# vm_spawn NAME CMD...: start CMD with its console on FIFOs; VM_T0 is the
# time just before the spawn.
vm_spawn() {
  local name=$1 fd; shift
  local d=$tmp/vm-$name
  rm -rf "$d"; mkdir -p "$d"; mkfifo "$d/in" "$d/out"
  exec {fd}<>"$d/in"  # held open read-write: the VMM never sees end-of-input
  IN[$name]=$fd
  ts_reader <"$d/out" >"$d/log" &
  RD[$name]=$!
  VM_T0=$(now_us)
  "$@" <"$d/in" >"$d/out" 2>"$d/err" &
  PID[$name]=$!
}

vm_send() { printf '%s\n' "$2" >&"${IN[$1]}"; }

# vm_wait_re NAME ERE SECS: print the arrival time of the first console line
# matching ERE; fail if none came within SECS or the VMM exited without one.
vm_wait_re() {
  local d=$tmp/vm-$1 re=$2 end=$((SECONDS + $(cap "$3"))) t
  while :; do
    t=$(awk -v re="$re" '{ts = $1; sub(/^[0-9]+ /, ""); if ($0 ~ re) {print ts; exit}}' "$d/log" 2>/dev/null)
    [ -n "$t" ] && { echo "$t"; return 0; }
    if ! alive "${PID[$1]}" || [ $SECONDS -ge "$end" ]; then
      sleep 0.3  # the reader's last lines
      t=$(awk -v re="$re" '{ts = $1; sub(/^[0-9]+ /, ""); if ($0 ~ re) {print ts; exit}}' "$d/log" 2>/dev/null)
      [ -n "$t" ] && { echo "$t"; return 0; }
      log "$1: no /$re/ within $3 s; console tail:"
      tail -n 5 "$d/log" | cut -d' ' -f2- | sed 's/^/  > /' >&2
      tail -n 3 "$d/err" | sed 's/^/  ! /' >&2
      return 1
    fi
    sleep 0.1
  done
}

# vm_exit NAME SECS: wait for the VMM to exit, killing it after SECS; sets
# VM_EXIT (time of the exit, us) and VM_RC; fails if it had to be killed.
vm_exit() {
  local name=$1 secs; secs=$(cap "$2")
  local pid=${PID[$1]:-} fd=${IN[$1]:-}
  [ -n "$pid" ] || return 1
  local flag=$tmp/vm-$name/killed
  rm -f "$flag"
  ( trap 'kill $s 2>/dev/null; exit 0' TERM
    sleep "$secs" & s=$!; wait $s
    kill -KILL "$pid" 2>/dev/null && : >"$flag" ) >/dev/null 2>&1 &
  local wd=$!
  wait "$pid"; VM_RC=$?
  VM_EXIT=$(now_us)
  kill "$wd" 2>/dev/null; wait "$wd" 2>/dev/null
  wait "${RD[$name]}" 2>/dev/null
  [ -z "$fd" ] || exec {fd}>&-
  unset "PID[$name]" "RD[$name]" "IN[$name]"
  if [ -e "$flag" ]; then log "$name: still running after $secs s; killed it"; return 1; fi
  return 0
}

# vm_stop NAME: power the guest off (or kill the VMM) and reap it.
vm_stop() {
  [ -n "${PID[$1]:-}" ] || return 0
  vm_send "$1" 'poweroff -f' 2>/dev/null
  vm_exit "$1" 30
}

vm_kill() {
  [ -n "${PID[$1]:-}" ] || return 0
  kill -KILL "${PID[$1]}" 2>/dev/null
  vm_exit "$1" 10
}

# The monitor helper: "save SOCK FILE" stops the VM, migrates it to FILE and
# quits QEMU, printing "<wall ms> <QEMU's total time ms>"; "cont SOCK FIFO"
# waits for an incoming migration to finish, then sends cont and types the
# console command into FIFO, printing the time of the cont (us).
cat >"$tmp/mon.py" <<'EOF'
import os, re, socket, sys, time

def connect(path, tmo):
    end = time.time() + tmo
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.settimeout(tmo)
            return s
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.005)

class Mon:
    def __init__(self, path, tmo):
        self.s = connect(path, tmo)
        self.read()
    def read(self):
        buf = b''
        while not buf.endswith(b'(qemu) '):
            d = self.s.recv(65536)
            if not d:
                raise EOFError('monitor closed')
            buf += d
        return buf.decode(errors='replace')
    def cmd(self, c):
        self.s.sendall(c.encode() + b'\n')
        return self.read()

mode, sock = sys.argv[1], sys.argv[2]
if mode == 'save':
    out, tmo = sys.argv[3], float(sys.argv[4])
    m = Mon(sock, 30)
    m.s.settimeout(tmo)
    t0 = time.time()
    m.cmd('stop')
    m.cmd('migrate "exec:cat > %s"' % out)  # HMP: returns when migration ends
    end = t0 + tmo
    while True:
        r = m.cmd('info migrate')
        if re.search(r'Migration status: (completed|failed|cancelled)', r) or time.time() > end:
            break
        time.sleep(0.02)
    t1 = time.time()
    ok = 'Migration status: completed' in r
    tt = re.search(r'total time: (\d+) ms', r)
    print('%d %s' % ((t1 - t0) * 1000, tt.group(1) if tt else 'NA') if ok else 'NA NA', flush=True)
    if not ok:
        sys.stderr.write(r + '\n')
    try:
        m.s.sendall(b'quit\n')
    except OSError:
        pass
else:
    fifo, tmo = sys.argv[3], float(sys.argv[4])
    open(sys.argv[5], 'w').close()  # ready
    m = Mon(sock, tmo)
    end = time.time() + tmo
    while time.time() < end:
        r = m.cmd('info status')
        if 'inmigrate' in r or 'VM status' not in r:
            time.sleep(0.02)
            continue
        if 'running' not in r:
            m.cmd('cont')
        t = time.time()
        with open(fifo, 'w') as f:
            f.write('echo RESTORED-$((6*7))\n')
        print('%d' % (t * 1e6), flush=True)
        break
    else:
        print('NA', flush=True)
EOF

qemu_cmd() {  # qemu_cmd MIB KERNEL: boot.sh's QEMU microvm command line
  Q=(qemu-system-x86_64 -M microvm,accel=kvm -cpu host -smp 1 -m "${1}M"
     -object "memory-backend-memfd,id=ram,size=${1}M" -M memory-backend=ram
     -nodefaults -no-user-config -nographic -no-reboot
     -chardev stdio,id=con -serial chardev:con
     -kernel "$2" -initrd "$initrd" -append "$cmdline")
}

rec() { echo "$3" >>"$tmp/m$1/$2"; }   # rec MIB KEY VALUE
ms() { if [ "$1" = NA ] || [ "$2" = NA ]; then echo NA; else echo $(( ($2 - $1) / 1000 )); fi; }

# one_round MIB: one round of every measurement at MIB of guest RAM.
one_round() {
  local m=$1 d=$tmp/files t t0 v cnt
  mkdir -p "$d" "$tmp/m$m"
  cnt=$(( m >= 1024 ? 64 : 32 )); [ $cnt -le $((m / 4)) ] || cnt=$((m / 4))
  local dirty="dd if=/dev/urandom of=/r.bin bs=1M count=$cnt 2>/dev/null; echo DIRTY-\$((40+2))"
  local ask='echo RESTORED-$((6*7))'
  local aboot=NA asnapw=NA asnapl=NA astate=NA amema=NA amemk=NA arest=NA arestv=NA
  local qboot=NA qmigw=NA qmigt=NA qfile=NA qrest=NA qpvh=NA

  # 1. arcvm: cold boot, dirty, save
  rm -f "$d"/*
  vm_spawn a build/arcvm run --kernel "$kernel" --initrd "$initrd" --cpus 1 --memory "${m}M" \
    --cmdline "$extra" --snapshot-to "$d/s.state,$d/s.mem" --log-level info
  t0=$VM_T0
  if t=$(vm_wait_re a 'ARCVM-GUEST-READY' 150); then
    aboot=$(ms "$t0" "$t")
    vm_send a "$dirty"
    if vm_wait_re a 'DIRTY-42' 180 >/dev/null; then
      sleep 0.5
      t0=$(now_us)
      kill -USR2 "${PID[a]}"
      if vm_exit a 180 && [ "$VM_RC" -eq 0 ] && [ -s "$d/s.state" ]; then
        asnapw=$(ms "$t0" "$VM_EXIT")
        asnapl=$(grep -ao 'snapshot (Full): .* in [0-9]* ms' "$tmp/vm-a/err" | sed 's/.* in \([0-9]*\) ms/\1/')
        astate=$(stat -c %s "$d/s.state")
        amema=$(( $(stat -c %s "$d/s.mem") >> 20 ))
        amemk=$(du -k "$d/s.mem" | awk '{printf "%.1f", $1 / 1024}')
      else
        log "arcvm snapshot failed (rc ${VM_RC:-?}):"; tail -n 3 "$tmp/vm-a/err" >&2
      fi
    fi
  fi
  vm_kill a

  # 2. arcvm restore
  if [ "$asnapw" != NA ]; then
    vm_spawn r build/arcvm restore --state "$d/s.state" --mem "$d/s.mem" --log-level info
    t0=$VM_T0
    vm_send r "$ask"
    if t=$(vm_wait_re r 'RESTORED-42' 120); then
      arest=$(ms "$t0" "$t")
      arestv=$(grep -ao 'restored [0-9]* vCPUs and [0-9]* MiB in [0-9]* us' "$tmp/vm-r/err" |
               awk '{printf "%.1f", $(NF - 1) / 1000}')
    fi
    vm_stop r || vm_kill r
  fi
  rm -f "$d"/*

  # 3. QEMU: cold boot (bzImage), dirty, migrate to a file
  qemu_cmd "$m" "$kernel"
  vm_spawn q "${Q[@]}" -monitor "unix:$tmp/vm-q.sock,server=on,wait=off"
  t0=$VM_T0
  if t=$(vm_wait_re q 'ARCVM-GUEST-READY' 150); then
    qboot=$(ms "$t0" "$t")
    vm_send q "$dirty"
    if vm_wait_re q 'DIRTY-42' 180 >/dev/null; then
      sleep 0.5
      v=$(timeout "$(cap 200)" "$py" "$tmp/mon.py" save "$tmp/vm-q.sock" "$d/q.mig" "$(cap 180)" 2>>"$tmp/vm-q/err")
      read -r qmigw qmigt <<<"${v:-NA NA}"
      if [ "$qmigw" != NA ] && [ -s "$d/q.mig" ]; then
        qfile=$(stat -c %s "$d/q.mig" | awk '{printf "%.1f", $1 / 1048576}')
      else
        qmigw=NA qmigt=NA; log "QEMU migration failed:"; tail -n 5 "$tmp/vm-q/err" >&2
      fi
      vm_exit q 60
    fi
  fi
  vm_kill q
  rm -f "$tmp/vm-q.sock"

  # 4. QEMU restore from the migration file
  if [ "$qfile" != NA ]; then
    rm -f "$tmp/vm-i.sock" "$tmp/ready"
    mkdir -p "$tmp/vm-i"
    # The helper waits for the monitor socket; started (and ready) before the clock.
    "$py" "$tmp/mon.py" cont "$tmp/vm-i.sock" "$tmp/vm-i/in" "$(cap 180)" "$tmp/ready" \
      >"$tmp/cont" 2>"$tmp/cont.err" &
    local hp=$!
    for _ in $(seq 300); do [ -e "$tmp/ready" ] && break; sleep 0.05; done
    vm_spawn i "${Q[@]}" -monitor "unix:$tmp/vm-i.sock,server=on,wait=off" -incoming "exec:cat $d/q.mig"
    t0=$VM_T0
    vm_send i "$ask"
    if t=$(vm_wait_re i 'RESTORED-42' 120); then
      qrest=$(ms "$t0" "$t")
      v=$(head -1 "$tmp/cont")
      log "QEMU restore: incoming migration in and cont sent after $(ms "$t0" "${v:-NA}") ms"
    else
      cat "$tmp/cont.err" >&2
    fi
    vm_stop i || vm_kill i
    kill "$hp" 2>/dev/null; wait "$hp" 2>/dev/null
  fi
  rm -f "$d"/* "$tmp/vm-i.sock"

  # 5. QEMU cold boot of the ELF vmlinux through PVH
  if [ -n "$vmlinux" ]; then
    qemu_cmd "$m" "$vmlinux"
    vm_spawn p "${Q[@]}"
    t0=$VM_T0
    if t=$(vm_wait_re p 'ARCVM-GUEST-READY' 150); then qpvh=$(ms "$t0" "$t"); fi
    vm_stop p || vm_kill p
  fi

  for k in aboot asnapw asnapl astate amema amemk arest arestv qboot qmigw qmigt qfile qrest qpvh; do
    rec "$m" "$k" "${!k:-NA}"
  done
  log "$m MiB: arcvm boot $aboot ms, snapshot $asnapw ms (log $asnapl ms; state $astate B, mem $amema MiB, $amemk MiB allocated), restore $arest ms (VMM $arestv ms) | QEMU boot $qboot ms, PVH $qpvh ms, migrate $qmigw ms (QEMU $qmigt ms; $qfile MiB), restore $qrest ms"
}

log "$n rounds at ${mems// / and } MiB, 1 vCPU, alternating arcvm and QEMU microvm"
vm_spawn w build/arcvm run --kernel "$kernel" --initrd "$initrd" --cmdline "quiet arcvm.mode=bench"
t=$(vm_wait_re w 'ARCVM-GUEST-READY' 240) && log "warm-up boot (fills arcvm's kernel cache): $(ms "$VM_T0" "$t") ms"
vm_exit w 60 || true
done_rounds=0 partial=''
for i in $(seq "$n"); do
  for m in $mems; do
    if [ $SECONDS -ge "$budget" ]; then
      partial="PARTIAL: stopped at round $i/$n, $m MiB, after ${SECONDS} s (time budget ${budget} s)"
      log "$partial"; break 2
    fi
    log "round $i/$n, $m MiB"
    one_round "$m"
  done
  done_rounds=$i
done

qemu_ver=$(qemu-system-x86_64 --version | head -1 | sed 's/^QEMU emulator version //')
av=$(build/arcvm --version | cut -d' ' -f2)
row() {  # row MIB LABEL KEY
  local f=$tmp/m$1/$3
  [ -f "$f" ] || { echo "| $2 | NA | NA | 0 |"; return; }
  local c; c=$(awk '$1 != "NA"' "$f" | wc -l)
  echo "| $2 | $(bench_median "$f" 1) | $( [ "$c" -gt 0 ] && bench_minmax "$f" 1 || echo NA) | $c |"
}
med() { [ -f "$tmp/m$1/$2" ] && bench_median "$tmp/m$1/$2" 1 || echo NA; }

echo
echo "Snapshots: $(uname -r) kernel, busybox initramfs, 1 vCPU; $done_rounds of $n rounds; arcvm $av, QEMU $qemu_ver; $(date -u +%Y-%m-%d)"
echo "Where: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs${ARCVM_IN_NESTED_GUEST:+ (nested QEMU/TCG guest)}"
[ -z "$partial" ] || { echo; echo "$partial"; }
for m in $mems; do
  echo
  echo "#### $m MiB guest RAM"
  echo
  echo "| measurement | median | min/max | rounds |"
  echo "|---|---|---|---|"
  row "$m" "arcvm cold boot, start -> init (kernel cache warm), ms" aboot
  row "$m" "QEMU microvm cold boot, bzImage, start -> init, ms" qboot
  row "$m" "QEMU microvm cold boot, PVH vmlinux, start -> init, ms" qpvh
  row "$m" "arcvm restore, start -> guest answers, ms" arest
  row "$m" "arcvm restore, VMM side (arcvm's log), ms" arestv
  row "$m" "QEMU restore from migration file, start -> guest answers, ms" qrest
  row "$m" "arcvm snapshot create, SIGUSR2 -> exit, ms" asnapw
  row "$m" "arcvm snapshot create (arcvm's log), ms" asnapl
  row "$m" "QEMU stop + migrate to file, until completed, ms" qmigw
  row "$m" "QEMU migrate to file (QEMU's total time), ms" qmigt
  row "$m" "arcvm state file, bytes" astate
  row "$m" "arcvm memory file, apparent, MiB" amema
  row "$m" "arcvm memory file, allocated (du), MiB" amemk
  row "$m" "QEMU migration file, MiB" qfile
  ar=$(med "$m" arest) ab=$(med "$m" aboot) qr=$(med "$m" qrest) qb=$(med "$m" qboot)
  echo
  awk -v ar="$ar" -v ab="$ab" -v qr="$qr" -v qb="$qb" 'BEGIN {
    f = (ar != "NA" && ab != "NA" && ab > 0) ? sprintf("%.2fx", ar / ab) : "NA"
    g = (ar != "NA" && qr != "NA" && qr > 0) ? sprintf("%.2fx", ar / qr) : "NA"
    h = (qr != "NA" && qb != "NA" && qb > 0) ? sprintf("%.2fx", qr / qb) : "NA"
    printf "Medians: arcvm restore / arcvm cold boot %s; arcvm restore / QEMU restore %s (QEMU restore / QEMU cold boot %s).\n", f, g, h }'
done
exit 0
}
