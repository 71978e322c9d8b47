#!/bin/sh
# nested-init.sh — /init of the outer QEMU/TCG guest that tests/harness/nested.sh
# boots when arcvm check says the host's KVM cannot run a stock guest. Runs
# under busybox sh.
#
# It loads the modules listed in /etc/modules.list (kvm_amd gives /dev/kvm),
# mounts the host's root (9p tag "hostroot") at /host and the per-run job
# directory (9p tag "arcvmjob") at /job, chroots into /host and runs
# /job/job.sh with the host's bash, then writes the exit status to /job/status
# and powers off. /job/guest.conf (written by nested.sh) sets:
#   NI_TTY=1        interactive: the command gets hvc0 (the virtio console on
#                   the caller's terminal) as its controlling tty; otherwise
#                   stdout is the virtio-serial port "arcvm.out"
#   NI_ROWS/NI_COLS terminal size for hvc0 (interactive only)
#   NI_ERR          "port" (stderr is the port "arcvm.err") or "tty" (hvc0)
# ttyS0 (the kernel console, and our own messages until guest.conf is read)
# goes to the caller's stderr.
#   NI_CACHE        9p cache mode for /host
#   NI_VERBOSE=1    progress messages on the console
#   NI_KEEP_TMP     host directories under /tmp to bind into the private /tmp
# If /dev/kvm does not appear, it prints the dmesg tail and writes "nokvm" to
# /job/status. Any other failure leaves no status, which nested.sh reports.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The kernel created /dev/console while unpacking the image; everything else
# (hvc*, ttyS*, kvm, null, ...) comes from devtmpfs.
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# devtmpfs lacks these symlinks (udev makes them); bash process substitution
# and /dev/stdin users need them.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
ln -sf pts/ptmx /dev/ptmx 2>/dev/null

say() { [ "${NI_VERBOSE:-0}" = 1 ] && echo "nested-init: $*" >&2; return 0; }
# The kernel console shows emergencies (a panic of this kernel explains a
# lost job); the power-off message is one too, and is not news.
quiet_console() {
  [ "${NI_VERBOSE:-0}" = 1 ] || echo 0 >/proc/sys/kernel/printk 2>/dev/null || :
}

die() {
  echo "nested-init: $*" >&2
  sync
  quiet_console
  poweroff -f
}

load-modules || echo "nested-init: some modules failed to load (see above)" >&2

mkdir -p /job /host
mount -t 9p -o trans=virtio,version=9p2000.L arcvmjob /job ||
  die "cannot mount the job directory (9p tag arcvmjob)"
if [ ! -r /job/guest.conf ] || [ ! -r /job/job.sh ]; then
  die "job directory has no guest.conf/job.sh"
fi
# shellcheck source=/dev/null # written by nested.sh for this run
. /job/guest.conf
[ "${NI_VERBOSE:-0}" = 1 ] && set -x

# Where CMD's output goes. Non-interactive: virtio-serial ports named
# arcvm.out / arcvm.err (plain character devices, so CMD sees no tty, as with
# a pipe on the host). Interactive: the virtio console hvc0 is CMD's terminal;
# stderr shares it unless the caller redirected its stderr (then arcvm.err).
port_dev() { # NAME -> /dev/vportNpM of the virtio-serial port with that name
  for n in /sys/class/virtio-ports/*/name; do
    if [ ! -r "$n" ] || [ "$(cat "$n")" != "$1" ]; then continue; fi
    d=${n%/name}
    [ -c "/dev/${d##*/}" ] && echo "/dev/${d##*/}" && return 0
  done
  return 1
}
# virtio_console probes asynchronously; give the devices a moment to appear.
i=0
while [ $i -lt 100 ]; do
  if [ "${NI_TTY:-0}" = 1 ]; then out=/dev/hvc0; [ -c $out ] || out=''
  else out=$(port_dev arcvm.out) || out=''; fi
  if [ "${NI_ERR:-port}" = tty ]; then err=/dev/hvc0; [ -c $err ] || err=''
  else err=$(port_dev arcvm.err) || err=''; fi
  [ -n "$out" ] && [ -n "$err" ] && break
  sleep 0.05; i=$((i + 1))
