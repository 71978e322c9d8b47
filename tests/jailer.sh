#!/usr/bin/env bash
# jailer.sh - arcvm-jailer end to end, as root, without KVM: jails the
# static build/jailer-probe (tests/jailer_probe.c) and checks from inside and
# outside: the chroot's contents and device nodes, uid/gid and no way back,
# its own mount namespace with only the jail visible, the network namespace
# joined, the cgroup v2 created with the values and the process in it, the
# resource limits, --new-pid-ns and --daemonize; then that a second jail with
# the same id, bad ids, uids and paths are refused with one line each and
# that a failure leaves nothing behind.
#
#   tests/jailer.sh build/arcvm-jailer build/jailer-probe [build/arcvm]
# With arcvm (a static build), also checks that it starts in a jail and
# serves its API socket there.
# Exits 77 (skipped) when not root or when this host cannot make mount
# namespaces or device nodes (an unprivileged container, a chroot);
# with ARCVM_JAILER_REQUIRED=1 (`make test`) that is a failure instead.
set -euo pipefail
skip() {
  echo "jailer.sh: skipped: $*"
  [ -z "${ARCVM_JAILER_REQUIRED:-}" ] || { echo "jailer.sh: ARCVM_JAILER_REQUIRED is set: failing"; exit 1; }
  exit 77
}
J=$(realpath "${1:-build/arcvm-jailer}")
P=$(realpath "${2:-build/jailer-probe}")
A=${3:+$(realpath "$3")}
[ "$(id -u)" = 0 ] || skip "needs root"

T=$(mktemp -d /tmp/arcvm-jailer-test.XXXXXX)
BASE=$T/base
ID=jt$$
U=12345 G=23456
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
PIDS=()
NETNS=

cleanup() {
  for p in "${PIDS[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
  [ -z "$NETNS" ] || umount "$NETNS" 2>/dev/null || true
  if [ -n "$CGROOT" ]; then
    find "$CGROOT/jailer-probe" "$CGROOT/arcvm-jailer-test-$$" -depth -type d \
      -name "$ID*" -exec rmdir {} + 2>/dev/null || true
    rmdir "$CGROOT/arcvm-jailer-test-$$/nested" "$CGROOT/arcvm-jailer-test-$$" \
      "$CGROOT/jailer-probe" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT

n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "jailer.sh: FAIL: $*" >&2; exit 1; }
expect() { # expect DESCRIPTION TEST...
  local what=$1; shift
  "$@" || fail "$what"
  ok "$what"
}

# The cgroup parts need a writable cgroup v2 hierarchy.
if [ -n "$CGROOT" ] && mkdir "$CGROOT/arcvm-jailer-probe-$$" 2>/dev/null; then
  rmdir "$CGROOT/arcvm-jailer-probe-$$"
else
  echo "# no writable cgroup v2 hierarchy: cgroup checks skipped"
  CGROOT=
fi
CGFLAGS=()
[ -z "$CGROOT" ] || CGFLAGS=(--cgroup-version 2 --cgroup cgroup.max.descendants=3)

# A network namespace held by a bind mount on a file, as `ip netns add` does.
NETNS=$T/netns
touch "$NETNS"
unshare --net="$NETNS" true || { NETNS=; skip "cannot make a netns"; }

jail() { # jail ID [FLAGS...] -- [PROBE COMMANDS]: run the jailer in the foreground
  local id=$1; shift
  "$J" --id "$id" --exec-file "$P" --uid $U --gid $G --chroot-base-dir "$BASE" "$@"
}
jail_bg() { # jail_bg ID OUTFILE [FLAGS...]: the same in the background; sets $pid
  local id=$1 outfile=$2; shift 2
  "$J" --id "$id" --exec-file "$P" --uid $U --gid $G --chroot-base-dir "$BASE" "$@" \
    >"$outfile" 2>&1 &
  pid=$!
  PIDS+=("$pid")
}

# --- 1. A jail, seen from inside --------------------------------------------
if ! out=$(jail "$ID" "${CGFLAGS[@]}" --netns "$NETNS" --resource-limit fsize=100000 \
             --resource-limit no-file=64 -- report 2>&1); then
  case $out in
    *"device node"* | *"mount namespace"* | *"pivot_root"* | *"bind-mount"*)
      skip "this host cannot build a jail: $out" ;;
  esac
  fail "a plain jail failed: $out"
