#!/usr/bin/env bash
# arm64-libs.sh - what a busybox-only arm64 guest needs to run dynamically
# linked arm64 programs (the cross-built arcvm-net-user: libslirp, glib).
#
# Usage:
#   arm64-libs.sh BINARY...
#
# Prints, one per line, `-f HOST:GUEST` arguments for
# tests/harness/nested-arm64.sh and tests/guest/mkinitramfs.sh:
#   - the dynamic loader each BINARY asks for (its PT_INTERP, e.g.
#     /lib/ld-linux-aarch64.so.1), at that path;
#   - every shared library of its NEEDED entries, and theirs, recursively,
#     at /lib/aarch64-linux-gnu/SONAME (a directory the loader searches
#     without an ld.so.cache).
# HOST is the library file itself (symlinks resolved), so the image gets
# the file, not a link into this host's tree. A static BINARY needs nothing
# and adds nothing. Example:
#   tests/harness/nested-arm64.sh $(tests/harness/arm64-libs.sh build-arm64/arcvm-net-user) \
#     -f build-arm64/arcvm-net-user:/bin/arcvm-net-user JOB
#
# Libraries are looked up, first match wins, in:
#   /usr/aarch64-linux-gnu/lib             libc6-arm64-cross: the libc the
#                                          cross compiler links against, and
#                                          the loader, which must match it
#   $ARM64_SYSROOT/usr/lib/aarch64-linux-gnu, $ARM64_SYSROOT/lib/aarch64-linux-gnu
#                                          what install-deps.sh unpacks
#                                          (default /opt/arcvm/arm64-sysroot)
#   /usr/lib/aarch64-linux-gnu, /lib/aarch64-linux-gnu
#                                          Debian's :arm64 runtime packages
#                                          (libslirp0, libglib2.0-0, ...)
# Exit status 1, with the name of what is missing, when a library is not
# found (scripts/install-deps.sh --arm64 installs them); 2 on bad usage.
set -euo pipefail
prog=arm64-libs.sh
die() { echo "$prog: $*" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: $prog BINARY..." >&2; exit 2; }
case $1 in -h|--help) sed -n '/^# Usage:/,/^# Libraries/{/^# Libraries/d;s/^# \{0,1\}//p}' "$0" >&2; exit 2 ;; esac

readelf=aarch64-linux-gnu-readelf
command -v "$readelf" >/dev/null || die "$readelf not found: scripts/install-deps.sh --arm64 (binutils-aarch64-linux-gnu)"
sysroot=${ARM64_SYSROOT:-/opt/arcvm/arm64-sysroot}
dirs=(/usr/aarch64-linux-gnu/lib "$sysroot/usr/lib/aarch64-linux-gnu" "$sysroot/lib/aarch64-linux-gnu"
      /usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu)
guest_libdir=/lib/aarch64-linux-gnu

# check_elf FILE: FILE must be an AArch64 ELF file.
check_elf() {
  local machine
  machine=$(LC_ALL=C "$readelf" -h "$1" 2>/dev/null | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}') ||
    machine=''
  [ -n "$machine" ] || die "'$1' is not an ELF file"
  [ "$machine" = AArch64 ] || die "'$1' is an ELF file for $machine, not AArch64"
}
# emit HOST GUEST: one argument line; the consumers split at the last ':'
# and the caller's $( ) splits at blanks, so neither may be in HOST.
emit() {
  case $1 in *[[:space:]:]*) die "'$1': a path with a blank or ':' cannot be passed as -f HOST:GUEST" ;; esac
  echo "-f $1:$2"
}
# needed FILE: its NEEDED sonames, one per line.
needed() { LC_ALL=C "$readelf" -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }
# find_lib SONAME: the real file of the first match in dirs.
find_lib() {
  local d
  for d in "${dirs[@]}"; do
    if [ -e "$d/$1" ]; then readlink -f -- "$d/$1"; return 0; fi
  done
  return 1
}

declare -A seen=()
interps=()
queue=()
for bin in "$@"; do
  [ -f "$bin" ] || die "'$bin' is not a file"
  check_elf "$bin"
  interp=$(LC_ALL=C "$readelf" -l "$bin" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]$/\1/p')
  if [ -n "$interp" ] && [ -z "${seen[interp:$interp]+x}" ]; then
    seen[interp:$interp]=1
    interps+=("$interp")
  fi
  while read -r so; do [ -z "$so" ] || queue+=("$so"); done < <(needed "$bin")
done
# The loader comes from the libc directory (first in dirs): it and libc.so.6
# must be of the same glibc build.
for interp in ${interps[@]+"${interps[@]}"}; do
  f=$(find_lib "${interp##*/}") || die "dynamic loader ${interp##*/} not found in ${dirs[*]} (libc6-arm64-cross)"
  check_elf "$f"
  emit "$f" "$interp"
  seen[${interp##*/}]=1 # libc's NEEDED names it: it is loaded already
done
# Breadth-first over NEEDED; each soname once (the set bounds the loop).
i=0
while [ $i -lt ${#queue[@]} ]; do
  so=${queue[$i]}
  i=$((i + 1))
  [ -z "${seen[$so]+x}" ] || continue
  seen[$so]=1
  case $so in */*) die "NEEDED entry '$so' is a path, not a soname" ;; esac
  f=$(find_lib "$so") || die "shared library $so not found in ${dirs[*]}; scripts/install-deps.sh --arm64 installs the :arm64 runtime packages"
  check_elf "$f"
  emit "$f" "$guest_libdir/$so"
  while read -r dep; do [ -z "$dep" ] || queue+=("$dep"); done < <(needed "$f")
done