done
if [ -z "$out" ] || [ -z "$err" ]; then
  die "the virtio console/ports for CMD's output did not appear"
fi

# From here on our own messages go where CMD's stderr will go. Open hvc0
# before stty: hvc resets a tty's settings on its last close.
exec >"$out" 2>"$err"
if [ "${NI_TTY:-0}" = 1 ]; then
  # Cooked mode with the caller's window size; the host terminal is raw
  # under QEMU, so the guest tty does the "\n" -> "\r\n" mapping.
  stty -F /dev/hvc0 sane
  [ -n "${NI_ROWS:-}" ] && stty -F /dev/hvc0 rows "$NI_ROWS" cols "$NI_COLS"
fi

if [ ! -c /dev/kvm ]; then
  {
    echo "nested-init: /dev/kvm did not appear after loading kvm_amd; dmesg tail:"
    dmesg | tail -n 30
  } >&2
  echo nokvm >/job/status
  die "no /dev/kvm in the outer guest"
fi
# No udev here: devtmpfs makes it 0600; let a non-root caller use it too.
chmod 666 /dev/kvm
[ -e /dev/vhost-net ] && chmod 666 /dev/vhost-net
[ -e /dev/vhost-vsock ] && chmod 666 /dev/vhost-vsock
[ -e /dev/net/tun ] && chmod 666 /dev/net/tun

# msize: the largest the virtio transport allows (fewer round trips).
mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,cache=${NI_CACHE:-loose}" \
  hostroot /host || die "cannot mount the host root (9p tag hostroot)"

mount --rbind /dev /host/dev || die "cannot bind /dev into /host"
mount -t proc proc /host/proc || die "cannot mount /host/proc"
mount -t sysfs sysfs /host/sys || die "cannot mount /host/sys"
mount -t tmpfs -o mode=755 tmpfs /host/run || die "cannot mount /host/run"
# 9p cannot hold Unix sockets, so /tmp must be local; a private one also keeps
# the host's temp-file churn (compilers, other jobs) out of CMD's view.
mkdir -p /hosttmp
mount --bind /host/tmp /hosttmp || die "cannot keep the host's /tmp"
mount -t tmpfs -o mode=1777 tmpfs /host/tmp || die "cannot mount /host/tmp"
# Host directories under /tmp the command needs (its checkout): bound back.
for d in ${NI_KEEP_TMP:-}; do
  mkdir -p "/host$d" && mount --bind "/hosttmp${d#/tmp}" "/host$d" ||
    die "cannot bind the host's $d into the private /tmp"
done

# A heartbeat in the job directory: nested.sh gives up on an outer guest
# whose heartbeat stops (a frozen outer kernel prints nothing and would
# otherwise cost the whole --timeout).
( while :; do date +%s >/job/heartbeat; sleep 5; done ) &
say "running job"
# env -i: job.sh exports exactly the caller's carried variables. The job
# script is handed over as fd 9 so no path has to survive the chroot.
# stdout/stderr are inherited: a virtio-serial port can be open only once.
if [ "${NI_TTY:-0}" = 1 ]; then
  # setsid -c: new session with hvc0 (stdin) as controlling terminal, so
  # ^C, job control and raw mode work for the command.
  setsid -c env -i chroot /host /bin/bash --noprofile --norc /dev/fd/9 \
    9</job/job.sh </dev/hvc0
else
  env -i chroot /host /bin/bash --noprofile --norc /dev/fd/9 \
    9</job/job.sh </dev/null
fi
status=$?
say "job exited with $status"
echo "$status" >/job/status
sync
quiet_console
poweroff -f