fi
line() { grep -qx -- "$1" <<<"$out" || fail "the probe did not print '$1': $out"; }
sorted_ls() { sed -n "s|^ls $1: *||p" <<<"$out" | tr ' ' '\n' | sort | tr '\n' ' '; }
line "flag --id=$ID"
grep -q '^flag --start-time-us=[0-9]*$' <<<"$out" || fail "no --start-time-us: $out"
grep -q '^flag --start-time-cpu-us=[0-9]*$' <<<"$out" || fail "no --start-time-cpu-us: $out"
ok "the exec file gets --id, --start-time-us and --start-time-cpu-us"
line "uid=$U gid=$G groups=0 pid=$(sed -n 's/.*pid=\([0-9]*\)$/\1/p' <<<"$out")"
line "regain=no"
ok "it runs as $U:$G with no supplementary groups and cannot become root again"
line "cwd=/ env=0"
ok "it starts in / with an empty environment"
line "nofile=64 fsize=100000"
ok "the resource limits are applied"
[ "$(sorted_ls /)" = "dev jailer-probe run " ] || fail "/ in the jail: $(sorted_ls /)"
want="kvm net "
[ ! -c /dev/userfaultfd ] || want="kvm net userfaultfd "
[ "$(sorted_ls /dev)" = "$want" ] || fail "/dev in the jail: $(sorted_ls /dev)"
[ "$(sorted_ls /dev/net)" = "tun " ] || fail "/dev/net in the jail: $(sorted_ls /dev/net)"
ok "only the jail is visible: /$(basename "$P"), /dev/{kvm,net/tun$([ ! -c /dev/userfaultfd ] || echo ,userfaultfd)}, /run"

# --- 2. The jail on disk ----------------------------------------------------
R=$BASE/jailer-probe/$ID/root
cmp -s "$P" "$R/jailer-probe" || fail "the exec file was not copied into the jail"
[ "$(stat -c %u:%g:%a "$R")" = "$U:$G:755" ] || fail "the jail root is $(stat -c %u:%g:%a "$R")"
for d in kvm net/tun userfaultfd; do
  host=/dev/$d
  [ -c "$host" ] || [ "$d" != userfaultfd ] || continue
  got=$(stat -c '%F %t:%T %u:%g %a' "$R/dev/$d")
  if [ -c "$host" ]; then nums=$(stat -c '%t:%T' "$host"); else
    nums=$([ $d = kvm ] && echo a:e8 || echo a:c8); fi
  [ "$got" = "character special file $nums $U:$G 600" ] || fail "/dev/$d in the jail: $got"
done
ok "the device nodes have the host's numbers, mode 600, owned by $U:$G"

# --- 3. A running jail, seen from outside -----------------------------------
ID2=${ID}-run
jail_bg "$ID2" "$T/run.out" "${CGFLAGS[@]}" --netns "$NETNS" --resource-limit no-file=77 \
  -- sleep 30
for _ in $(seq 100); do grep -q ready "$T/run.out" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$T/run.out" || fail "the jailed probe did not start: $(cat "$T/run.out")"
[ "$(awk '/^Uid:/ { print $2 $3 $4 $5 } /^Gid:/ { print $2 $3 $4 $5 }' /proc/$pid/status | tr -d '\n')" \
  = "$U$U$U$U$G$G$G$G" ] || fail "uid/gid of the jailed process: $(grep -E '^(Uid|Gid)' /proc/$pid/status)"
ok "the jailer execs in place: pid $pid runs as $U:$G"
[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] || fail "same mount namespace"
[ "$(ls /proc/$pid/root | sort | tr '\n' ' ')" = "dev jailer-probe run " ] ||
  fail "its root: $(ls /proc/$pid/root)"
[ "$(stat -c %i /proc/$pid/root/jailer-probe)" = "$(stat -c %i "$BASE/jailer-probe/$ID2/root/jailer-probe")" ] ||
  fail "its root is not the jail"
