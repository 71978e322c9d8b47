#!/usr/bin/env bash
# run.sh - the end-to-end tests: first on this machine itself (arcvm check
# and the choice made from it: tests/e2e/host.sh), then the suite where KVM
# runs stock guests: directly when `arcvm check` passes here, otherwise
# inside the nested QEMU/TCG guest (tests/harness/nested.sh decides, and
# says which and why).
#
# Exit status 125 from nested.sh is the emulated outer guest dying or
# freezing under the suite (QEMU/TCG with nested SVM is not flawless), not
# a test failing: the suite then goes on once more from the section it was
# in, and the checks the first attempt finished still count.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Build the images on the host: faster than inside the emulated guest.
eval "$(tests/guest/images.sh)"
hrc=0
tests/e2e/host.sh || hrc=$?

log=$(mktemp /tmp/arcvm-e2e-run.XXXXXX)
trap 'rm -f "$log"' EXIT
rc=0
tests/harness/nested.sh --timeout 1500 -- tests/e2e/suite.sh | tee "$log" || rc=${PIPESTATUS[0]}
if [ $rc -eq 125 ]; then
  last=$(sed -n 's/^# -- //p' "$log" | tail -n 1)
  rest=$(tests/e2e/suite.sh --list | tr ' ' '\n' | sed -n "/^${last:-refusals}\$/,\$p" | xargs)
  earlier=$(grep -c '^FAIL' "$log" || true)
  echo "e2e: the outer test guest failed in section '${last:-?}' (not a test failure);" \
       "running once more from there: $rest" >&2
  rc=0
  ARCVM_E2E_ONLY="$rest" tests/harness/nested.sh --timeout 1500 -- tests/e2e/suite.sh || rc=$?
  if [ $rc -eq 0 ] && [ "$earlier" -gt 0 ]; then
    echo "e2e: $earlier check(s) failed before the outer guest failed (see above)" >&2
    rc=1
  fi
fi
[ $hrc -eq 0 ] || { echo "e2e: the host checks failed (see '# -- host' above)" >&2; exit 1; }
exit $rc
