#!/usr/bin/env bash
# net.sh - virtio-net and virtio-vsock throughput: arcvm against QEMU's
# microvm, same guest kernel and initramfs, same TAP setup, in one run on
# one machine.
#
# TCP: iperf3 in the guest is the client of an `iperf3 -s` on the host,
# once sending (guest->host) and once with -R (host->guest), each for
# SECONDS; the figure is iperf3's receiver-side Mbit/s. The NIC is a TAP
# "tapb" (host 192.168.100.1/24, guest 192.168.100.2); arcvm: --net tap=tapb;
# QEMU: -netdev tap,vhost=off (its userspace data path, as arcvm's), plus an
# extra row with vhost=on (in-kernel vhost-net) when /dev/vhost-net exists.
# vsock: build/vsock-tool moves 256 MiB each way and the receiving end
# reports MiB/s; both ends' checksums are compared. arcvm's vsock is hybrid
# (Firecracker's Unix sockets); QEMU has only vhost-vsock (in-kernel),
# where the host uses AF_VSOCK. The guest image (iperf3 and vsock-tool
# added) is built here and cached in build/cache.
#
# Usage: bench/net.sh [-n ROUNDS] [-s SECONDS]
# A VM still running after 420 + 2*SECONDS s (ARCVM_NETBENCH_LIMIT) is shown
# (console, VMM threads' state and kernel stacks), then killed.
# shellcheck disable=SC2054 # commas inside QEMU option values are intended
set -euo pipefail
cd "$(dirname "$0")/.."
n=3 secs=5
while getopts 'n:s:' o; do
  case $o in n) n=$OPTARG ;; s) secs=$OPTARG ;; *) exit 2 ;; esac