ok "it has its own mount namespace whose root is the jail"
[ "$(readlink /proc/$pid/ns/net)" = "net:[$(stat -L -c %i "$NETNS")]" ] || fail "netns not joined"
ok "it is in the --netns network namespace"
grep -q '^Max open files *77 *77' /proc/$pid/limits || fail "limits: $(grep 'open files' /proc/$pid/limits)"
ok "its no-file limit is 77"
if [ -n "$CGROOT" ]; then
  cg=$CGROOT/jailer-probe/$ID2
  grep -qx "$pid" "$cg/cgroup.procs" || fail "pid $pid is not in $cg"
  grep -qx "0::/jailer-probe/$ID2" /proc/$pid/cgroup || fail "/proc/$pid/cgroup: $(cat /proc/$pid/cgroup)"
  [ "$(cat "$cg/cgroup.max.descendants")" = 3 ] || fail "the --cgroup value was not written"
  ok "it is in the cgroup $cg, with the --cgroup value written"
fi

# --- 4. Refusals: one line each, nothing created ----------------------------
refuse() { # refuse DESCRIPTION NEEDLE COMMAND...
  local what=$1 needle=$2; shift 2
  local before after err
  before=$(find "$T" "${CGROOT:-/nonexistent}/jailer-probe" 2>/dev/null | sort | md5sum)
  if err=$("$@" 2>&1 >/dev/null); then fail "$what: accepted"; fi
  [ "$(wc -l <<<"$err")" = 1 ] || fail "$what: not one line: $err"
  [[ $err == "arcvm-jailer: error: "*"$needle"* ]] || fail "$what: '$err' lacks '$needle'"
  after=$(find "$T" "${CGROOT:-/nonexistent}/jailer-probe" 2>/dev/null | sort | md5sum)
  [ "$before" = "$after" ] || fail "$what: something was left behind"
  ok "$what is refused ($err)"
}
refuse "a second jail with the same id" "already exists" jail "$ID" -- report
[ -x "$R/jailer-probe" ] || fail "the refused second jail touched the first"
refuse "an id with '/'" "--id 'a/b'" jail a/b -- report
refuse "an id of 65 characters" "--id" jail "$(printf 'a%.0s' $(seq 65))" -- report
refuse "a uid that is not a number" "--uid 'root'" "$J" --id x --exec-file "$P" --uid root --gid 1
refuse "a gid of -1" "--gid '-1'" "$J" --id x --exec-file "$P" --uid 1 --gid -1
refuse "a missing --uid" "--uid is required" "$J" --id x --exec-file "$P" --gid 1
refuse "a missing exec file" "No such file" \
  "$J" --id x2 --exec-file "$T/none" --uid 1 --gid 1 --chroot-base-dir "$BASE"
refuse "a directory as the exec file" "not an executable regular file" \
  "$J" --id x --exec-file "$T" --uid 1 --gid 1 --chroot-base-dir "$BASE"
refuse "a relative --chroot-base-dir" "absolute" \
  "$J" --id x --exec-file "$P" --uid 1 --gid 1 --chroot-base-dir rel
refuse "a --netns that is no network namespace" "not a network namespace" \
  jail x3 --netns "$P" -- report
refuse "a bad --resource-limit" "fsize or no-file" jail x4 --resource-limit stack=1
refuse "--cgroup with cgroup v1" "cgroup v1 is not supported" jail x5 --cgroup pids.max=1
if [ -x /bin/sh ] && command -v file >/dev/null && ! grep -q 'statically linked' <(file -L /bin/sh 2>/dev/null); then
  refuse "a dynamically linked exec file" "dynamically linked" \
    "$J" --id x6 --exec-file /bin/sh --uid 1 --gid 1 --chroot-base-dir "$BASE"
fi

# --- 5. Failures half way: everything made is removed ------------------------
gone() { # gone DESCRIPTION ID COMMAND...: fails after creating things
  local what=$1 id=$2; shift 2
  local err
  if err=$("$@" 2>&1 >/dev/null); then fail "$what: succeeded"; fi
  [ "$(wc -l <<<"$err")" = 1 ] || fail "$what: not one line: $err"
  [ ! -e "$BASE/jailer-probe/$id" ] || fail "$what: the jail $BASE/jailer-probe/$id is left behind"
  [ -z "$CGROOT" ] || [ ! -e "$CGROOT/arcvm-jailer-test-$$" ] ||
    fail "$what: the cgroup is left behind"
  ok "$what: nothing left behind ($err)"
}
if [ -n "$CGROOT" ]; then
  gone "a cgroup value the kernel refuses" "${ID}-cg" jail "${ID}-cg" --cgroup-version 2 \
    --parent-cgroup "arcvm-jailer-test-$$/nested" --cgroup cgroup.max.descendants=lots -- report
