#!/usr/bin/env bash
# kernel.sh — locate the stock Debian guest kernel used by arcvm's tests.
#
# The kernel is whatever package the `linux-image-amd64` meta-package depends on
# (e.g. linux-image-6.1.0-56-amd64), read from dpkg's metadata, so a Debian
# kernel update moves the tests along with no version pinned anywhere.
#
# Usage:
#   kernel.sh                 print the absolute path of the kernel's vmlinuz
#   kernel.sh --version       print the kernel release (e.g. 6.1.0-56-amd64)
#   kernel.sh --modules-dir   print /lib/modules/<release>
#   kernel.sh --elf OUT       write the uncompressed ELF vmlinux (it has the PVH
#                             entry note; QEMU boots it without decompressing,
#                             seconds faster under TCG) to OUT, atomically
set -euo pipefail

prog=kernel.sh
die() { echo "$prog: $*" >&2; exit 1; }

usage() {
  sed -n '/^# Usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2
  exit 2
}

mode=path
nargs=1
case "${1-}" in
  "") ;;
  --version) mode=version ;;
  --modules-dir) mode=modules ;;
  --elf) mode=elf; nargs=2; [ $# -eq 2 ] || { echo "$prog: --elf needs an output path" >&2; usage; } ;;
  -h|--help) usage ;;
  *) echo "$prog: unknown argument '$1'" >&2; usage ;;
esac
[ $# -le $nargs ] || usage

command -v dpkg-query >/dev/null ||
  die "dpkg-query not found: this needs a Debian host (see scripts/install-deps.sh)"

meta=linux-image-amd64
installed() {
  # db:Status-Status is just "installed" for a fully configured package.
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}
installed "$meta" ||
  die "$meta is not installed; run scripts/install-deps.sh"

# ${Depends} looks like "linux-image-6.1.0-56-amd64 (= 6.1.192-2)"; take the
# first linux-image-* name, dropping the version constraint and alternatives.
pkg=$(dpkg-query -W -f='${Depends}' "$meta" | tr ',|' '\n' |
      sed -n 's/^ *\(linux-image-[^ (]*\).*/\1/p' | head -n1)
[ -n "$pkg" ] || die "cannot find the kernel package $meta depends on; reinstall it: apt-get install --reinstall $meta"
installed "$pkg" || die "$pkg (needed by $meta) is not installed; run scripts/install-deps.sh"

# The package owns exactly one /boot/vmlinuz-<release>; its suffix is the
# release string that names /lib/modules/<release>.
vmlinuz=$(dpkg-query -L "$pkg" | grep -m1 '^/boot/vmlinuz-' || true)
[ -n "$vmlinuz" ] || die "package $pkg ships no /boot/vmlinuz-*; reinstall it: apt-get install --reinstall $pkg"
version=${vmlinuz#/boot/vmlinuz-}
[ -f "$vmlinuz" ] || die "$vmlinuz is missing although $pkg is installed; run apt-get install --reinstall $pkg"
[ -d "/lib/modules/$version" ] ||
  die "/lib/modules/$version is missing although $pkg is installed; run apt-get install --reinstall $pkg"

case $mode in
  path)
    [ -r "$vmlinuz" ] || die "$vmlinuz is not readable by $(id -un); run as root or make it readable"
    echo "$vmlinuz" ;;
  version) echo "$version" ;;
  modules) echo "/lib/modules/$version" ;;
  elf)
    [ -r "$vmlinuz" ] || die "$vmlinuz is not readable by $(id -un); run as root or make it readable"
    out=$2
    # bzImage layout (Documentation/arch/x86/boot.rst): setup_sects at 0x1f1
    # (0 means 4); the protected-mode part starts at (setup_sects+1)*512, and
    # payload_offset/payload_length (0x248/0x24c) locate the compressed
    # vmlinux inside it.
    u8() { od -An -tu1 -j "$1" -N1 "$vmlinuz" | tr -d ' '; }
    u32() { od -An -tu4 -j "$1" -N4 "$vmlinuz" | tr -d ' '; }
    [ "$(od -An -c -j $((0x202)) -N4 "$vmlinuz" | tr -d ' ')" = HdrS ] ||
      die "$vmlinuz is not a bzImage (no HdrS signature)"
    setup_sects=$(u8 $((0x1f1))); [ "$setup_sects" -ne 0 ] || setup_sects=4
    poff=$(u32 $((0x248))); plen=$(u32 $((0x24c)))
    start=$(( (setup_sects + 1) * 512 + poff ))
    magic=$(od -An -tx1 -j "$start" -N4 "$vmlinuz" | tr -d ' ')
    case $magic in
      fd377a58) dec=(xz -dc --single-stream) ;;   # trailing size word is not xz data
      1f8b*) dec=(gzip -dc) ;;
      28b52ffd) dec=(zstd -qdc) ;;
      *) die "unsupported kernel compression (magic $magic); use the bzImage instead" ;;
    esac
    command -v "${dec[0]}" >/dev/null || die "${dec[0]} is needed to unpack $vmlinuz; run scripts/install-deps.sh"
    tmp=$(mktemp "$(dirname -- "$out")/.vmlinux.XXXXXX")
    trap 'rm -f -- "$tmp"' EXIT
    # gzip warns about the trailing size word; its exit status 2 means warning.
    set +e
    tail -c +$((start + 1)) "$vmlinuz" | head -c "$plen" | "${dec[@]}" >"$tmp" 2>/dev/null
    st=("${PIPESTATUS[@]}")
    set -e
    [ "${st[2]}" -eq 0 ] || { [ "${dec[0]}" = gzip ] && [ "${st[2]}" -eq 2 ]; } ||
      die "unpacking $vmlinuz failed (${dec[*]} exit ${st[2]})"
    [ "$(od -An -c -N4 "$tmp" | tr -d ' ')" = 177ELF ] || die "unpacked $vmlinuz is not an ELF file"
    chmod 644 "$tmp"
    mv -f -- "$tmp" "$out"
    echo "$out" ;;
esac
