#!/usr/bin/env bash
# arm64-fetch.sh PACKAGE: Debian's arm64 .deb of PACKAGE (the candidate
# version) unpacked whole into $ARCVM_CACHE/arm64/pkg/PACKAGE_VERSION
# (default cache: <repo>/build/cache), downloaded once; prints that
# directory. For the nested arm64 harness and the arm64 benchmark.
# Exit status 1 with a message when the package cannot be had.
set -euo pipefail
pkg=${1:?usage: arm64-fetch.sh PACKAGE}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() { echo "arm64-fetch.sh: $*" >&2; exit 1; }
# Under arm64/pkg/, not arm64/ itself: older harness versions unpacked
# kernels there without lib/.
cache=${ARCVM_CACHE:-$repo/build/cache}/arm64/pkg
ver=$(apt-cache policy "$pkg:arm64" | awk '/Candidate:/ {print $2}')
[ -n "$ver" ] && [ "$ver" != '(none)' ] ||
  die "no $pkg:arm64 in the package lists: dpkg --add-architecture arm64 && apt-get update"
dir="$cache/${pkg}_${ver//:/_}"
if [ ! -d "$dir" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf -- "$tmp"' EXIT
  chmod 755 "$tmp" # apt's download user writes there
  (cd "$tmp" && apt-get download -q "$pkg:arm64=$ver" >&2) || die "apt-get download $pkg:arm64 failed"
  dpkg-deb -x "$tmp"/*.deb "$tmp/root" && mv "$tmp/root" "$dir"
fi
echo "$dir"
