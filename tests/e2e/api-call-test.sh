#!/usr/bin/env bash
# api-call-test.sh API_CALL ARCVM - unit check of tests/e2e/api-call.c (the
# arm64 suite's curl) against arcvm's API before boot (no KVM needed):
# statuses and bodies of good and bad requests, and its own exit codes.
set -u
call=$1 arcvm=$2
d=$(mktemp -d); s=$d/api.sock
"$arcvm" --api-sock "$s" --id apicall >/dev/null 2>"$d/err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 100); do [ -S "$s" ] && break; sleep 0.05; done
fails=0
t() { # t NAME WANT-FIRST-LINE BODY-GREP CMD...
  local name=$1 want=$2 re=$3 out; shift 3
  out=$("$@" 2>&1)
  if [ "$(head -n1 <<<"$out")" = "$want" ] && grep -qE -- "$re" <<<"$out"; then echo "ok   - $name"
  else echo "FAIL - $name: $out"; fails=$((fails + 1)); fi
}
t "GET / before boot" 200 '"state":"Not started"' "$call" "$s" GET /
t "PUT with a body" 204 . "$call" "$s" PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
t "the PUT took effect" 200 '"vcpu_count":2,"mem_size_mib":256' "$call" "$s" GET /vm/config
t "malformed JSON: 400 with a fault_message" 400 fault_message "$call" "$s" PUT /machine-config '{"vcpu_count": 2,'
t "unknown path: 404" 404 fault_message "$call" "$s" GET /no/such
"$call" "$d/none.sock" GET / 2>/dev/null; [ $? = 1 ] || { echo "FAIL - exit 1 without a server"; fails=$((fails + 1)); }
"$call" "$s" GET 2>/dev/null; [ $? = 2 ] || { echo "FAIL - exit 2 on bad usage"; fails=$((fails + 1)); }
echo "api-call: $fails failed"
[ $fails = 0 ]
