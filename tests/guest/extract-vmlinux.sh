#!/usr/bin/env bash
# extract-vmlinux.sh - unpack the ELF vmlinux inside a bzImage, using the
# payload location the boot protocol (>= 2.08) records in the setup header.
#
# Usage: extract-vmlinux.sh BZIMAGE OUT
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: extract-vmlinux.sh BZIMAGE OUT" >&2; exit 2; }
in=$1 out=$2
[ -r "$in" ] || { echo "extract-vmlinux.sh: cannot read '$in'" >&2; exit 1; }

# Little-endian unsigned integer of $2 bytes at offset $1.
le() { od -An -t u"$2" -j "$1" -N "$2" --endian=little "$in" | tr -d ' '; }

setup_sects=$(le $((0x1f1)) 1)
[ "$setup_sects" -ne 0 ] || setup_sects=4          # 0 means 4, per boot.rst
payload_offset=$(le $((0x248)) 4)                  # from the protected-mode start
payload_length=$(le $((0x24c)) 4)
start=$(( (setup_sects + 1) * 512 + payload_offset ))

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
magic=$(od -An -t x1 -j "$start" -N 4 "$in" | tr -d ' ')
case $magic in
  fd377a58) dec="xz -dc --single-stream" ;;  # xz
  1f8b*)    dec="gzip -dc" ;;
  28b52ffd) dec="zstd -dc" ;;
  *) echo "extract-vmlinux.sh: unknown payload compression (magic $magic)" >&2; exit 1 ;;
esac
# The payload ends with the decompressed size (4 bytes); decompressors stop
# at the end of their stream, so trailing bytes are harmless.
tail -c +$((start + 1)) "$in" | head -c "$payload_length" | $dec > "$tmp" 2>/dev/null || true
[ "$(od -An -t x1 -N 4 "$tmp" | tr -d ' ')" = 7f454c46 ] ||
  { echo "extract-vmlinux.sh: payload did not decompress to an ELF file" >&2; exit 1; }
mv "$tmp" "$out"
trap - EXIT
