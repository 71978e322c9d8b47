#!/bin/sh
# nested-init.sh — /init of the outer QEMU/TCG guest that tests/harness/nested.sh
# boots when the host has no /dev/kvm. Runs under busybox sh.
#
# It loads the modules listed in /etc/modules.list (kvm_amd gives /dev/kvm),
# mounts the host's root (9p tag "hostroot") at /host and the per-run job
# directory (9p tag "arcvmjob") at /job, chroots into /host and runs
# /job/job.sh with the host's bash, then writes the exit status to /job/status
# and powers off. /job/guest.conf (written by nested.sh) sets:
#   NI_TTY=1        interactive: the command gets hvc0 as its controlling tty
#   NI_ROWS/NI_COLS terminal size for hvc0 (interactive only)
#   NI_ERR          hvc1 (separate stderr channel) or hvc0 (merged)
# hvc0 is the virtio console wired to the caller's stdin/stdout; ttyS0 (the
# kernel console, and our stdout/stderr until guest.conf is read) goes to the
# caller's stderr.
#   NI_CACHE        9p cache mode for /host
#   NI_VERBOSE=1    progress messages on the console
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
die() {
  echo "nested-init: $*" >&2
  sync
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

err=${NI_ERR:-hvc0}
# virtio_console probes asynchronously; give the nodes a moment to appear.
i=0
while { [ ! -c /dev/hvc0 ] || [ ! -c "/dev/$err" ]; } && [ $i -lt 100 ]; do
  sleep 0.05; i=$((i + 1))
done
if [ ! -c /dev/hvc0 ] || [ ! -c "/dev/$err" ]; then
  die "virtio consoles /dev/hvc0 /dev/$err did not appear"
fi

# From here on our own messages go where the command's stderr will go.
# Open the consoles before stty: hvc resets a tty's settings on last close.
exec >/dev/hvc0 2>"/dev/$err"
# Line discipline: an interactive session keeps hvc0 cooked (the host
# terminal is raw under QEMU); otherwise output processing is off so "\n" is
# not sent as "\r\n" and bytes reach the caller unchanged.
if [ "${NI_TTY:-0}" = 1 ]; then
  stty -F /dev/hvc0 sane
  [ -n "${NI_ROWS:-}" ] && stty -F /dev/hvc0 rows "$NI_ROWS" cols "$NI_COLS"
else
  stty -F /dev/hvc0 -opost -echo
fi
[ "$err" = hvc0 ] || stty -F "/dev/$err" -opost -echo

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
# 9p cannot hold Unix sockets, so /tmp must be local. An overlay keeps the
# host's /tmp files readable (e.g. a test binary built in /tmp) while every
# write, socket included, lands in a guest-private tmpfs.
mkdir -p /ovl
mount -t tmpfs -o mode=755 tmpfs /ovl
mkdir -p /ovl/upper /ovl/work
chmod 1777 /ovl/upper
if ! mount -t overlay -o lowerdir=/host/tmp,upperdir=/ovl/upper,workdir=/ovl/work \
     overlay /host/tmp 2>/dev/null; then
  echo "nested-init: overlay on /tmp failed; using an empty tmpfs (host /tmp not visible)" >&2
  mount -t tmpfs -o mode=1777 tmpfs /host/tmp || die "cannot mount /host/tmp"
fi

say "running job"
# env -i: job.sh exports exactly the caller's carried variables. The job
# script is handed over as fd 9 so no path has to survive the chroot.
if [ "${NI_TTY:-0}" = 1 ]; then
  # setsid -c: new session with hvc0 (stdin) as controlling terminal, so
  # ^C, job control and raw mode work for the command.
  setsid -c env -i chroot /host /bin/bash --noprofile --norc /dev/fd/9 \
    9</job/job.sh </dev/hvc0 >/dev/hvc0 2>"/dev/$err"
else
  env -i chroot /host /bin/bash --noprofile --norc /dev/fd/9 \
    9</job/job.sh </dev/null >/dev/hvc0 2>"/dev/$err"
fi
status=$?
say "job exited with $status"
echo "$status" >/job/status
sync
poweroff -f
