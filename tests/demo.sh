#!/usr/bin/env bash
# demo.sh - `make demo`: boot the default guest (the stock Debian kernel and a
# busybox initramfs, built on the fly and cached). On a terminal you get the
# guest's shell (type `poweroff` or Ctrl-A x to leave); otherwise the guest
# prints its kernel version, CPU count and memory and powers off.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(tests/guest/images.sh)"
[ -x build/arcvm ] || { echo "demo: build/arcvm is missing: run make first" >&2; exit 1; }

if [ -t 0 ] && [ -t 1 ]; then
  mode=shell
  echo "demo: booting an interactive guest; leave with 'poweroff' or Ctrl-A x" >&2
else
  mode=demo
  echo "demo: booting the demo guest (no terminal: it reports and powers off)" >&2
fi
args=(run --kernel "$KERNEL" --initrd "$INITRD" --cpus 2 --memory 512M
      --cmdline "quiet arcvm.mode=$mode" --boot-timer)
# nested.sh runs it directly when `arcvm check` says this host's KVM can run
# a stock guest, and otherwise inside a nested QEMU/TCG guest that has one
# (slow: about a minute); it says which and why.
exec tests/harness/nested.sh -- build/arcvm "${args[@]}"
