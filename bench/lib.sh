# lib.sh - what the benchmark scripts share (sourced by bash).
#
# bench_enter NAME TIMEOUT_S ARGS...: outside (the first run), builds the
#   test guest's kernel and initramfs, checks that arcvm and QEMU are there,
#   then runs the calling script again with ARGS where KVM runs stock guests:
#   directly or in the nested QEMU/TCG guest, as tests/harness/nested.sh
#   decides with `arcvm check` (it says which and why). Inside, it returns
#   at once; ARCVM_BENCH_KERNEL and ARCVM_BENCH_INITRD name the guest.
# bench_median FILE COLUMN: the median of a column's numbers ("NA" skipped).
# bench_minmax FILE COLUMN: "min/max" of a column's numbers.

bench_enter() {
  local name=$1 tmo=$2; shift 2
  [ -z "${ARCVM_BENCH_INNER:-}" ] || return 0
  eval "$(tests/guest/images.sh)"
  [ -x build/arcvm ] || { echo "$name: build first (make)" >&2; exit 1; }
  command -v qemu-system-x86_64 >/dev/null ||
    { echo "$name: qemu-system-x86_64 missing; run scripts/install-deps.sh" >&2; exit 1; }
  export ARCVM_BENCH_INNER=1 ARCVM_BENCH_KERNEL=${ARCVM_BENCH_KERNEL:-$KERNEL}
  export ARCVM_BENCH_INITRD=${ARCVM_BENCH_INITRD:-$INITRD}
  exec tests/harness/nested.sh --timeout "$tmo" -- "bench/${0##*/}" "$@"
}

bench_median() {
  awk -v c="$2" '$c != "NA" {print $c}' "$1" | sort -n |
    awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'
}

bench_minmax() {
  awk -v c="$2" '$c != "NA" {print $c}' "$1" | sort -n | sed -n '1p;$p' | paste -sd/ -
}
