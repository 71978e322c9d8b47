#!/usr/bin/env bash
# fs.sh - shared directories: arcvm's virtio-fs against QEMU's virtio-9p
# (the file sharing QEMU's microvm has without an external virtiofsd),
# same guest kernel and initramfs, same host directory on the same tmpfs,
# in one run on one machine. The guest (bench/fsbench.c) runs, on the
# mounted share: a sequential write then read of one file (1 MiB calls,
# the guest's page cache dropped in between), 4 KiB random reads of it for
# SECONDS (O_DIRECT where the file system takes it, one at a time),
# creating FILES files of 1 KiB then stat()ing each with cold caches, and
# unpacking a source tarball (about 8 MiB: arcvm's own tree, three times).
# virtio-fs: `mount -t virtiofs`; 9p: `mount -t 9p -o trans=virtio,
# version=9p2000.L,msize=512000` (QEMU's -fsdev local, security_model=none).
#
# Usage: bench/fs.sh [-n ROUNDS] [-m MIB] [-f FILES] [-s SECONDS]
#        (defaults: 1 round, 256 MiB, 10000 files, 5 s)
set -euo pipefail
cd "$(dirname "$0")/.."
n=1 mib=256 files=10000 secs=5
while getopts 'n:m:f:s:' o; do
  case $o in n) n=$OPTARG ;; m) mib=$OPTARG ;; f) files=$OPTARG ;; s) secs=$OPTARG ;; *) exit 2 ;; esac
done

# ---- outside: build the guest image, then go where /dev/kvm works ----------
if [ -z "${ARCVM_BENCH_INNER:-}" ]; then
  [ -x build/arcvm ] && [ -x build/fsbench ] || { echo "fs.sh: build first (make)" >&2; exit 1; }
  command -v qemu-system-x86_64 >/dev/null ||
    { echo "fs.sh: qemu-system-x86_64 missing; run scripts/install-deps.sh" >&2; exit 1; }
  eval "$(tests/guest/images.sh)"
  cache=${ARCVM_CACHE:-$PWD/build/cache}
  ver=$(tests/guest/kernel.sh --version)
  # The guest's /init (rdinit=): mount the share as fsbench.fs= says, run
  # the measurements, power off. Lines starting with FSBENCH are for us.
  guest_init=$(cat <<'GUEST'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
/bin/load-modules >/dev/null 2>&1
fs=virtiofs mib=256 files=10000 secs=5
for arg in $(cat /proc/cmdline); do
  case $arg in
    fsbench.fs=*) fs=${arg#*=} ;; fsbench.mib=*) mib=${arg#*=} ;;
    fsbench.files=*) files=${arg#*=} ;; fsbench.secs=*) secs=${arg#*=} ;;
  esac
done
mkdir -p /mnt
if [ "$fs" = 9p ]; then
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 bench /mnt
else
  mount -t virtiofs bench /mnt
fi || { echo "FSBENCH-FAIL mount"; poweroff -f; }
echo "FSBENCH-START $fs"
fsbench seqwrite /mnt/big "$mib"
echo 3 >/proc/sys/vm/drop_caches
fsbench seqread /mnt/big
fsbench randread /mnt/big "$secs"
fsbench create /mnt/many "$files"
mkdir /mnt/untar && fsbench time untar tar -xf /mnt/src.tar -C /mnt/untar
sync
echo "FSBENCH-DONE"
poweroff -f
GUEST
)
  key=$( { echo "$guest_init"; cat tests/guest/mkinitramfs.sh build/fsbench; echo "$ver"; } |
         sha256sum | cut -c1-12)
  initrd=$cache/fsbench-initrd-$ver-$key.cpio.gz
  if [ ! -s "$initrd" ]; then
    echo "fs.sh: building the guest initramfs with fsbench, virtiofs and 9p" >&2
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    printf '%s\n' "$guest_init" >"$stage/fsbench-init"
    chmod 755 "$stage/fsbench-init"
    tests/guest/mkinitramfs.sh -o "$initrd" -i "$stage/fsbench-init" \
      -m virtio_mmio -m virtiofs -m 9p -m 9pnet_virtio \
      -f "$PWD/build/fsbench:/bin/fsbench"
    find "$cache" -maxdepth 1 -name 'fsbench-initrd-*' ! -name "${initrd##*/}" -delete
  fi
  # The ELF vmlinux through PVH (both VMMs boot it): no decompression under TCG.
  export ARCVM_BENCH_INNER=1 ARCVM_BENCH_KERNEL=$VMLINUX ARCVM_BENCH_INITRD=$initrd
  exec tests/harness/nested.sh --timeout $((600 + 2 * n * 900)) -- \
    bench/fs.sh -n "$n" -m "$mib" -f "$files" -s "$secs"
fi

