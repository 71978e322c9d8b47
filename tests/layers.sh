#!/usr/bin/env bash
# layers.sh - arcvm's layer order, written once, and a check that every
# #include in src/ points down it (or inside its own folder). Prints each
# include that points up or sideways and exits 1 if there is any.
#
#   rank  folders          what they are
#   0     base             logging, guest memory, buses, IRQ lines, event loop, console
#   1     hv               the hypervisor abstraction and its KVM backend
#   2     host             host back ends: disks, TAP, user-mode net, kernel cache
#   3     hw virtio        devices (legacy, virtio), side by side, never each other
#   4     arch             machines: boot protocols, firmware tables, platform devices
#   5     vmm              the VM object: lifecycle, vCPU threads, wiring
#   6     lib              the public library (include/arcvm.h)
#   7     api              the Firecracker-compatible control plane
#   8     cli              the arcvm command
#   -     netuser          arcvm-net-user, a program of its own: it includes only
#                          itself; host/ may include its protocol header
#   -     jailer           arcvm-jailer, a program of its own: it includes only
#                          itself
# A front end (api, cli) reaches the VM only through the library: besides
# its own folder it includes "arcvm.h" and, for cli, api/ and lib/internal.h.
set -euo pipefail
cd "$(dirname "$0")/.."

rank() {
  case $1 in
    base) echo 0 ;; hv) echo 1 ;; host) echo 2 ;; hw | virtio) echo 3 ;; arch) echo 4 ;;
    vmm) echo 5 ;; lib) echo 6 ;; api) echo 7 ;; cli) echo 8 ;; netuser | jailer) echo 99 ;;
    *) echo -1 ;;
  esac
}

bad=0 n=0
while IFS=: read -r file line text; do
  n=$((n + 1))
  from=${file#src/}; from=${from%%/*}
  inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$text")
  to=${inc%%/*}
  [ "$inc" != arcvm.h ] || to=lib
  ok=0
  if [ "$to" = "$from" ]; then
    ok=1
  elif [ "$from" = netuser ] || [ "$from" = jailer ]; then
    ok=0
  elif [ "$inc" = netuser/protocol.h ] && [ "$from" = host ]; then
    ok=1
  elif [ "$from" = api ] || [ "$from" = cli ]; then
    case $inc in
      arcvm.h) ok=1 ;;
      api/*) [ "$from" = cli ] && ok=1 ;;
      lib/internal.h) [ "$from" = cli ] && ok=1 ;;
    esac
  else
    rf=$(rank "$from") rt=$(rank "$to")
    [ "$rt" -ge 0 ] && [ "$rf" -ge 0 ] && [ "$rt" -lt "$rf" ] && ok=1
  fi
  if [ $ok = 0 ]; then
    echo "layers: $file:$line includes \"$inc\" ($from may not use $to)"
    bad=$((bad + 1))
  fi
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' src --include='*.c' --include='*.h')

if [ $bad -gt 0 ]; then
  echo "layers: $bad of $n includes point up or sideways (the order is in tests/layers.sh)"
  exit 1
fi
echo "layers: all $n includes in src/ point down or stay in their folder"
