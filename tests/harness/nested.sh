#!/usr/bin/env bash
# nested.sh — run a command somewhere /dev/kvm works.
#
# Usage:
#   nested.sh [--cpus N] [--mem SIZE] [--timeout SEC] -- CMD [ARGS...]
#   nested.sh --decide
#
# When `arcvm check` (build/arcvm, or $ARCVM_BIN) says this host's KVM can
# run a stock Linux guest (and ARCVM_NESTED != 1) it just execs CMD. A
# /dev/kvm that merely opens is not enough: a paravirtual KVM such as PVM
# opens and answers, yet stock kernels die on it. Otherwise it boots an
# outer QEMU/TCG guest (Debian kernel, busybox initramfs, kvm_amd on QEMU's
# emulated SVM) that sees the host's root over 9p, chroots into it, cds to
# the caller's directory and runs CMD with the same argv. Either way it says
# on stderr which it chose and why.
#
#   --decide       only say which it would choose: exit 0 for directly, 1 for
#                  nested (125 when arcvm is not built)
#
#   --cpus N       outer vCPUs (default: host's nproc)
#   --mem SIZE     outer RAM, QEMU syntax (default: 4G)
#   --timeout SEC  kill the outer guest after SEC seconds (default: 1800)
#   --stall SEC    kill it when its heartbeat (written every 5 s by its init)
#                  stops for SEC seconds: the outer guest froze (default: 120)
#
# Inside: /dev/kvm (mode 666), /dev/net/tun, /dev/vhost-*, loopback up; /tmp and /run are
# fresh, private tmpfs (9p cannot hold Unix sockets, and the host's /tmp
# churns; put host-built files CMD needs elsewhere, e.g. build/ or /var/tmp);
# CMD runs as root; `modprobe X` works (the host's
# /lib/modules matches the outer kernel). Environment carried over: PATH,
# HOME, TERM, umask, every ARCVM_* variable (except ARCVM_NESTED) and the
# names listed in $NESTED_ENV (space-separated); ARCVM_IN_NESTED_GUEST=1 is
# set inside. CMD's stdout streams to our stdout and its stderr to our stderr,
# live and byte-exact; CMD's stdin is /dev/null and its stdout is not a tty,
# as with a pipe. Exit status: CMD's (128+N if killed by signal N); 125 if
# the outer guest failed (QEMU error, no /dev/kvm, panic, timeout, ^A x).
# If stdin and stdout are both terminals the session is interactive instead:
# CMD gets the outer virtio console as its controlling tty (stdin, stdout and,
# unless redirected, stderr; window size copied), so raw mode works; ^C goes
# to CMD, ^A x kills QEMU.
#
# Environment knobs:
#   ARCVM_NESTED=1           use the outer guest even if /dev/kvm works
#   ARCVM_CACHE=DIR          cache root (default: <repo>/build/cache); we use DIR/nested
#   ARCVM_NESTED_9P_CACHE=M  9p cache mode for the host root (default: loose)
#   ARCVM_NESTED_VERBOSE=1   show the outer kernel's boot log and init trace
#   ARCVM_NESTED_APPEND=...  extra outer kernel command-line arguments
#   ARCVM_NESTED_QEMU=PATH   the QEMU for the outer guest (default:
#                            qemu-system-x86_64; install-deps.sh puts 10.0+)
# shellcheck disable=SC2054 # commas inside QEMU option values are intended
set -euo pipefail
# The whole body is one { } block: bash parses it completely before running
# it, so editing this file while a (long) run is in progress cannot derail
# that run.
{

prog=nested.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
guestdir="$repo/tests/guest"

die() { echo "$prog: $*" >&2; exit 125; }
usage() {
  sed -n '/^# Usage:/,/^# Inside:/{/^# Inside:/d;s/^# \{0,1\}//p}' "$0" >&2
  exit 125
}

cpus=$(nproc)
mem=4G
timeout=1800
stall=120
decide_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --decide) decide_only=1; shift ;;
    --cpus) [ $# -ge 2 ] || usage; cpus=$2; shift 2 ;;
    --cpus=*) cpus=${1#*=}; shift ;;
    --mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
    --mem=*) mem=${1#*=}; shift ;;
    --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --stall) [ $# -ge 2 ] || usage; stall=$2; shift 2 ;;
    --stall=*) stall=${1#*=}; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "$prog: unknown option '$1' (put the command after --)" >&2; usage ;;
  esac
done
[ $# -ge 1 ] || [ $decide_only = 1 ] || { echo "$prog: no command given" >&2; usage; }
[[ $cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus wants a positive integer, got '$cpus'"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout wants seconds, got '$timeout'"
[[ $stall =~ ^[1-9][0-9]*$ ]] || die "--stall wants seconds, got '$stall'"
[[ $mem =~ ^[1-9][0-9]*[MGT]?$ ]] || die "--mem wants a size like 4G or 2048M, got '$mem'"

# ---- fast path: arcvm's own check says this host's KVM runs stock guests ----
arcvm_bin=${ARCVM_BIN:-$repo/build/arcvm}
if [ "${ARCVM_NESTED:-}" = 1 ]; then
  why="ARCVM_NESTED=1"
else
  [ -x "$arcvm_bin" ] ||
    die "$arcvm_bin is missing: build arcvm first (make); its 'arcvm check' decides whether this host's KVM can run the command"
  if check_out=$("$arcvm_bin" check 2>&1); then
    echo "$prog: arcvm check passes: running directly on this host's KVM" >&2
    [ $decide_only = 1 ] && exit 0
    exec "$@"
  fi
  first_fail=$(grep -m1 '^FAIL' <<<"$check_out" | sed 's/^FAIL  *//; s/  */ /')
  why="arcvm check fails here (${first_fail:-see 'arcvm check'})"
fi
if [ $decide_only = 1 ]; then
  echo "$prog: $why; would run in a nested QEMU/TCG guest" >&2
  exit 1
fi

# ---- outer guest ---------------------------------------------------------------
qemu=${ARCVM_NESTED_QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null || die "$qemu not found; run scripts/install-deps.sh"
kernel=$("$guestdir/kernel.sh") || die "no guest kernel (see above); run scripts/install-deps.sh"
kver=$("$guestdir/kernel.sh" --version)

cache=${ARCVM_CACHE:-$repo/build/cache}
mkdir -p -- "$cache" || die "cannot create cache dir $cache; set ARCVM_CACHE to a writable dir"
cache=$(cd "$cache" && pwd)/nested   # our own corner: others share build/cache
mkdir -p -- "$cache" || die "cannot create $cache; set ARCVM_CACHE to a writable dir"

# Modules for the outer guest. Required: KVM on AMD SVM (QEMU's TCG "max" CPU
# offers SVM, not VMX), the virtio-pci + 9p stack and virtio consoles/ports.
# Optional, when the kernel has them: networking and vsock pieces for later
# tests.
required_modules=(irqbypass ccp kvm kvm-amd
  virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
  9pnet 9pnet_virtio netfs fscache 9p virtio_console)
# Anything else can be loaded inside with the host's modprobe: the chroot sees
# the same /lib/modules/<release>.
optional_modules=(tun tap vhost vhost_net vsock vhost_vsock
  vmw_vsock_virtio_transport_common vsock_loopback)

# The image depends on these scripts, the kernel and busybox; key the cache on them.
bbver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo none)
key=$( { cat "$guestdir/kernel.sh" "$guestdir/mkinitramfs.sh" "$here/nested-init.sh" "$0"
         echo "$kver $bbver"; } | sha256sum | cut -c1-16)
initrd="$cache/outer-$kver-$key.cpio.gz"
if [ ! -f "$initrd" ]; then
  echo "$prog: building the outer initramfs (cached as $initrd)" >&2
  margs=()
  for m in "${required_modules[@]}"; do margs+=(-m "$m"); done
  for m in "${optional_modules[@]}"; do
    if modinfo -k "$kver" -F filename "$m" >/dev/null 2>&1; then margs+=(-m "$m"); fi
  done
  "$guestdir/mkinitramfs.sh" -o "$initrd" -i "$here/nested-init.sh" "${margs[@]}" ||
    die "building the outer initramfs failed (see above)"
  # Images of older script versions are dead weight now.
  find "$cache" -maxdepth 1 -name 'outer-*.cpio.gz' ! -name "${initrd##*/}" -delete
fi

# Boot the uncompressed ELF vmlinux through its PVH entry when the kernel has
# one: decompressing the bzImage under TCG costs about 4 s per boot.
if grep -qx 'CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null; then
  elf="$cache/vmlinux-$kver-$(stat -c %s-%Y "$kernel")"
  if [ ! -f "$elf" ]; then
    find "$cache" -maxdepth 1 -name 'vmlinux-*' -delete
    "$guestdir/kernel.sh" --elf "$elf" >/dev/null ||
      echo "$prog: cannot unpack $kernel; booting the (slower) bzImage" >&2
  fi
  [ ! -f "$elf" ] || kernel=$elf
fi

# ---- per-run job directory (shared with the guest as 9p tag "arcvmjob") ---------
# Job directories of runs that were SIGKILLed are removed after a day.
find "$cache" -maxdepth 1 -name 'job.*' -type d -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
jobdir=$(mktemp -d "$cache/job.XXXXXX")
qpid='' tpid='' spid='' saved_tty=''
tail_pids=()
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
  # Only processes this script started, by pid.
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill -TERM "$qpid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$qpid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  [ -z "$tpid" ] || kill "$tpid" 2>/dev/null || true
  [ -z "$spid" ] || kill "$spid" 2>/dev/null || true
  for p in "${tail_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # QEMU restores the terminal itself unless it was SIGKILLed.
  [ -z "$saved_tty" ] || stty "$saved_tty" 2>/dev/null || true
  rm -rf -- "$jobdir"
}
trap cleanup EXIT
trap 'echo "$prog: interrupted; killed the outer guest" >&2; exit 130' INT
trap 'echo "$prog: terminated; killed the outer guest" >&2; exit 143' TERM HUP

interactive=0
[ -t 0 ] && [ -t 1 ] && interactive=1

# The job script runs in the chroot under the host's bash, so %q quoting is safe.
{
  echo "# generated by nested.sh"
  for name in $(compgen -e); do
    case " PATH HOME TERM ${NESTED_ENV:-} " in
      *" $name "*) ;;
      *) case $name in ARCVM_NESTED) continue ;; ARCVM_*) ;; *) continue ;; esac ;;
    esac
    printf 'export %s=%q\n' "$name" "${!name}"
  done
  echo "export ARCVM_IN_NESTED_GUEST=1"
  # Loopback up, as on any host (servers on 127.0.0.1, slirp's host loopback).
  echo 'ip link set lo up 2>/dev/null || ifconfig lo up 2>/dev/null || :'
  printf 'umask %s\n' "$(umask)"
  printf 'cd -- %q || { echo "nested.sh: cannot cd to %q in the outer guest" >&2; exit 125; }\n' "$PWD" "$PWD"
  echo 'unset OLDPWD'
  printf 'exec'
  printf ' %q' "$@"
  printf '\n'
} >"$jobdir/job.sh"

