#!/usr/bin/env bash
# boot-arm64.sh - arm64 boot-time and memory-overhead benchmark (issue #13):
# arcvm against qemu-system-aarch64 -M virt with KVM, booting the same
# Debian arm64 kernel and busybox initramfs, alternately, in one nested run:
# inside the outer qemu-system-aarch64 TCG guest of
# tests/harness/nested-arm64.sh, where /dev/kvm works with an in-kernel
# GICv3. Prints a markdown table.
#
# Usage: bench/boot-arm64.sh [-n BOOTS] [-H]
#   -H  guest RAM on 2 MiB huge pages in both VMMs (arcvm --huge-pages 2M,
#       QEMU memory-backend-memfd hugetlb=on; the outer guest reserves a
#       pool): the nested KVM then maps guest RAM in 2 MiB blocks
#
# Measured per boot (bench/boot-arm64-job.sh, in the outer guest):
#  - start -> init: from just before the VMM process is spawned to the moment
#    the guest's /init prints its marker line on the serial console
#    (/proc/uptime of the outer guest, 10 ms steps);
#  - VMM overhead: the VMM's resident memory minus guest RAM, sampled when
#    the marker arrives, two ways: VmRSS - RssShmem (/proc/PID/status, as
#    bench/boot.sh) and Pss - Pss_Shmem (/proc/PID/smaps_rollup). Both VMMs
#    get guest RAM from a memfd (QEMU: memory-backend-memfd), so guest pages
#    are shared memory in both and drop out the same way;
#  - arcvm's --boot-timer (VMM start to init's boot-timer byte), for arcvm
#    only: QEMU's virt machine has RAM where Firecracker's boot timer sits.
# 2 vCPUs, 256 MiB, `quiet`; one warm-up boot of each VMM first (not
# counted), then BOOTS rounds, the VMM that goes first alternating.
#
# The outer guest is busybox only: QEMU is Debian's qemu-system-arm:arm64
# with the shared libraries it needs, downloaded (apt-get download) and
# unpacked into $ARCVM_CACHE/arm64 (default build/cache/arm64), reduced to
# the binary, the libraries its ELF closure names and the dynamic loader,
# and put into the outer guest at /qemu (nested-arm64.sh -f). No firmware or
# ROMs: -kernel direct boot with -nodefaults loads none. The first run
# spends minutes on this (an apt-cache call per package; about 5-9 minutes
# on the shared 2-CPU machine); later runs reuse the tree.
# ARCVM_BENCH_ARM64_LOG=FILE tabulates a saved run's output instead.
# Not part of `make test`: `make bench-arm64`.
set -euo pipefail
cd "$(dirname "$0")/.."
prog=boot-arm64.sh
die() { echo "$prog: $*" >&2; exit 1; }
n=5 huge=0
while getopts 'n:H' o; do
  case $o in n) n=$OPTARG ;; H) huge=1 ;; *) exit 2 ;; esac