# ---- inside: a host with /dev/kvm ------------------------------------------
kernel=$ARCVM_BENCH_KERNEL initrd=$ARCVM_BENCH_INITRD
tmp=$(mktemp -d /tmp/arcvm-fsbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
logs=$PWD/build/fsbench-logs
rm -rf "$logs"; mkdir -p "$logs"
# Private copy: a rebuild in the work tree during the run changes nothing.
cp build/arcvm "$tmp/arcvm"

# The tarball: arcvm's sources, three times over, uncompressed (the guest
# then measures the file system, not gunzip).
mkdir "$tmp/tree"
for i in 1 2 3; do
  mkdir "$tmp/tree/copy$i"
  cp -r src tests include docs "$tmp/tree/copy$i/"
done
tar -cf "$tmp/src.tar" -C "$tmp/tree" .
rm -rf "$tmp/tree"
tar_entries=$(tar -tf "$tmp/src.tar" | grep -vc '/$' || true)

extra="quiet fsbench.mib=$mib fsbench.files=$files fsbench.secs=$secs"
cmdline="console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 $extra"

# run_vmm NAME CMD...: a fresh share holding the tarball, the VM on it;
# appends its 7 values (NA where a step failed) as one line to $tmp/NAME.
run_vmm() {
  local name=$1; shift
  local share=$tmp/share-$name
  rm -rf "$share"; mkdir "$share"
  cp "$tmp/src.tar" "$share/"
  local rc=0
  timeout 900 "$@" </dev/null 2>"$tmp/err-$name" | tr -d '\r' >"$tmp/out-$name" || rc=$?
  # Each VM's console and errors are kept for reading afterwards.
  cp "$tmp/out-$name" "$logs/$name-$i.out" 2>/dev/null || true
  cp "$tmp/err-$name" "$logs/$name-$i.err" 2>/dev/null || true
  local v=() k
  for k in seq_write_mibs seq_read_mibs rand_read_iops create_per_s stat_per_s untar_s; do
    v+=("$(awk -v k="$k" '$1 == "FSBENCH" && $2 == k {print $3}' "$tmp/out-$name" | tail -1)")
  done
  local got=0
  [ -d "$share/untar" ] && got=$(find "$share/untar" -type f | wc -l)
  if [ "$got" != "$tar_entries" ]; then
    echo "fs.sh: $name: the guest unpacked $got of $tar_entries files" >&2
    v[5]=""
  fi
  echo "fs.sh: $name: random reads were $(awk '$2 == "rand_read_iops" {print $4}' "$tmp/out-$name")" >&2
  grep -q '^FSBENCH-DONE' "$tmp/out-$name" ||
    { echo "fs.sh: $name did not finish (status $rc); its output and errors ($logs):" >&2
      tail -n 5 "$tmp/out-$name" "$tmp/err-$name" | sed 's/^/  /' >&2 || true; }
  local line="" x
  for x in "${v[@]}"; do line+="${x:-NA} "; done
  echo "$line" >>"$tmp/res-$name"
  rm -rf "$share"
}

arcvm_cmd=("$tmp/arcvm" run --kernel "$kernel" --initrd "$initrd" --memory 512M
           --share "$tmp/share-arcvm:bench" --cmdline "$extra fsbench.fs=virtiofs")
qemu_cmd=(qemu-system-x86_64 -M microvm,accel=kvm -cpu host -smp 1 -m 512M
          -nodefaults -no-user-config -nographic -no-reboot
          -global virtio-mmio.force-legacy=false
          -fsdev "local,id=fs0,path=$tmp/share-qemu,security_model=none"
          -device virtio-9p-device,fsdev=fs0,mount_tag=bench
          -chardev stdio,id=con -serial chardev:con
          -kernel "$kernel" -initrd "$initrd" -append "$cmdline fsbench.fs=9p")

echo "fs.sh: $n round(s): $mib MiB, $files files, ${secs}s random reads, a $(($(stat -c %s "$tmp/src.tar") >> 20)) MiB tarball of $tar_entries files" >&2
for i in $(seq "$n"); do
  run_vmm arcvm "${arcvm_cmd[@]}"
  run_vmm qemu "${qemu_cmd[@]}"
  echo "fs.sh: round $i/$n: arcvm $(tail -1 "$tmp/res-arcvm") | qemu $(tail -1 "$tmp/res-qemu")" >&2
done

median() { awk -v c="$2" '$c != "NA" {print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {if (!NR) print "NA"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
qemu_ver=$(qemu-system-x86_64 --version | head -1 | sed 's/^QEMU emulator version //')
rows=("sequential write, MiB/s" "sequential read (cold guest cache), MiB/s"
      "4 KiB random reads, one at a time, IOPS" "create $files files of 1 KiB, files/s"
      "stat $files files (cold guest cache), files/s" "unpack a $tar_entries-file tarball, s")
echo
echo "Shared directory on the host's tmpfs, guest: 1 vCPU, 512 MiB; medians of $n; $(date -u +%Y-%m-%d)"
echo "Where: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs${ARCVM_IN_NESTED_GUEST:+ (nested QEMU/TCG guest)}"
echo
echo "| measurement | arcvm $("$tmp/arcvm" --version | cut -d' ' -f2) virtio-fs | QEMU $qemu_ver microvm virtio-9p |"
echo "|---|---|---|"
for c in 1 2 3 4 5 6; do
  echo "| ${rows[$((c - 1))]} | $(median "$tmp/res-arcvm" "$c") | $(median "$tmp/res-qemu" "$c") |"
done
