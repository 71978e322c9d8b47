#!/usr/bin/env bash
# nested-arm64.sh - run arm64 arcvm inside a nested qemu-system-aarch64
# (TCG) guest, on any host: QEMU's virt machine with EL2 (virtualization=on)
# and a GICv3 gives Debian's arm64 kernel a real /dev/kvm with an in-kernel
# vGICv3, where the cross-built arcvm (make cross-arm64) runs guests.
#
# Usage:
#   nested-arm64.sh [--cpus N] [--mem SIZE] [--timeout SEC] [-f HOST:GUEST]... [JOB]
#
#   JOB            a busybox sh script run as root in the outer guest
#                  (default: tests/e2e/arm64.sh, the arm64 suite); its output
#                  is our stdout, its exit status ours
#   --cpus N       outer vCPUs (default 2)
#   --mem SIZE     outer RAM, QEMU syntax (default 2G)
#   --timeout SEC  kill the outer guest after SEC seconds (default 900)
#   -f HOST:GUEST  also put a file or directory into the outer guest at
#                  GUEST (repeatable; what a JOB needs beyond the below)
#
# The outer guest cannot run this host's (x86) programs, so unlike
# nested.sh it does not share the host's root: everything it needs is in
# its initramfs, built with tests/guest/mkinitramfs.sh from arm64 busybox:
#   /bin/arcvm                 build-arm64/arcvm (static)
#   /bin/api-call /bin/vsock-tool  build-arm64's test clients (static)
#   /bin/arcvm-net-user        with its shared libraries, when build-arm64
#                              has it (tests/harness/arm64-libs.sh lists them)
#   /bin/lifecycle             the library's lifecycle test, with its libraries
#   /arm64/Image               Debian's arm64 kernel (the outer's own too)
#   /arm64/Image.gz            the same, gzipped (the kernel cache's case)
#   /arm64/initrd.cpio.gz      a test guest: tests/guest/init.sh on arm64
#                              busybox, the kernel package's virtio, vsock
#                              and ext4 modules, /bin/vsock-tool
#   /arm64/data.ext4           16 MiB ext4 (mkfs.ext4 -d here), /seed.txt in it
#   /job.sh                    JOB
# The kernel and busybox come from Debian's arm64 packages (apt-get
# download), cached in $ARCVM_CACHE/arm64/pkg (default build/cache/arm64).
# The machine has few cores shared by everyone: once the images are ready,
# the outer guest runs only while this script holds the nested lock
# (flock on $ARCVM_NESTED_LOCK, default /tmp/arcvm-nested.lock, the one
# every nested run takes; "none" when the caller holds it already).
# Exit status: JOB's, 125 when the outer guest failed.
set -euo pipefail
# One { } block: bash parses it whole before running it, so editing this
# file during a run cannot derail that run.
{
prog=nested-arm64.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
die() { echo "$prog: $*" >&2; exit 125; }

cpus=2 mem=2G timeout=900 job="$repo/tests/e2e/arm64.sh" extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --cpus) cpus=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    -f) extra+=(-f "${2:?}"); shift 2 ;;
    -h|--help) sed -n '/^# Usage:/,/^# The outer/{/^# The outer/d;s/^# \{0,1\}//p}' "$0" >&2; exit 125 ;;
    -*) die "unknown option '$1'" ;;
    *) job=$1; shift; [ $# -eq 0 ] || die "one JOB script, got more arguments: $*" ;;
  esac
done
[[ $cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus wants a positive integer, got '$cpus'"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout wants seconds, got '$timeout'"
[ -f "$job" ] || die "job script '$job' not found"
arcvm=${ARCVM_ARM64_BIN:-$repo/build-arm64/arcvm}
[ -x "$arcvm" ] || die "$arcvm is missing: make cross-arm64"
bin64=$(dirname "$arcvm")
for t in vsock-tool api-call; do
  [ -x "$bin64/$t" ] || die "$bin64/$t is missing: make cross-arm64"
done
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found (package e2fsprogs)"
command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 not found: scripts/install-deps.sh --arm64"

cache=${ARCVM_CACHE:-$repo/build/cache}/arm64
mkdir -p "$cache"

# fetch PACKAGE: the unpacked arm64 .deb's directory (tests/harness/arm64-fetch.sh).
fetch() { "$here/arm64-fetch.sh" "$1" || die "cannot get $1:arm64 (see above)"; }
# The kernel Debian's linux-image-arm64 meta-package points at now.
kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-/ {sub(/:arm64$/, "", $2); print $2; exit}')
[ -n "$kpkg" ] || die "cannot resolve linux-image-arm64:arm64 (dpkg --add-architecture arm64 && apt-get update)"
kdir=$(fetch "$kpkg")
kernel=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -n1)
[ -f "$kernel" ] || die "no vmlinuz in $kpkg"
busybox="$(fetch busybox-static)/bin/busybox"
[ -f "$busybox" ] || die "no busybox in busybox-static:arm64"

# The test guest's initramfs, keyed on what goes into it (this script holds
# the module list). Debian's arm64 kernel has the virtio transport, its
# devices, vsock and ext4 as modules; crc32c_generic is ext4's soft
# dependency (through the crypto API, not listed by modinfo).
key=$( { cat "$repo/tests/guest/init.sh" "$repo/tests/guest/mkinitramfs.sh" "$repo/tests/guest/udhcpc.script" \
           "$0" "$busybox" "$bin64/vsock-tool"; echo "$kpkg"; } | sha256sum | cut -c1-16)
inner="$cache/inner-$key.cpio.gz"
if [ ! -f "$inner" ]; then
  find "$cache" -maxdepth 1 -name 'inner-*.cpio.gz' -delete
  "$repo/tests/guest/mkinitramfs.sh" -B "$busybox" -o "$inner" -i "$repo/tests/guest/init.sh" -K "$kdir" \
    -m virtio_mmio -m virtio_blk -m virtio_console -m virtio_rng -m virtio_net \
    -m vsock -m vmw_vsock_virtio_transport_common -m vmw_vsock_virtio_transport \
    -m ext4 -m crc32c_generic -m virtio_balloon -m fuse -m virtiofs \
    -m virtio_pmem -m nd_pmem -f "$repo/tests/guest/udhcpc.script:/etc/udhcpc.script" \
    -f "$bin64/vsock-tool:/bin/vsock-tool" || die "building the test guest's initramfs failed"
fi

work=$(mktemp -d "$cache/.run.XXXXXX")
qpid=''
cleanup() {
  # Only the QEMU this script started, by pid.
  if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
# The guest's data disk: ext4 made here (the outer guest has no mkfs.ext4).
mkdir "$work/seed"
echo "arm64-e2e seed" >"$work/seed/seed.txt"
truncate -s 16M "$work/data.ext4"
mkfs.ext4 -q -F -d "$work/seed" "$work/data.ext4" || die "mkfs.ext4 of the data disk failed"
# The kernel gzipped as a whole (Image.gz, as Ubuntu ships its arm64
# vmlinuz): the suite boots it twice, to see arcvm unpack it once into the
# kernel cache and then boot from the cache.
gzimage="$cache/Image-$(basename "$kdir").gz"
[ -s "$gzimage" ] || { gzip -1 -c "$kernel" >"$gzimage.tmp" && mv "$gzimage.tmp" "$gzimage"; } ||
  die "gzip of the arm64 kernel failed"
# The user-mode networking helper is dynamically linked (libslirp, glib):
# its libraries come along when the cross build has it.
net=()
if [ -x "$bin64/arcvm-net-user" ] && [ -x "$here/arm64-libs.sh" ]; then
  net=(-f "$bin64/arcvm-net-user:/bin/arcvm-net-user")
  libs=$("$here/arm64-libs.sh" "$bin64/arcvm-net-user") || die "arm64-libs.sh failed for arcvm-net-user"
  # shellcheck disable=SC2206 # "-f HOST:GUEST" words; no spaces in the paths
  net+=($libs)
fi
# The library's lifecycle test (tests/e2e/lifecycle.c) links libarcvm's
# dependencies dynamically: the same for its libraries.
lib=()
if [ -x "$bin64/lifecycle" ]; then
  libs=$("$here/arm64-libs.sh" "$bin64/lifecycle") || die "arm64-libs.sh failed for lifecycle"
  # shellcheck disable=SC2206 # "-f HOST:GUEST" words; no spaces in the paths
  lib=(-f "$bin64/lifecycle:/bin/lifecycle" $libs)
fi
"$repo/tests/guest/mkinitramfs.sh" -B "$busybox" -o "$work/outer.cpio.gz" \
  -i "$here/nested-arm64-init.sh" -f "$arcvm:/bin/arcvm" -f "$kernel:/arm64/Image" \
  -f "$gzimage:/arm64/Image.gz" \
  -f "$bin64/api-call:/bin/api-call" -f "$bin64/vsock-tool:/bin/vsock-tool" \
  -f "$inner:/arm64/initrd.cpio.gz" -f "$work/data.ext4:/arm64/data.ext4" -f "$job:/job.sh" \
  -f "$here/arm64-snapshot.sh:/arm64/snapshot.sh" \
  ${net[@]+"${net[@]}"} ${lib[@]+"${lib[@]}"} ${extra[@]+"${extra[@]}"} ||
  die "building the outer initramfs failed"

lock=${ARCVM_NESTED_LOCK:-/tmp/arcvm-nested.lock}
if [ "$lock" != none ]; then
  exec 9>>"$lock" || die "cannot open the lock $lock"
  if ! flock -n 9; then
    echo "$prog: waiting for $lock (another nested run)" >&2
    flock 9
  fi
fi
echo "$prog: running $(basename "$job") in a nested qemu-system-aarch64 guest ($cpus vCPUs, TCG; kernel $kpkg)" >&2
# The console (PL011, ttyAMA0) carries the job's output; quiet keeps the
# outer kernel's messages to errors (ARCVM_NESTED_VERBOSE=1: all of them);
# panic=-1 with -no-reboot ends QEMU on an outer panic. The whole console
# is kept in $cache/last-console.log.
append="console=ttyAMA0 panic=-1"
if [ "${ARCVM_NESTED_VERBOSE:-0}" = 1 ]; then append+=" loglevel=7"; else append+=" quiet loglevel=3"; fi
console="$cache/last-console.log"
: >"$console"
start=$(date +%s)
qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max -smp "$cpus" -m "$mem" \
  -accel tcg,thread=multi -nographic -nodefaults -no-user-config -no-reboot \
  -kernel "$kernel" -initrd "$work/outer.cpio.gz" -append "$append" \
  -chardev "file,id=con,path=$console" -serial chardev:con -monitor none </dev/null >&2 &
qpid=$!
# Stream the console while QEMU runs, line by line.
tail -q -c +1 -s 0.2 -f --pid="$qpid" "$console" | tr -d '\r' | grep --line-buffered -v '^NESTED-ARM64-STATUS=' &
tailpid=$!
deadline=$((start + timeout))
while kill -0 "$qpid" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "$prog: outer guest timed out after ${timeout}s; killed it (console: $console)" >&2
    exit 125
  fi
  sleep 1
done
qstatus=0
wait "$qpid" || qstatus=$?
qpid=''
wait "$tailpid" 2>/dev/null || true
echo "$prog: outer guest ran $(( $(date +%s) - start )) s (QEMU exit $qstatus)" >&2
status=$(tr -d '\r' <"$console" | sed -n 's/^NESTED-ARM64-STATUS=//p' | tail -n1) || true
[[ $status =~ ^[0-9]+$ ]] ||
  die "the outer guest stopped before the job finished (no status line; its console: $console, rerun with ARCVM_NESTED_VERBOSE=1 for the kernel's messages)"
echo "$prog: job exit status $status" >&2
exit "$status"
}
