#!/usr/bin/env bash
# host.sh - end-to-end checks on the machine itself, before run.sh takes the
# suite to where KVM works: arcvm check's verdict on this host, the harness's
# choice made from it, and, where the verdict is "cannot run", arcvm's prompt
# refusal (on a KVM PVM host, or one without /dev/kvm, that is the real
# thing, not a simulation).
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
eval "$(tests/guest/images.sh)"
echo "# -- host ($(uname -r), $(nproc) CPUs)"

"$ARCVM" check >"$E2E_TMP/host-check.out" 2>&1
rc=$?
sed 's/^/     | /' "$E2E_TMP/host-check.out"
check "arcvm check answers with verdict lines and a summary (exit $rc)" \
  sh -c "[ $rc -le 1 ] && grep -qE '^(PASS|FAIL)  kvm-device ' '$E2E_TMP/host-check.out' &&
         ! grep -vE '^(PASS|WARN|FAIL)  [a-z0-9-]+ +[^ ]|^ {6,}-> |^arcvm check: ' '$E2E_TMP/host-check.out'"

tests/harness/nested.sh --decide 2>"$E2E_TMP/decide.err"
drc=$?
if [ $rc -eq 0 ]; then
  check "the check passes, so the harness runs the suite directly: $(cat "$E2E_TMP/decide.err")" [ $drc -eq 0 ]
else
  first=$(grep -m1 '^FAIL' "$E2E_TMP/host-check.out" | sed -E 's/^FAIL  [a-z0-9-]+ +//')
  check "the check fails, so the harness nests, saying why: $(cat "$E2E_TMP/decide.err")" \
    sh -c "[ $drc -eq 1 ] && grep -qF -- \"\$1\" '$E2E_TMP/decide.err'" _ "$first"
  # arcvm itself must refuse this host at once, with the check's reason.
  re=$(printf '%s' "$first" | sed 's/[][\.*^$(){}?+|/]/\\&/g')
  t0=$EPOCHREALTIME
  expect_refusal "to start on this host" "$re" --kernel "$KERNEL" --initrd "$INITRD"
  ms=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
  check "within a second (${ms} ms)" [ "$ms" -lt 1000 ]
fi
echo "# host: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
