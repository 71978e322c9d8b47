#!/bin/sh
# boot-arm64-job.sh - bench/boot-arm64.sh's job, run by busybox sh in the
# outer aarch64 guest of tests/harness/nested-arm64.sh: boots the test guest
# (/arm64/Image, /arm64/initrd.cpio.gz) with arcvm and with QEMU's virt
# machine under KVM, alternately, and prints one line per boot:
#   BENCH arcvm|qemu MS RSS_KIB PSS_KIB BOOT_TIMER_MS EXIT_MS BUILT_MS
# (NA where there is no value; EXIT_MS: spawn to the VMM's exit, the guest
# powering off a second after its marker; BUILT_MS: arcvm's VM built, after
# its start), a SMAPS line before each with the VMM's largest mappings
# outside guest RAM, BENCHINFO lines naming what ran, and three lines
#   SETUP qemu MS
# QEMU's own setup: spawn to exit of the same command with -S (no guest
# instruction runs) and "quit" on its monitor.
# /bench.conf sets BENCH_N (rounds); QEMU's tree is at /qemu.
BENCH_N=5 BENCH_HUGE=0
[ -f /bench.conf ] && . /bench.conf

# QEMU is dynamically linked: its loader where its PT_INTERP says, its
# libraries from /qemu/lib.
mkdir -p /lib && ln -sf /qemu/lib/ld-linux-aarch64.so.1 /lib/ld-linux-aarch64.so.1
export LD_LIBRARY_PATH=/qemu/lib
qemu=/qemu/bin/qemu-system-aarch64
if ! "$qemu" --version >/tmp/qemu-version 2>&1; then
  echo "boot-arm64-job: $qemu does not run:"; cat /tmp/qemu-version
  exit 1
fi

echo "BENCHINFO kernel $(uname -r)"
echo "BENCHINFO arcvm $(arcvm --version | cut -d' ' -f2)"
echo "BENCHINFO qemu $(head -n1 /tmp/qemu-version | sed 's/^QEMU emulator version //')"
echo "BENCHINFO outer $(nproc) vCPUs, $(awk '/MemTotal/ {printf "%d MiB", $2 / 1024}' /proc/meminfo), THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"

