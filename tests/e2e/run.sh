#!/usr/bin/env bash
# run.sh - run the end-to-end suite where KVM works: directly on a host with
# /dev/kvm, otherwise inside the nested QEMU/TCG guest (tests/harness).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Build the images on the host: faster than inside the emulated guest.
eval "$(tests/guest/images.sh)"
exec tests/harness/nested.sh --timeout 1500 -- tests/e2e/suite.sh