done
[[ $n =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive count, got '$n'"
arcvm=${ARCVM_ARM64_BIN:-build-arm64/arcvm}
[ -x "$arcvm" ] || die "$arcvm is missing: make cross-arm64"
readelf=$(command -v aarch64-linux-gnu-readelf || command -v readelf) ||
  die "no readelf (binutils): scripts/install-deps.sh --arm64"

cache=${ARCVM_CACHE:-build/cache}/arm64

# fetch PACKAGE: the unpacked arm64 .deb's directory (tests/harness/arm64-fetch.sh).
fetch() { tests/harness/arm64-fetch.sh "$1" || die "cannot get $1:arm64 (see above)"; }
# deps PACKAGE: the arm64 packages PACKAGE (Pre-)Depends on, one a line
# (virtual packages and alternatives' providers left out).
deps() {
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$1:arm64" 2>/dev/null |
    awk '/^ *\|?(Pre)?Depends: [^<]/ {print $2}' | sed -n 's/:arm64$//p'
}
needed() { "$readelf" -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }

qver=$(apt-cache policy qemu-system-arm:arm64 | awk '/Candidate:/ {print $2}')
[ -n "$qver" ] && [ "$qver" != '(none)' ] ||
  die "no qemu-system-arm:arm64 in the package lists: dpkg --add-architecture arm64 && apt-get update"
tree=$cache/qemu-tree_${qver//:/_}
if [ ! -f "$tree/.complete" ]; then
  echo "$prog: assembling qemu-system-aarch64 $qver and its libraries in $tree" >&2
  rm -rf -- "$tree"
  # Breadth-first over Depends, one level at a time, only while the ELF
  # closure still names a library no unpacked package has. qemu-system-common
  # (helpers) and qemu-system-data (ROMs, keymaps) are not needed to boot a
  # kernel directly.
  declare -A have=()
  frontier=(qemu-system-arm libc6)
  while :; do
    dirs=()
    for p in "${frontier[@]}"; do have[$p]=$(fetch "$p"); done
    for p in "${!have[@]}"; do dirs+=("${have[$p]}"); done
    # soname -> file, over every unpacked package's multiarch library dirs
    declare -A lib=()
    while IFS= read -r f; do
      b=${f##*/}; [ -n "${lib[$b]:-}" ] || lib[$b]=$f
    done < <(find "${dirs[@]}" -path '*/aarch64-linux-gnu/*' -name '*.so*' \( -type f -o -type l \) | sort)
    qbin=${have[qemu-system-arm]}/usr/bin/qemu-system-aarch64
    [ -f "$qbin" ] || die "no usr/bin/qemu-system-aarch64 in qemu-system-arm:arm64"
    declare -A done_=() ; todo=("$qbin") missing=()
    while [ ${#todo[@]} -gt 0 ]; do
      f=${todo[0]}; todo=("${todo[@]:1}")
      for s in $(needed "$f"); do
        [ -z "${done_[$s]:-}" ] || continue
        done_[$s]=1
        if [ -n "${lib[$s]:-}" ]; then todo+=("${lib[$s]}"); else missing+=("$s"); fi
      done
    done
    [ ${#missing[@]} -gt 0 ] || break
    next=()
    for p in "${frontier[@]}"; do # only the newly unpacked ones' Depends
      for d in $(deps "$p"); do
        case $d in qemu-system-common|qemu-system-data) continue ;; esac
        [ -n "${have[$d]:-}" ] || next+=("$d")
      done
    done
    [ ${#next[@]} -gt 0 ] || die "no package provides ${missing[*]}"
    mapfile -t frontier < <(printf '%s\n' "${next[@]}" | sort -u)
    unset lib done_
  done
  mkdir -p "$tree/bin" "$tree/lib"
  cp -- "$qbin" "$tree/bin/"
  for s in "${!done_[@]}"; do cp -L -- "${lib[$s]}" "$tree/lib/$s"; done
  ldso=${lib[ld-linux-aarch64.so.1]:-}
  [ -n "$ldso" ] || die "no ld-linux-aarch64.so.1 in libc6:arm64"
  [ -f "$tree/lib/ld-linux-aarch64.so.1" ] || cp -L -- "$ldso" "$tree/lib/"
  echo "$qver" >"$tree/.complete"
fi
echo "$prog: qemu tree: $(du -sh "$tree" | cut -f1) ($(ls "$tree/lib" | wc -l) libraries)" >&2

out=$(mktemp /tmp/arcvm-bench-arm64.XXXXXX)
trap 'rm -f "$out" "$out.conf"' EXIT
printf 'BENCH_N=%s\nBENCH_HUGE=%s\n' "$n" "$huge" >"$out.conf"
export ARCVM_ARM64_BIN=$arcvm
# Outer run: ~15 s to boot, a warm-up pair, then per round an arcvm boot
# (~10 s) and a QEMU boot; generous so that a loaded machine does not kill it.
if [ -n "${ARCVM_BENCH_ARM64_LOG:-}" ]; then
  # Tabulate a saved run's output (this script's stdout) instead of running.
  cp -- "$ARCVM_BENCH_ARM64_LOG" "$out"
else
  status=0
  tests/harness/nested-arm64.sh --timeout $((600 + n * 120)) -f "$tree:/qemu" \
    -f "$out.conf:/bench.conf" bench/boot-arm64-job.sh |
    tee "$out" || status=$?
  [ "$status" = 0 ] || die "the nested run failed (status $status)"
fi

# Job lines: "BENCH arcvm|qemu MS RSS_KIB PSS_KIB BOOT_TIMER_MS EXIT_MS BUILT_MS"
# (NA where none).
sel() { awk -v v="$1" '$1 == "BENCH" && $2 == v {print $3, $4, $5, $6, $7, $8}' "$out"; }
. bench/lib.sh
sel arcvm >"$out.arcvm"; sel qemu >"$out.qemu"
trap 'rm -f "$out" "$out.conf" "$out.arcvm" "$out.qemu" "$out.setup"' EXIT
row() { # row LABEL FILE
  echo "| $1 | $(bench_median "$2" 1) | $(bench_minmax "$2" 1) | $(bench_median "$2" 4) | $(bench_median "$2" 2) | $(bench_minmax "$2" 2) | $(bench_median "$2" 3) | $(bench_minmax "$2" 3) |"
}
info() { sed -n "s/^BENCHINFO $1 //p" "$out" | head -n1; }
am=$(bench_median "$out.arcvm" 1) qm=$(bench_median "$out.qemu" 1)
ak=$(bench_median "$out.arcvm" 2) qk=$(bench_median "$out.qemu" 2)
ap=$(bench_median "$out.arcvm" 3) qp=$(bench_median "$out.qemu" 3)
echo
echo "arm64 boot: $(info kernel) kernel, busybox initramfs, 2 vCPUs, 256 MiB ($(info ram)), quiet; $(wc -l <"$out.arcvm")/$(wc -l <"$out.qemu") boots; $(date -u +%Y-%m-%d)"
echo "Where: nested qemu-system-aarch64 TCG guest ($(info outer)) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) host CPUs"
echo
echo "| VMM | start -> init, median ms | min/max ms | boot timer, median ms | RSS - RssShmem, median KiB | min/max KiB | Pss - Pss_Shmem, median KiB | min/max KiB |"
echo "|---|---|---|---|---|---|---|---|"
row "arcvm $(info arcvm)" "$out.arcvm"
row "QEMU $(info qemu) virt, KVM" "$out.qemu"
echo
echo "Spawn to VMM exit (the guest powers off 1 s after its marker), median: arcvm $(bench_median "$out.arcvm" 5) ms, QEMU $(bench_median "$out.qemu" 5) ms."
awk '$1 == "SETUP" {print $3}' "$out" >"$out.setup"
[ ! -s "$out.setup" ] || echo "Setup before the guest's first instruction, median: arcvm's VM built $(bench_median "$out.arcvm" 6) ms after its start; QEMU with -S, spawn to exit at once: $(bench_median "$out.setup" 1) ms ($(bench_minmax "$out.setup" 1), $(wc -l <"$out.setup") runs)."
if [ "$am" != NA ] && [ "$qm" != NA ] && [ "$qk" != NA ] && [ "$qk" -gt 0 ] && [ "$qp" -gt 0 ]; then
  echo
  awk -v a="$am" -v q="$qm" -v ak="$ak" -v qk="$qk" -v ap="$ap" -v qp="$qp" \
    'BEGIN {printf "arcvm/QEMU: boot time %.2fx, memory overhead %.2fx (RSS), %.2fx (Pss)\n", a / q, ak / qk, ap / qp}'
fi
# Per round (its arcvm and QEMU boots ran back to back, so under about the
# same load): arcvm's time over QEMU's.
awk '$1 == "BENCH" && $3 != "NA" {v[NR] = $2; t[NR] = $3; k[++m] = NR}
     END {for (i = 1; i < m; i += 2) {a = k[i]; b = k[i + 1]; if (v[a] == v[b]) continue
            r = v[a] == "arcvm" ? t[a] / t[b] : t[b] / t[a]; printf "%.2f\n", r}}' "$out" |
  sort -n | awk '{r[NR] = $1} END {if (NR) printf "Per round, arcvm/QEMU boot time: median %s, min/max %s/%s (%d rounds)\n", r[int((NR + 1) / 2)], r[1], r[NR], NR}'
