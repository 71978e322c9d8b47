#!/usr/bin/env bash
# nested-selftest.sh — checks that tests/harness/nested.sh works on this host:
# exit status, argv quoting, environment and cwd, stdout/stderr separation,
# KVM usable inside (KVM_GET_API_VERSION + KVM_CREATE_VM), a Unix socket in
# /tmp, and the --timeout path. Each check boots the outer guest once
# (~5 s each without /dev/kvm). Ends with "N passed, N failed".
#
# Usage: nested-selftest.sh      (set ARCVM_NESTED=1 to force the nested path)
# shellcheck disable=SC2016 # the single-quoted $ strings are test data
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nested="$here/nested.sh"
# Not under /tmp: the outer guest has a private /tmp, and check 4 cds here.
mkdir -p "$here/../../build"
tmp=$(mktemp -d "$here/../../build/nested-selftest.XXXXXX")
tmp=$(cd "$tmp" && pwd)
trap 'rm -rf -- "$tmp"' EXIT
passed=0 failed=0

ok() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; failed=$((failed + 1)); }
# run NAME ARGS...: run nested.sh ARGS, keep stdout/stderr/status in $tmp.
run() {
  local name=$1; shift
  set +e
  "$nested" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
  echo $? >"$tmp/$name.rc"
  set -e
}
rc() { cat "$tmp/$1.rc"; }
# Whether nested.sh runs commands directly here (arcvm check passes).
direct=0
if "$nested" --decide 2>/dev/null; then direct=1; fi

# 1. status, listing and a quoted argument
run basic -- sh -c 'ls -l /dev/kvm; echo hi "a b"; exit 3'
if [ "$(rc basic)" = 3 ] && grep -q '^hi a b$' "$tmp/basic.out" &&
   grep -q '/dev/kvm$' "$tmp/basic.out"; then
  ok "exit status 3, /dev/kvm listed, 'hi a b' printed"
else
  fail "basic: rc=$(rc basic) out=$(head -c 300 "$tmp/basic.out") err=$(tail -n 5 "$tmp/basic.err")"
fi

# 2. true exits 0 (and how long the outer boot takes)
start=$(date +%s%N)
run true -- true
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$(rc true)" = 0 ]; then ok "true exits 0 (${ms} ms)"; else fail "true: rc=$(rc true)"; fi

# 3. argv survives byte for byte
args=('a b' '$HOME $(id) `x`' "it's" '' 'tab	x' $'new\nline' '*' '\n' '-n')
printf '[%s]\n' "${args[@]}" >"$tmp/args.want"
run args -- printf '[%s]\n' "${args[@]}"
if [ "$(rc args)" = 0 ] && cmp -s "$tmp/args.want" "$tmp/args.out"; then
  ok "argv with spaces, quotes, \$, newline and glob characters survives"
else
  fail "argv: rc=$(rc args) got: $(cat "$tmp/args.out")"
fi

# 4. environment and cwd
mkdir -p "$tmp/dir with space"
(cd "$tmp/dir with space" &&
 ARCVM_SELFTEST='x y$z' SELFTEST_CARRIED=yes SELFTEST_DROPPED=no NESTED_ENV=SELFTEST_CARRIED \
   run env -- sh -c 'pwd; echo "A=$ARCVM_SELFTEST C=${SELFTEST_CARRIED-} D=${SELFTEST_DROPPED-unset} G=${ARCVM_IN_NESTED_GUEST-}"')
want="$tmp/dir with space
A=x y\$z C=yes D=unset G=1"
if [ "$(rc env)" = 0 ] && [ "$(cat "$tmp/env.out")" = "$want" ]; then
  ok "cwd and ARCVM_*/NESTED_ENV variables carried, others dropped"
elif [ "$(rc env)" = 0 ] && [ "$direct" = 1 ]; then
  ok "cwd/env (direct exec: whole environment kept)"
else
  fail "env: rc=$(rc env) got: $(cat "$tmp/env.out")"
fi

# 5. stdout and stderr stay apart
run streams -- sh -c 'echo to-out; echo to-err >&2; printf no-eol'
if [ "$(rc streams)" = 0 ] && [ "$(cat "$tmp/streams.out")" = $'to-out\nno-eol' ] &&
   grep -qx 'to-err' "$tmp/streams.err" && ! grep -q 'to-out' "$tmp/streams.err"; then
  ok "stdout and stderr separate and byte-exact"
else
  fail "streams: rc=$(rc streams) out=$(od -c "$tmp/streams.out" | head -3)"
fi

# 6. KVM usable and a Unix socket in /tmp (python3 does the ioctls)
if command -v python3 >/dev/null; then
  run kvm -- python3 -c '
import fcntl, os, socket
fd = os.open("/dev/kvm", os.O_RDWR)
api = fcntl.ioctl(fd, 0xAE00)          # KVM_GET_API_VERSION
vm = fcntl.ioctl(fd, 0xAE01, 0)        # KVM_CREATE_VM
print("api", api, "vm", vm >= 0)
path = "/tmp/nested-selftest-%d.sock" % os.getpid()
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(1)
c = socket.socket(socket.AF_UNIX); c.connect(path); a, _ = s.accept()
c.sendall(b"ping"); print("sock", a.recv(4).decode()); os.unlink(path)'
  if [ "$(rc kvm)" = 0 ] && [ "$(cat "$tmp/kvm.out")" = $'api 12 vm True\nsock ping' ]; then
    ok "KVM_GET_API_VERSION=12 and KVM_CREATE_VM work; Unix socket in /tmp works"
  else
    fail "kvm/socket: rc=$(rc kvm) out=$(cat "$tmp/kvm.out") err=$(tail -n 5 "$tmp/kvm.err")"
  fi
else
  echo "skip - KVM/socket check needs python3"
fi

# 7. timeout gives 125 (only meaningful on the nested path)
if [ "$direct" = 1 ]; then
  echo "skip - timeout check (arcvm check passes here; nested.sh execs directly)"
else
  run timeout --timeout 20 -- sleep 600
  if [ "$(rc timeout)" = 125 ] && grep -q 'timed out' "$tmp/timeout.err"; then
    ok "--timeout kills the outer guest and exits 125"
  else
    fail "timeout: rc=$(rc timeout) err=$(tail -n 3 "$tmp/timeout.err")"
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