fi
# The exec fails (EAGAIN: the uid is over RLIMIT_NPROC once switched) in
# the --new-pid-ns child; the jailer, still root, removes everything.
CGF=()
[ -z "$CGROOT" ] || CGF=(--cgroup-version 2 --parent-cgroup "arcvm-jailer-test-$$/nested")
gone "an exec failing after pivot_root" "${ID}-ex" \
  bash -c 'ulimit -u 0; exec "$@"' _ "$J" --id "${ID}-ex" --exec-file "$P" --uid $U --gid $G \
  --chroot-base-dir "$BASE" --new-pid-ns "${CGF[@]}" -- report

# --- 6. --new-pid-ns and --daemonize ------------------------------------------
ID3=${ID}-pidns
# (Output to a file: the VMM outlives the jailer and keeps its stdout open.)
jail "$ID3" --new-pid-ns -- report sleep 30 >"$T/pidns.out" 2>&1 ||
  fail "--new-pid-ns: $(cat "$T/pidns.out")"
R3=$BASE/jailer-probe/$ID3/root
child=$(cat "$R3/jailer-probe.pid")
PIDS+=("$child")
for _ in $(seq 100); do grep -q ready "$T/pidns.out" && break; sleep 0.05; done
out=$(cat "$T/pidns.out")
grep -q ' pid=1$' <<<"$out" || fail "--new-pid-ns: the probe is not pid 1: $out"
grep -q '^flag --parent-cpu-time-us=[0-9]*$' <<<"$out" || fail "no --parent-cpu-time-us: $out"
[ "$(awk '/^NSpid:/ { print $3 }' /proc/$child/status)" = 1 ] || fail "--new-pid-ns: NSpid"
ok "--new-pid-ns: the jailer exits 0, the VMM is pid 1 of a new PID namespace, its pid in jailer-probe.pid"

ID4=${ID}-daemon
jail_bg "$ID4" "$T/daemon.out" --daemonize -- report sleep 30
for _ in $(seq 100); do [ "$(readlink /proc/$pid/fd/1 2>/dev/null)" = /dev/null ] && break; sleep 0.05; done
[ "$(readlink /proc/$pid/fd/1)" = /dev/null ] || fail "--daemonize: stdout is $(readlink /proc/$pid/fd/1)"
[ "$(awk '{ print $6 }' /proc/$pid/stat)" = "$pid" ] || fail "--daemonize: not a session leader"
[ ! -s "$T/daemon.out" ] || fail "--daemonize: it printed $(cat "$T/daemon.out")"
ok "--daemonize: a new session, stdio on /dev/null"

# --- 7. arcvm itself, in Firecracker mode ------------------------------------
if [ -n "$A" ]; then
  ID5=${ID}-arcvm
  "$J" --id "$ID5" --exec-file "$A" --uid $U --gid $G --chroot-base-dir "$BASE" \
    >"$T/arcvm.out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  sock=$BASE/arcvm/$ID5/root/run/firecracker.socket
  for _ in $(seq 100); do [ -S "$sock" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
  if grep -q "dynamically linked" "$T/arcvm.out"; then
    echo "# $A is dynamically linked: the arcvm check is skipped"
  else
    [ -S "$sock" ] || fail "arcvm in the jail made no API socket: $(cat "$T/arcvm.out")"
    [ "$(stat -c %u:%g "$sock")" = "$U:$G" ] || fail "the API socket is $(stat -c %u:%g "$sock")"
    grep -q "^Uid:\s*$U\s" /proc/$pid/status || fail "arcvm does not run as $U"
    ok "arcvm starts in the jail as $U:$G and serves its API at <jail>/run/firecracker.socket"
  fi
fi

echo "jailer.sh: all $n checks passed"
