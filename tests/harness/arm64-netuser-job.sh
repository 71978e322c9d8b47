#!/bin/sh
# arm64-netuser-job.sh - a nested-arm64.sh job: the cross-built,
# dynamically linked arcvm-net-user runs in the busybox-only outer aarch64
# guest, and arcvm boots a guest with a user-mode NIC through it.
#
#   tests/harness/nested-arm64.sh tests/harness/arm64-netuser-job.sh
# (nested-arm64.sh puts build-arm64/arcvm-net-user and the libraries
# arm64-libs.sh lists into the outer guest)
#
# Checked: the helper starts (its loader and libslirp/glib resolve: it
# prints libslirp's version); arcvm launches it next to itself for
# --net user, and slirp listens on the hostfwd port; the helper ends with
# arcvm. When the inner guest can drive the NIC (its initramfs carries
# virtio_net and /etc/udhcpc.script, as nested-arm64.sh's does), also:
# DHCP gives it 10.0.2.15, it fetches a file from an HTTP server on the
# outer guest's loopback through 10.0.2.2, and the outer guest reaches the
# inner guest's HTTP server through hostfwd. Without them these are
# reported as SKIP. (Without udhcpc.script, init's udhcpc never returned.)
# Exit status 1 on any FAIL.
fail=0
check() { # check WHAT CONDITION...
  what=$1; shift
  if "$@"; then echo "PASS  $what"; else echo "FAIL  $what"; fail=1; fi
}
skip() { echo "SKIP  $*"; }
# wait_for FILE REGEX SECONDS
wait_for() {
  i=0
  while [ $i -lt $(($3 * 5)) ]; do
    tr -d '\r' <"$1" | grep -qE "$2" && return 0
    kill -0 "$apid" 2>/dev/null || { tr -d '\r' <"$1" | grep -qE "$2"; return; }
    sleep 0.2; i=$((i + 1))
  done
  return 1
}

v=$(arcvm-net-user --version 2>&1); rc=$?
echo "      arcvm-net-user --version: $v"
check "arcvm-net-user starts: loader and libraries resolve (rc $rc)" \
  sh -c "[ $rc = 0 ] && echo '$v' | grep -q 'libslirp [0-9]'"
arcvm-net-user --fd 3 >/dev/null 2>&1; rc=$?
check "arcvm-net-user refuses an incomplete command line with 2 (rc $rc)" [ "$rc" = 2 ]

initrd=/arm64/initrd.cpio.gz net=0
zcat "$initrd" | strings >/tmp/initrd.strings
grep -q 'virtio_net\.ko' /tmp/initrd.strings && grep -q 'etc/udhcpc\.script' /tmp/initrd.strings && net=1
mkdir -p /tmp/www && echo "hello-from-outer-$$" >/tmp/www/hello
httpd -p 127.0.0.1:8000 -h /tmp/www
mkfifo /tmp/in
exec 3<>/tmp/in # held open read-write: arcvm never sees end of input
arcvm run --kernel /arm64/Image --initrd "$initrd" --cpus 2 --memory 256M --log-level info \
  --net user,hostfwd=tcp::8080-:80 --cmdline "arcvm.net=dhcp" </tmp/in >/tmp/nu.log 2>&1 &
apid=$!
booted=1
wait_for /tmp/nu.log 'ARCVM-GUEST-READY' 120 || booted=0
check "user-mode boot to init ($initrd)" [ $booted = 1 ]
# Where the vCPUs are, if the guest is stuck (arcvm's report on SIGUSR1).
[ $booted = 1 ] || { kill -USR1 $apid; sleep 2; }
helper=$(pidof arcvm-net-user)
check "arcvm launched /bin/arcvm-net-user (pid ${helper:-none}), a child of arcvm" \
  sh -c "[ -n '$helper' ] && [ \"\$(awk '/^PPid/ {print \$2}' /proc/$helper/status)\" = $apid ]"
check "slirp listens on the hostfwd port 8080" sh -c 'netstat -ltn | grep -q ":8080 "'
if [ $net = 1 ] && [ $booted = 1 ]; then
  echo 'echo ADDR-$(ip -4 -o addr show eth0 | awk "{print \$4}")' >&3
  check "DHCP gave the guest 10.0.2.15/24" wait_for /tmp/nu.log '^ADDR-10\.0\.2\.15/24' 60
  echo 'echo GOT-$(wget -q -O - http://10.0.2.2:8000/hello)' >&3
  check "the guest fetched a file from the outer guest's loopback" \
    wait_for /tmp/nu.log "^GOT-hello-from-outer-$$" 60
  echo 'mkdir -p /tmp/gw && echo hello-from-inner >/tmp/gw/x && httpd -p 80 -h /tmp/gw && echo HTTPD-UP' >&3
  wait_for /tmp/nu.log '^HTTPD-UP' 30
  # nc, not wget: the outer guest's busybox wget died of a segmentation
  # fault on this connection (twice; its fetch from the outer's own httpd
  # works), while nc reads the same answer. Not understood yet.
  got=$(printf 'GET /x HTTP/1.0\r\n\r\n' | nc 127.0.0.1 8080 | tr -d '\r' | tail -n 1)
  check "the outer guest reached the guest's server through hostfwd (got '$got')" [ "$got" = hello-from-inner ]
else
  skip "DHCP, fetch and hostfwd: the inner guest did not boot or has no virtio_net module"
fi
echo 'poweroff -f' >&3
i=0
while kill -0 $apid 2>/dev/null && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
kill $apid 2>/dev/null
wait $apid; rc=$?
check "guest power-off ends arcvm with 0 (rc $rc)" [ "$rc" = 0 ]
check "the helper ended with arcvm" sh -c '! pidof arcvm-net-user >/dev/null'
echo "---- arcvm's console and log:"
tr -d '\r' </tmp/nu.log | sed 's/^/  | /'
exit $fail