done
[[ $n =~ ^[1-9][0-9]*$ && $secs =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/net.sh [-n ROUNDS] [-s SECONDS]" >&2; exit 2; }
vsock_mib=256

# ---- outside: build the guest image, then go where /dev/kvm works ----------
if [ -z "${ARCVM_BENCH_INNER:-}" ]; then
  if [ ! -x build/arcvm ] || [ ! -x build/vsock-tool ]; then echo "net.sh: build first (make)" >&2; exit 1; fi
  for p in iperf3 qemu-system-x86_64 ip; do
    command -v $p >/dev/null || { echo "net.sh: $p missing; run scripts/install-deps.sh" >&2; exit 1; }
  done
  eval "$(tests/guest/images.sh)"
  cache=${ARCVM_CACHE:-$PWD/build/cache}
  ver=$(tests/guest/kernel.sh --version)
  # The guest half of the benchmark: /bin/netbench, started by init.sh's
  # arcvm.mode=netbench. Lines starting with NETBENCH are for the host.
  guest_script=$(cat <<'EOF'
#!/bin/sh
# netbench SECS - the guest side of bench/net.sh
secs=${1:-5} host=192.168.100.1 mib=@VSOCK_MIB@
# iperf3's receiver line ("... 943 Mbits/sec ... receiver"), or its output
mbits() {
  awk '/receiver$/ {for (i = 2; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1)}
       {out = out " | " $0}
       END {if (v != "") print v; else print "NA" substr(out, 1, 600)}'
}
i=0
while ! ping -c 1 -W 1 "$host" >/dev/null 2>&1 && [ $i -lt 20 ]; do i=$((i + 1)); done
echo "NETBENCH tcp_g2h $(timeout $((secs + 60)) iperf3 -c "$host" -t "$secs" -f m 2>&1 | mbits)"
echo "NETBENCH tcp_h2g $(timeout $((secs + 60)) iperf3 -c "$host" -t "$secs" -f m -R 2>&1 | mbits)"
# vsock guest->host: the host's sink listens on port 5001 (arcvm: <uds>_5001)
echo "NETBENCH vsock_g2h $(timeout 120 vsock-tool -t 30 connect-host 5001 source ${mib}M 2>&1 | tr '\n' ' ')"
# vsock host->guest: the host connects to port 5000 once it sees the marker
echo "NETBENCH-VSOCK-LISTEN"
echo "NETBENCH vsock_h2g $(timeout 120 vsock-tool listen 5000 sink 2>&1 | tr '\n' ' ')"
echo "NETBENCH-DONE"
EOF
)
  guest_script=${guest_script//@VSOCK_MIB@/$vsock_mib}
  key=$( { echo "$guest_script"; cat tests/guest/init.sh tests/guest/mkinitramfs.sh bench/net.sh \
           /usr/bin/iperf3 build/vsock-tool; echo "$ver"; } | sha256sum | cut -c1-12)
  initrd=$cache/netbench-initrd-$ver-$key.cpio.gz
  if [ ! -s "$initrd" ]; then
    echo "net.sh: building the guest initramfs with iperf3 and vsock-tool" >&2
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    printf '%s\n' "$guest_script" >"$stage/netbench"
    chmod 755 "$stage/netbench"
    tests/guest/mkinitramfs.sh -o "$initrd" -i tests/guest/init.sh \
      -m virtio_mmio -m virtio_net \
      -m vsock -m vmw_vsock_virtio_transport_common -m vmw_vsock_virtio_transport \
      -f "$stage/netbench:/bin/netbench" -f "$PWD/build/vsock-tool:/bin/vsock-tool" \
      -b /usr/bin/iperf3
    find "$cache" -maxdepth 1 -name 'netbench-initrd-*' ! -name "${initrd##*/}" -delete
  fi
  # The ELF vmlinux through PVH (both VMMs boot it): no decompression under TCG.
  export ARCVM_BENCH_INNER=1 ARCVM_BENCH_KERNEL=$VMLINUX ARCVM_BENCH_INITRD=$initrd
  # The outer guest's deadline: a VM takes about a minute; this allows
  # 150 s + 4 * SECONDS on average. Results so far are on stderr anyway.
  exec tests/harness/nested.sh --timeout $((600 + 3 * n * (150 + 4 * secs))) -- bench/net.sh -n "$n" -s "$secs"
fi

# ---- inside: a host with /dev/kvm ------------------------------------------
kernel=$ARCVM_BENCH_KERNEL initrd=$ARCVM_BENCH_INITRD
tap=tapb hostip=192.168.100.1 guestip=192.168.100.2
tmp=$(mktemp -d /tmp/arcvm-netbench.XXXXXX)
pids=()
cleanup() {
  # Only what this script started, by pid.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  # A VMM that survived SIGKILL cannot be waited for: leave it.
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || wait "$p" 2>/dev/null || true; done
  ip link del "$tap" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# Private copies: a rebuild in the work tree during the run changes nothing.
mkdir "$tmp/bin"
cp build/arcvm build/vsock-tool "$tmp/bin/"
arcvm=$tmp/bin/arcvm vt=$tmp/bin/vsock-tool

ip link del "$tap" 2>/dev/null || true
ip tuntap add "$tap" mode tap
ip addr add "$hostip/24" dev "$tap"
ip link set "$tap" up

vhost_net=0 vhost_vsock=0
modprobe vhost_net 2>/dev/null || true
modprobe vhost_vsock 2>/dev/null || true
[ -c /dev/vhost-net ] && vhost_net=1
[ -c /dev/vhost-vsock ] && vhost_vsock=1
[ $vhost_vsock = 1 ] || echo "net.sh: no /dev/vhost-vsock: QEMU runs without vsock" >&2

extra="quiet arcvm.mode=netbench arcvm.benchsecs=$secs arcvm.ip=$guestip/24"
cmdline="console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 $extra"
uds=$tmp/v.sock

arcvm_cmd=("$arcvm" run --kernel "$kernel" --initrd "$initrd" --memory 256M --cpus 1
           --net "tap=$tap" --vsock "cid=3,uds=$uds" --cmdline "$extra")
qemu_base=(qemu-system-x86_64 -M microvm,accel=kvm -cpu host -smp 1 -m 256M
           -nodefaults -no-user-config -nographic -no-reboot
           -global virtio-mmio.force-legacy=false
           -device virtio-net-device,netdev=n0
           -chardev stdio,id=con -serial chardev:con
           -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
           # -no-reboot makes a guest reset (a triple fault) end QEMU with
           # status 0, as a power-off does; the reset log tells them apart.
           -d cpu_reset -D "$tmp/qemu-resets.log")
[ $vhost_vsock = 0 ] || qemu_base+=(-device vhost-vsock-device,guest-cid=3)
qemu_cmd=("${qemu_base[@]}" -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=off")
qemu_vhost_cmd=("${qemu_base[@]}" -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=on")

# mibps=R from a vsock-tool line, if it received all the bytes
vsock_rate() {
  sed -n "s/.*recv=$((vsock_mib << 20)) .*mibps=\([0-9.]*\).*/\1/p" | head -1 | grep . || echo NA
}
# fnv FIELD: that checksum (sent_fnv or recv_fnv) from a vsock-tool line
fnv() { sed -n "s/.* $1=\([0-9a-f]*\) .*/\1/p" | head -1; }
# vsock_check RATE SENT_FNV RECV_FNV DIRECTION: RATE, or NA if the data differ
vsock_check() {
  if [ "$1" != NA ] && [ -n "$2" ] && [ -n "$3" ] && [ "$2" != "$3" ]; then
    echo "net.sh: vsock $4: CORRUPT DATA: sent_fnv=$2 recv_fnv=$3" >&2; echo NA
  else
    echo "$1"
  fi
}

# A VM that has not powered off after this many seconds is stuck: every
# step in the guest has its own timeout, which this covers with room.
limit=${ARCVM_NETBENCH_LIMIT:-$((420 + 2 * secs))}

# diagnose PID: what the VMM's threads are doing (for a VM that is stuck)
diagnose() {
  local t ticks0=() i=0
  for t in /proc/"$1"/task/*; do ticks0+=("$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)"); done
  sleep 1
  for t in /proc/"$1"/task/*; do
    echo "  thread $(basename "$t") $(cat "$t/comm" 2>/dev/null): state $(awk '{print $3}' "$t/stat" 2>/dev/null)," \
         "CPU ticks in 1s: $(( $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0) - ${ticks0[i]:-0} ))," \
         "wchan $(cat "$t/wchan" 2>/dev/null), syscall $(cut -d' ' -f1 "$t/syscall" 2>/dev/null)"
    head -6 "$t/stack" 2>/dev/null | sed 's/^/      /'
    i=$((i + 1))
  done
}

# handle LINE: one console line of the running VM
handle() {
  local line=${1%$'\r'}
  printf '%s\n' "$line" >>"$log"
  case $line in
    'NETBENCH tcp_g2h '*) g2h=${line#NETBENCH tcp_g2h } ;;
    'NETBENCH tcp_h2g '*) h2g=${line#NETBENCH tcp_h2g } ;;
    NETBENCH-VSOCK-LISTEN)
      if [ "$kind" = arcvm ]; then
        timeout 150 "$vt" -t 30 connect-guest "$uds" 5000 source "${vsock_mib}M" >"$tmp/src.out" 2>&1 &
        cpid=$!; pids+=("$cpid")
      elif [ $vhost_vsock = 1 ]; then
        timeout 150 "$vt" -t 30 connect-cid 3 5000 source "${vsock_mib}M" >"$tmp/src.out" 2>&1 &
        cpid=$!; pids+=("$cpid")
      fi ;;
    'NETBENCH vsock_g2h '*) gsent=$(printf '%s\n' "$line" | fnv sent_fnv) ;;
    'NETBENCH vsock_h2g '*)
      vh2g=$(printf '%s\n' "$line" | vsock_rate)
      grecv=$(printf '%s\n' "$line" | fnv recv_fnv) ;;
  esac
}

# run_one NAME KIND CMD...: one boot; appends "g2h h2g vg2h vh2g" to
# $tmp/res.NAME. KIND is arcvm (hybrid vsock) or qemu (AF_VSOCK on this host).
# Returns 1 if the VMM could not be killed (then nothing more should run).
run_one() {
  local name=$1 kind=$2; shift 2
  local vm hpid spid cpid='' g2h=NA h2g=NA vg2h=NA vh2g=NA gsent='' grecv=''
  local chunk partial='' st fd t0=$SECONDS stage=0 next=$((SECONDS + limit)) rc=0 stuck=0
  log=$tmp/$name.log
  : >"$log"
  ip neigh flush dev "$tap" 2>/dev/null || true
  timeout $((limit + 60)) iperf3 -s -B "$hostip" >"$tmp/iperf3.out" 2>&1 &
  hpid=$!; pids+=("$hpid")
  : >"$tmp/sink.out"
  if [ "$kind" = arcvm ]; then
    rm -f "$uds" "${uds}_5001"
    timeout $((limit + 60)) "$vt" listen-unix "${uds}_5001" sink >"$tmp/sink.out" 2>&1 &
  elif [ $vhost_vsock = 1 ]; then
    timeout $((limit + 60)) "$vt" listen 5001 sink >"$tmp/sink.out" 2>&1 &
  else
    sleep 0 &
  fi
  spid=$!; pids+=("$spid")
  : >"$tmp/src.out"
  rm -f "$tmp/con"; mkfifo "$tmp/con"
  rm -f "$tmp/qemu-resets.log"
  "$@" </dev/null >"$tmp/con" 2>"$tmp/vm.err" &
  vm=$!; pids+=("$vm")
  exec {fd}<"$tmp/con"
  # Read the console until EOF; a VM past its time is shown, then killed
  # (TERM, then KILL); one that survives even that is left behind.
  while :; do
    st=0
    IFS= read -r -t 2 -u "$fd" chunk || st=$?
    if [ $st = 0 ]; then
      handle "$partial$chunk"; partial=''
      continue
    fi
    if [ $st -le 128 ]; then # EOF
      [ -z "$partial$chunk" ] || handle "$partial$chunk"
      break
    fi
    partial+=$chunk
    [ $SECONDS -ge $next ] || continue
    case $stage in
      0) echo "net.sh: $name: still running after ${limit}s; its console, stderr and threads:" >&2
         grep -v '^$' "$log" | tail -n 8 | sed 's/^/  console: /' >&2
         tail -n 5 "$tmp/vm.err" | sed 's/^/  stderr: /' >&2
         diagnose "$vm" >&2
         kill -TERM "$vm" 2>/dev/null || true; stage=1 next=$((SECONDS + 10)) ;;
      1) echo "net.sh: $name: SIGTERM did not end it; SIGKILL" >&2
         diagnose "$vm" >&2
         kill -KILL "$vm" 2>/dev/null || true; stage=2 next=$((SECONDS + 20)) ;;
      2) echo "net.sh: $name: pid $vm survives SIGKILL; giving up on this benchmark" >&2
         diagnose "$vm" >&2
         stuck=1; break ;;
    esac
  done
  exec {fd}<&-
  if [ $stuck = 0 ]; then wait "$vm" || rc=$?; else rc=124; fi
  # QEMU logs 2 CPU resets in a run that ends in a power-off.
  local resets; resets=$(grep -c 'CPU Reset' "$tmp/qemu-resets.log" 2>/dev/null || true)
  if [ "$kind" = qemu ] && [ "${resets:-0}" -gt 2 ]; then
    echo "net.sh: $name: the guest reset itself ($resets CPU resets logged, 2 in a clean run)" >&2
  fi
  if [ -n "$cpid" ]; then
    [ $stuck = 0 ] || kill "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
  fi
  # The sink has its bytes once the guest is gone; give it a moment, then stop it.
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$spid" 2>/dev/null || break; sleep 0.2; done
  kill "$hpid" "$spid" 2>/dev/null || true
  wait "$hpid" "$spid" 2>/dev/null || true
  pids=()
  [ $stuck = 0 ] || pids=("$vm")
  vg2h=$(vsock_check "$(vsock_rate <"$tmp/sink.out")" "$gsent" "$(fnv recv_fnv <"$tmp/sink.out")" "$name guest->host")
  vh2g=$(vsock_check "$vh2g" "$(fnv sent_fnv <"$tmp/src.out")" "$grecv" "$name host->guest")
  [[ $g2h =~ ^[0-9.]+$ ]] || g2h=NA
  [[ $h2g =~ ^[0-9.]+$ ]] || h2g=NA
  echo "$g2h $h2g $vg2h $vh2g" >>"$tmp/res.$name"
  echo "net.sh: round $round/$n: $name: $g2h $h2g $vg2h $vh2g ($((SECONDS - t0)) s, exit $rc)" >&2
  if [ $rc -ne 0 ] || grep -q NA <<<"$g2h $h2g $vg2h $vh2g"; then
    echo "net.sh: $name: exit $rc, results '$g2h $h2g $vg2h $vh2g'; its console, stderr and helpers:" >&2
    grep -v '^$' "$log" | tail -n 30 | sed 's/^/  console: /' >&2
    tail -n 5 "$tmp/vm.err" | sed 's/^/  stderr: /' >&2
    tail -n 3 "$tmp/sink.out" "$tmp/src.out" 2>/dev/null | sed 's/^/  /' >&2
  fi
  return $stuck
}

names=(arcvm qemu)
[ $vhost_net = 1 ] && names+=(qemu-vhost)
echo "net.sh: $n rounds, ${secs}s per iperf3 direction, ${vsock_mib} MiB per vsock direction; ${names[*]} in turn" >&2
echo "net.sh: per VM: TCP g->h, h->g Mbit/s; vsock g->h, h->g MiB/s" >&2
for round in $(seq "$n"); do
  run_one arcvm arcvm "${arcvm_cmd[@]}" || break
  run_one qemu qemu "${qemu_cmd[@]}" || break
  [ $vhost_net = 0 ] || run_one qemu-vhost qemu "${qemu_vhost_cmd[@]}" || break
done

median() { awk -v c="$2" '$c != "NA" {print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {if (!NR) print "NA"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
row() { echo "| $1 | $(median "$2" 1) | $(median "$2" 2) | $(median "$2" 3) | $(median "$2" 4) |"; }
qemu_ver=$(qemu-system-x86_64 --version | head -1 | sed 's/^QEMU emulator version //')
vs="vhost-vsock"; [ $vhost_vsock = 1 ] || vs="no vsock"
echo
echo "virtio-net over a TAP (iperf3, ${secs}s each way) and vsock (${vsock_mib} MiB each way), 1 vCPU, 256 MiB, medians of $n; $(date -u +%Y-%m-%d)"
echo "Where: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs${ARCVM_IN_NESTED_GUEST:+ (nested QEMU/TCG guest)}"
echo
echo "| VMM | TCP guest->host Mbit/s | TCP host->guest Mbit/s | vsock guest->host MiB/s | vsock host->guest MiB/s |"
echo "|---|---|---|---|---|"
row "arcvm $("$arcvm" --version | cut -d' ' -f2) (TAP; hybrid vsock)" "$tmp/res.arcvm"
row "QEMU $qemu_ver microvm (TAP vhost=off; $vs)" "$tmp/res.qemu"
[ $vhost_net = 0 ] || row "QEMU $qemu_ver microvm, extra: TAP vhost=on (in-kernel; $vs)" "$tmp/res.qemu-vhost"
failed=''
for nm in "${names[@]}"; do
  k=$(grep -c NA "$tmp/res.$nm" 2>/dev/null || true)
  [ -z "$k" ] || [ "$k" = 0 ] || failed+="${failed:+, }$nm $k"
done
if [ -n "$failed" ]; then
  echo
  echo "Runs with a missing value (see the log on stderr), left out of those medians: $failed."
fi