# CMD's stdout and stderr travel over virtio-serial ports (a 16550 under TCG
# moves only ~100 KB/s) into files in the job directory, which `tail -f`
# streams to our stdout and stderr as they grow. Why files: a file write never
# blocks QEMU, so a slow reader cannot stall or drop anything (QEMU drops
# virtio *console* output when a write would block), and QEMU never gets our
# stdout, so it cannot leave it O_NONBLOCK for the processes that share it.
# Interactive sessions need the terminal itself: the virtio console hvc0 is
# QEMU's stdio there, and a terminal stderr is merged into it (same screen).
errdev='port'
if [ $interactive = 1 ] && [ -t 2 ]; then errdev='tty'; fi
: >"$jobdir/out"
: >"$jobdir/err"
rows='' cols=''
if [ $interactive = 1 ]; then
  read -r rows cols < <(stty size 2>/dev/null || echo "")
  saved_tty=$(stty -g)
fi
{
  echo "NI_TTY=$interactive"
  echo "NI_ROWS=$rows"
  echo "NI_COLS=$cols"
  echo "NI_ERR=$errdev"
  echo "NI_CACHE=${ARCVM_NESTED_9P_CACHE:-loose}"
  echo "NI_VERBOSE=${ARCVM_NESTED_VERBOSE:-0}"
  # The outer guest's /tmp is private; a checkout or working directory that
  # lives under the host's /tmp (a CI clone, say) is bound back into it.
  keep=''
  for d in "$repo" "$PWD"; do
    case $d in /tmp/*) keep="$keep $d" ;; esac
  done
  echo "NI_KEEP_TMP='${keep# }'"
} >"$jobdir/guest.conf"

# Kernel command line: the kernel console (ttyS0) goes to our stderr; quiet +
# loglevel=2 keep it silent except for emergencies and alerts (a panic or an
# oops of the outer kernel shows up on stderr; the init silences the console
# before powering off, since even "reboot: Power down" is KERN_EMERG);
# panic=-1 reboots at once on a panic, which -no-reboot turns into QEMU
# exiting; the i8042 flags skip probing the emulated keyboard controller (slow
# under TCG); mitigations=off and cryptomgr.notests (no crypto self-tests)
# save ~0.3 s of boot in a throwaway test VM.
append="console=ttyS0 panic=-1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"
append+=" mitigations=off cryptomgr.notests"
# kvm_amd without its optional SVM extensions (virtual VMLOAD/VMSAVE,
# virtual GIF, AVIC): with them, the outer kernel panicked ("stack guard
# page was hit" in exc_page_fault, reading current through a GS base of 0,
# on a vCPU thread in KVM_RUN) or froze in 6 of the last 7 snapshot-section
# runs of an afternoon, once restored guests ran; without them 2 of 2
# passed. Likely TCG's emulation of those extensions; they only speed up
# nested guests of the inner guest, which the tests have none of.
append+=" kvm_amd.vls=0 kvm_amd.vgif=0 kvm_amd.avic=0"
if [ "${ARCVM_NESTED_VERBOSE:-0}" = 1 ]; then
  append+=" loglevel=7"
else
  append+=" quiet loglevel=2"
fi
append+=${ARCVM_NESTED_APPEND:+ $ARCVM_NESTED_APPEND}

qargs=(
  -accel tcg,thread=multi   # multi-threaded TCG: one host thread per vCPU
  -cpu max                  # every feature TCG emulates, SVM included (kvm_amd)
  -smp "$cpus" -m "$mem"
  -nographic -nodefaults    # no VGA, NIC, floppy: less to probe, nothing on the console
  -no-user-config           # ignore host-wide QEMU config files
  -no-reboot                # a guest reboot/panic ends QEMU instead of looping
  -kernel "$kernel" -initrd "$initrd" -append "$append"
  # multidevs=remap: the host root spans several filesystems; keeps inode
  # numbers unique inside. security_model=none: plain host permissions.
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap
  -virtfs "local,path=$jobdir,mount_tag=arcvmjob,security_model=none"
)
# qboot instead of SeaBIOS: boots faster and prints nothing on the serial port
# (SeaBIOS with no VGA writes its banner and terminal resets to ttyS0).
qboot=$(dirname "$(command -v "$qemu")")/../share/qemu/qboot.rom
[ -f "$qboot" ] && qargs+=(-bios "$qboot")

# ioeventfd=off: handle virtio-serial kicks synchronously in the vCPU thread,
# so data is in the file before the guest's write returns (nothing is left
# in flight at power-off). With it on, each kick waits for QEMU's main loop:
# hvc output crawled at ~200 KB/s under TCG; off, MB/s.
qargs+=(-device virtio-serial-pci,ioeventfd=off)
if [ $interactive = 1 ]; then
  # signal=off: ^C reaches the guest's tty (and CMD) instead of killing QEMU;
  # mux=on with the monitor gives the ^A x escape to kill a stuck guest.
  qargs+=(-chardev stdio,id=con,mux=on,signal=off -device virtconsole,chardev=con
          -mon chardev=con,mode=readline)
else
  qargs+=(-chardev "file,id=out,path=$jobdir/out"
          -device virtserialport,chardev=out,name=arcvm.out -monitor none)
fi
if [ $errdev = port ]; then
  qargs+=(-chardev "file,id=err,path=$jobdir/err,append=on"
          -device virtserialport,chardev=err,name=arcvm.err)
fi
# The kernel console and the init's early messages share CMD's stderr file;
# append=on keeps the two writers from overwriting each other.
qargs+=(-chardev "file,id=log,path=$jobdir/err,append=on" -serial chardev:log)

if [ $interactive = 1 ]; then
  echo "$prog: $why; running in a nested QEMU/TCG guest (interactive; ^A x kills it)" >&2
else
  echo "$prog: $why; running in a nested QEMU/TCG guest" >&2
fi

if [ $interactive = 1 ]; then
  # Explicit 0<&0: keep the tty as stdin of a background job; QEMU's stdio
  # chardev is the terminal on our stdin/stdout.
  "$qemu" "${qargs[@]}" 0<&0 &
else
  # QEMU's own stdout is unused; anything it prints there is diagnostics.
  "$qemu" "${qargs[@]}" </dev/null >&2 &
fi
qpid=$!
# -s 0.1: how often tail checks whether QEMU is gone (new data arrives via
# inotify at once); it exits once QEMU has exited and the file is drained.
tail_pids=()
if [ $interactive = 0 ]; then
  tail -q -c +1 -s 0.1 -f --pid="$qpid" "$jobdir/out" &
  tail_pids+=($!)
fi
tail -q -c +1 -s 0.1 -f --pid="$qpid" "$jobdir/err" >&2 &
tail_pids+=($!)
sleep "$timeout" &
tpid=$!
# The stall watch: ends when the heartbeat, once seen, is older than $stall
# seconds (the outer guest is frozen: nothing in it runs any more).
(
  while sleep 5; do
    hb=$(stat -c %Y "$jobdir/heartbeat" 2>/dev/null) || continue
    [ $(( $(date +%s) - hb )) -lt "$stall" ] || exit 0
  done
) &
spid=$!

# Wait for whichever ends first; a trapped signal interrupts the wait at once.
done_pid=
set +e
wait -n -p done_pid "$qpid" "$tpid" "$spid"
qstatus=$?
set -e
if [ "$done_pid" = "$tpid" ]; then
  tpid=
  echo "$prog: outer guest timed out after ${timeout}s; killed it" >&2
  exit 125
fi
if [ "$done_pid" = "$spid" ]; then
  spid=
  echo "$prog: the outer guest froze (no heartbeat for ${stall}s); killed it" >&2
  exit 125
fi
qpid=
kill "$tpid" "$spid" 2>/dev/null || true
wait "$tpid" "$spid" 2>/dev/null || true
tpid='' spid=''
# Let the tails deliver the last bytes before we exit.
wait "${tail_pids[@]}" 2>/dev/null || true
tail_pids=()

status=$(cat "$jobdir/status" 2>/dev/null || true)
case $status in
  nokvm)
    die "the outer guest has no /dev/kvm (kvm_amd did not load; its dmesg is above)" ;;
  '')
    if [ "$qstatus" -ne 0 ]; then
      die "QEMU failed (exit $qstatus, see its message above)"
    fi
    die "the outer guest stopped before the command finished (a panic of its kernel would be shown above; init failure or ^A x?); rerun with ARCVM_NESTED_VERBOSE=1 to see its whole console" ;;
esac
[[ $status =~ ^[0-9]+$ ]] || die "unexpected status '$status' from the outer guest"
exit "$status"
}
