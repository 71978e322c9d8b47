#!/usr/bin/env bash
# run.sh - the end-to-end tests: first on this machine itself (arcvm check
# and the choice made from it: tests/e2e/host.sh), then the suite where KVM
# runs stock guests: directly when `arcvm check` passes here, otherwise
# inside the nested QEMU/TCG guest (tests/harness/nested.sh decides, and
# says which and why).
#
# Nested KVM under QEMU/TCG is not flawless (docs/benchmarks.md, "Hangs and
# crashes"): the outer guest itself dies, freezes or panics now and then
# (nested.sh exits 125), and guests of any VMM reset or hang early in their
# boot about as often as QEMU microvm's do there. So the suite runs in up
# to three attempts, each in a fresh outer guest: an attempt whose outer
# guest failed goes on from the section it was in, and the sections that
# printed a FAIL run again. A section that fails in every attempt fails the
# run; a run that needed a second attempt says so (FLAKY) with every first
# failure kept in the output above.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Build the images on the host: faster than inside the emulated guest.
eval "$(tests/guest/images.sh)"
hrc=0
tests/e2e/host.sh || hrc=$?

ATTEMPTS=3
log=$(mktemp /tmp/arcvm-e2e-run.XXXXXX)
trap 'rm -f "$log"' EXIT
all=$(tests/e2e/suite.sh --list)
# in_order SECTIONS...: those of $all that are named, in the suite's order.
in_order() { local s out=''; for s in $all; do case " $* " in *" $s "*) out+=" $s" ;; esac; done; echo "${out# }"; }
# The sections of $log that printed a FAIL line.
failed_sections() { awk '/^# -- / {s = $3} /^FAIL/ && s != "" {print s}' "$log" | sort -u | xargs; }

pending=$all attempt=0 history=''
while [ -n "$pending" ] && [ $attempt -lt $ATTEMPTS ]; do
  attempt=$((attempt + 1))
  : >"$log"
  rc=0
  ARCVM_E2E_ONLY="$pending" tests/harness/nested.sh --timeout 1500 -- tests/e2e/suite.sh |
    tee "$log" || rc=${PIPESTATUS[0]}
  again=$(failed_sections)
  if [ $rc -eq 125 ]; then
    # The outer guest failed: the section it was in and all after it.
    last=$(sed -n 's/^# -- //p' "$log" | tail -n 1)
    rest=$(tr ' ' '\n' <<<"$pending" | sed -n "/^${last:-x}\$/,\$p" | xargs)
    [ -n "$last" ] || rest=$pending
    again=$(in_order $again $rest)
    history+=" attempt $attempt: the outer guest failed in '${last:-its start}';"
  elif [ $rc -ne 0 ] && [ -z "$again" ]; then
    echo "e2e: the suite failed (status $rc) without naming a failed section" >&2
    break
  elif [ -n "$again" ]; then
    history+=" attempt $attempt: failures in: $again;"
  fi
  pending=$again
  if [ -n "$pending" ] && [ $attempt -lt $ATTEMPTS ]; then
    echo "e2e: attempt $attempt left '$pending' to do; running it again in a fresh outer guest" >&2
  fi
done

status=0
if [ -n "$pending" ] || { [ ${rc:-0} -ne 0 ] && [ ${rc:-0} -ne 125 ] && [ -z "$again" ]; }; then
  echo "e2e: FAILED after $attempt attempt(s):$history" >&2
  status=1
elif [ $attempt -gt 1 ]; then
  echo "e2e: FLAKY, passed in attempt $attempt:$history" >&2
fi
[ $hrc -eq 0 ] || { echo "e2e: the host checks failed (see '# -- host' above)" >&2; status=1; }
exit $status