# Milliseconds since the outer guest booted, from /proc/uptime (10 ms steps)
# with shell builtins only: a fork per sample would cost the same for both
# VMMs but add noise.
now_ms() {
  read -r up _ </proc/uptime
  echo $(( ${up%.*} * 1000 + 1${up#*.} * 10 - 1000 ))
}

# Resident KiB per mapping name (anonymous ones as [anon], [heap], ...),
# guest RAM (the memfd) left out; those of 256 KiB and more.
cat >/tmp/smaps.awk <<'EOF'
$1 ~ /^[0-9a-f]+-[0-9a-f]+$/ { name = "[anon]"; if (NF >= 6) name = $6; next }
/^Rss:/ { if (name !~ /^\/memfd:/) kib[name] += $2 }
END { for (n in kib) { if (kib[n] >= 256) { print kib[n], n } } }
EOF

extra="quiet arcvm.mode=bench"
# arcvm prepends "console=ttyS0 panic=1 8250.nr_uarts=1" (its 16550); QEMU's
# virt machine has a PL011, so QEMU gets the same line with its console.
# --log-level info: its "VM built" line says how long arcvm's own setup took.
arcvm_cmd="arcvm run --kernel /arm64/Image --initrd /arm64/initrd.cpio.gz --cpus 2 --memory 256M --boot-timer --log-level info --cmdline"
qemu_base="$qemu -M virt,accel=kvm,gic-version=3 -cpu host -smp 2 -m 256M
  -object memory-backend-memfd,id=ram,size=256M -M memory-backend=ram
  -nodefaults -no-user-config -no-reboot
  -kernel /arm64/Image -initrd /arm64/initrd.cpio.gz"
if [ "$BENCH_HUGE" = 1 ]; then
  # Two VMs never overlap, but leave room: 128 pages each plus slack.
  echo 160 >/proc/sys/vm/nr_hugepages
  arcvm_cmd="${arcvm_cmd% --cmdline} --huge-pages 2M --cmdline"
  qemu_base=$(echo "$qemu_base" | sed 's/size=256M/size=256M,hugetlb=on,hugetlbsize=2M/')
  echo "BENCHINFO ram 2 MiB huge pages, $(awk '/HugePages_Total/ {print $2}' /proc/meminfo) in the pool"
else
  echo "BENCHINFO ram 4 KiB pages"
fi
qemu_cmd="$qemu_base -nographic -chardev stdio,id=con -serial chardev:con -append"

# run_one arcvm|qemu: one boot; prints its BENCH line.
run_one() {
  name=$1
  rm -f /tmp/con && mkfifo /tmp/con
  t0=$(now_ms)
  if [ "$name" = arcvm ]; then
    $arcvm_cmd "$extra" </dev/null >/tmp/con 2>/tmp/err &
  else
    $qemu_cmd "console=ttyAMA0 panic=1 $extra" </dev/null >/tmp/con 2>/tmp/err &
  fi
  pid=$!
  # A hung boot must not hang the run: kill it (by pid) after 3 minutes.
  (sleep 180; kill "$pid" 2>/dev/null) &
  dog=$!
  t1='' rss=NA pss=NA
  while IFS= read -r line; do
    case $line in
      *ARCVM-GUEST-READY*)
        [ -z "$t1" ] || continue
        t1=$(now_ms)
        # Sampled while the guest sits in init (it powers off a second later).
        rss=$(awk '/^VmRSS:/ {r=$2} /^RssShmem:/ {s=$2} END {print r - s}' "/proc/$pid/status")
        pss=$(awk '/^Pss:/ {p=$2} /^Pss_Shmem:/ {s=$2; ok=1} END {if (ok) print p - s; else print "NA"}' \
          "/proc/$pid/smaps_rollup")
        # Where it goes: the largest mappings outside guest RAM (memfd), by Rss.
        top=$(awk -f /tmp/smaps.awk "/proc/$pid/smaps" | sort -rn | head -n 6 |
          awk '{printf "%s%s=%dK", (NR > 1 ? " " : ""), $2, $1}')
        # Transparent huge pages among them (2 MiB each when THP is on).
        thp=$(awk '/^AnonHugePages:/ {print $2}' "/proc/$pid/smaps_rollup")
        ;;
    esac
  done </tmp/con
  wait "$pid"; rc=$?
  t2=$(now_ms)
  kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null
  bt=$(sed -n 's/.*Guest-boot-time = *[0-9]* us *\([0-9]*\) ms.*/\1/p' /tmp/err | head -n1)
  built=$(sed -n 's/.*VM built in [0-9]* us (\([0-9]*\) us after the VMM started).*/\1/p' /tmp/err | head -n1)
  [ -z "$built" ] || built=$((built / 1000))
  if [ -z "$t1" ]; then
    echo "boot-arm64-job: $name: no init marker (exit $rc); its stderr:"
    tail -n 20 /tmp/err | sed 's/^/  | /'
    echo "BENCH $name NA NA NA NA NA NA"
    return
  fi
  [ "$rc" = 0 ] || echo "boot-arm64-job: $name exited $rc after the marker"
  echo "SMAPS $name $top AnonHugePages=${thp}K"
  echo "BENCH $name $((t1 - t0)) $rss $pss ${bt:-NA} $((t2 - t0)) ${built:-NA}"
}

echo "boot-arm64-job: warm-up: one boot each (not counted)"
run_one arcvm | sed 's/^BENCH /warm-up: /'
run_one qemu | sed 's/^BENCH /warm-up: /'
i=1
while [ "$i" -le "$BENCH_N" ]; do
  # The VMM that goes first alternates, so drift in the machine's load
  # does not always favour one.
  if [ $((i % 2)) = 1 ]; then run_one arcvm; run_one qemu; else run_one qemu; run_one arcvm; fi
  i=$((i + 1))
done

# QEMU's setup alone: everything up to the first guest instruction (process
# start, libraries, machine, kernel and initrd loaded), then quit.
i=1
while [ "$i" -le 3 ]; do
  t0=$(now_ms)
  echo quit | $qemu_base -display none -serial null -S -monitor stdio \
    -append "console=ttyAMA0 panic=1 $extra" >/tmp/setup.out 2>&1 &
  pid=$!
  (sleep 120; kill "$pid" 2>/dev/null) &
  dog=$!
  wait "$pid"; rc=$?
  t1=$(now_ms)
  kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null
  if [ "$rc" = 0 ]; then
    echo "SETUP qemu $((t1 - t0))"
  else
    echo "boot-arm64-job: QEMU -S exited $rc:"; tail -n 5 /tmp/setup.out | sed 's/^/  | /'
  fi
  i=$((i + 1))
done
