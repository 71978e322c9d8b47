# lib.sh - helpers for arcvm's end-to-end tests (sourced, bash).
#
# A guest runs in the background with its console on a FIFO (input) and a
# file (output), so a test can type commands and wait for answers:
#   vm_start NAME ARGS...      start "arcvm run ARGS..." as guest NAME
#                              ($VM_PREFIX runs before arcvm, e.g. setpriv or
#                              ip netns exec; VM_SUBCMD= drops "run" for
#                              Firecracker-style flags)
#   vm_send NAME TEXT          type TEXT and Enter on its console
#   vm_expect NAME REGEX [S]   wait up to S seconds for REGEX in its output
#   vm_wait NAME [S]           wait for arcvm to exit; sets VM_RC
#   vm_report NAME WHY         show a stuck guest's vCPU report and console tail
#   expect_refusal D RE ARGS   "arcvm run ARGS" must fail with one line matching RE
# Results: ok / not_ok / check print TAP-like lines and count failures.

ARCVM=${ARCVM:-$PWD/build/arcvm}
E2E_TMP=${E2E_TMP:-$(mktemp -d /tmp/arcvm-e2e.XXXXXX)}
FAILS=0
PASSES=0

ok() { PASSES=$((PASSES + 1)); echo "ok   - $*"; }
not_ok() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: pass when COMMAND succeeds.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }

vm_dir() { echo "$E2E_TMP/vm-$1"; }

vm_start() {
  local name=$1; shift
  local d; d=$(vm_dir "$name")
  mkdir -p "$d"
  rm -f "$d/in"; mkfifo "$d/in"
  # Hold the FIFO open read-write so arcvm never sees end-of-input.
  eval "exec {VMFD_$name}<>\"$d/in\""
  # shellcheck disable=SC2086 # word splitting of the prefix is wanted
  ${VM_PREFIX:-} "$ARCVM" ${VM_SUBCMD-run} "$@" <"$d/in" >"$d/out" 2>"$d/err" &
  echo $! >"$d/pid"
  echo "     [$name] ${VM_PREFIX:+$VM_PREFIX }arcvm ${VM_SUBCMD-run} $*"
}

vm_send() {
  local fd_var="VMFD_$1"
  printf '%s\n' "$2" >&"${!fd_var}"
}

vm_expect() {
  local name=$1 re=$2 secs=${3:-60}
  local d; d=$(vm_dir "$name")
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    if tr -d '\r' <"$d/out" | grep -aqE "$re"; then return 0; fi
    kill -0 "$(cat "$d/pid")" 2>/dev/null || { tr -d '\r' <"$d/out" | grep -aqE "$re"; return; }
    sleep 0.2
  done
  echo "     [$name] timed out after ${secs}s waiting for /$re/; console tail:" >&2
  tail -n 15 "$d/out" | sed 's/^/       | /' >&2
  return 1
}

# The first output line matching REGEX (carriage returns removed).
vm_grep() {
  tr -d '\r' <"$(vm_dir "$1")/out" | grep -aE "$2" | head -n 1
}

vm_wait() {
  local name=$1 secs=${2:-60}
  local d; d=$(vm_dir "$name")
  local pid; pid=$(cat "$d/pid")
  local end=$((SECONDS + secs))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "     [$name] still running after ${secs}s; killing it" >&2
    kill -9 "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  VM_RC=$?
  local fd_var="VMFD_$name"
  [ -n "${!fd_var:-}" ] && eval "exec ${!fd_var}>&-"
  return 0
}

vm_stderr() { cat "$(vm_dir "$1")/err"; }

# vm_report NAME WHY: when a guest seems stuck, show arcvm's vCPU report
# (SIGUSR1) and the console's tail, to tell a hung guest from a hung host.
vm_report() {
  local d; d=$(vm_dir "$1")
  echo "     [$1] $2: vCPU report and console tail:" >&2
  kill -USR1 "$(cat "$d/pid")" 2>/dev/null && sleep 1
  grep -a 'arcvm: vcpu' "$d/err" | tail -n 8 | sed 's/^/       | /' >&2
  tail -n 10 "$d/out" | sed 's/^/       > /' >&2
}

# Kill any guest still running when the suite ends.
vm_cleanup() {
  for p in "$E2E_TMP"/vm-*/pid; do
    [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
  done
  return 0
}

# expect_refusal DESCRIPTION REGEX ARGS...: arcvm run ARGS must exit 1 and
# print exactly one line on stderr matching REGEX, and nothing on stdout.
expect_refusal() {
  local desc=$1 re=$2; shift 2
  local out="$E2E_TMP/refusal.out" err="$E2E_TMP/refusal.err"
  local before; before=$(ls /tmp /dev/shm | sort | md5sum)
  timeout 60 ${RUNAS:-} "$ARCVM" run "$@" </dev/null >"$out" 2>"$err"
  local rc=$? lines; lines=$(wc -l <"$err")
  local after; after=$(ls /tmp /dev/shm | sort | md5sum)
  if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -qE -- "$re" "$err" && [ ! -s "$out" ] &&
     [ "$before" = "$after" ]; then
    ok "refuses $desc: $(cat "$err")"
  else
    not_ok "refuses $desc (rc=$rc, $lines stderr lines, want /$re/): $(head -c 300 "$err")"
  fi
}
