#!/usr/bin/env bash
# images.sh - build (or reuse) the guest images the tests, demo and
# benchmarks boot, and print where they are as shell assignments:
#   KERNEL=... (bzImage)  VMLINUX=... (ELF, PVH)  INITRD=... (busybox initramfs)
#
# Usage: eval "$(tests/guest/images.sh)"
# Images are cached under ${ARCVM_CACHE:-<repo>/build/cache}, keyed on the
# kernel version and a hash of the scripts that make them.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${ARCVM_CACHE:-$repo/build/cache}
mkdir -p "$cache"

kernel=$("$here/kernel.sh")
ver=$("$here/kernel.sh" --version)
# Guest-side test programs (static) go in when they have been built.
extra=() keyfiles=()
for prog in virtq-attack fuse-attack fs-tool blkbench memhog vsock-tool; do
  if [ -x "$repo/build/$prog" ]; then
    extra+=(-f "$repo/build/$prog:/bin/$prog")
    keyfiles+=("$repo/build/$prog")
  fi
done
# This script is in the key too: it holds the module list.
key=$(cat "$here/images.sh" "$here/init.sh" "$here/mkinitramfs.sh" "$here/extract-vmlinux.sh" \
        "$here/udhcpc.script" "${keyfiles[@]}" |
        sha256sum | cut -c1-12)

vmlinux=$cache/vmlinux-$ver
if [ ! -s "$vmlinux" ]; then
  echo "images: extracting the ELF vmlinux from $kernel" >&2
  "$here/extract-vmlinux.sh" "$kernel" "$vmlinux"
fi

initrd=$cache/initrd-$ver-$key.cpio.gz
if [ ! -s "$initrd" ]; then
  echo "images: building the busybox initramfs" >&2
  # Virtio drivers are modules in Debian's kernel; ext4 for disk tests, with
  # crc32c, which ext4 loads through the crypto API (a soft dependency that
  # `modinfo -F depends` does not list); AF_VSOCK over virtio; virtio-fs
  # (with fuse, its dependency); virtio-pmem with nd_pmem, which makes its
  # /dev/pmemN.
  "$here/mkinitramfs.sh" -o "$initrd" -i "$here/init.sh" \
    -m virtio_mmio -m virtio_blk -m virtio_console -m virtio_rng -m virtio_balloon -m virtio_mem -m virtio_net \
    -m vsock -m vmw_vsock_virtio_transport_common -m vmw_vsock_virtio_transport \
    -m ext4 -m crc32c_generic -m virtiofs -m virtio_pmem -m nd_pmem -f "$here/udhcpc.script:/etc/udhcpc.script" "${extra[@]}"
fi

printf 'KERNEL=%q\nVMLINUX=%q\nINITRD=%q\n' "$kernel" "$vmlinux" "$initrd"
