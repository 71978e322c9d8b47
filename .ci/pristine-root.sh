#!/usr/bin/env bash
# pristine-root.sh - prove that scripts/install-deps.sh installs everything
# the build and the unit tests need, including what pkg-config files pull in:
# in a minimal Debian 12 root (debootstrap --variant=minbase, nothing but
# Debian's essentials), install-deps.sh, meson setup, ninja and the unit
# tests must all succeed. A package this machine happens to have cannot hide
# a missing install step here.
#
# The root is cached in $ARCVM_CI_CACHE (default /var/cache/arcvm-ci), keyed
# on install-deps.sh: reused while the script is unchanged (a new dependency
# in meson.build without a matching install step still fails the build
# inside), rebuilt from debootstrap when it changes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${ARCVM_CI_CACHE:-/var/cache/arcvm-ci}
mirror=${ARCVM_CI_MIRROR:-http://deb.debian.org/debian}
key=$(cat "$repo/scripts/install-deps.sh" "$0" | sha256sum | cut -c1-16)
root="$cache/bookworm-$key"
say() { echo "pristine-root: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "needs root (debootstrap, chroot, mounts)"; exit 1; }
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2; }
fi

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || :; done
}
trap cleanup EXIT
bind() { # bind SRC DST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounted+=("$2")
  [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}
enter() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
mount_all() {
  bind /proc "$root/proc"
  bind /sys "$root/sys"
  bind /dev "$root/dev"
  bind /dev/pts "$root/dev/pts"
  mkdir -p "$root/src"
  bind "$repo" "$root/src" ro
  cp /etc/resolv.conf "$root/etc/resolv.conf"
}

if [ ! -f "$root/.arcvm-ready" ]; then
  mkdir -p "$cache"
  # Roots of older install-deps.sh versions are dead weight now.
  find "$cache" -maxdepth 1 -name 'bookworm-*' ! -name "${root##*/}" -exec rm -rf {} + 2>/dev/null || :
  rm -rf "$root"
  say "debootstrap --variant=minbase bookworm into $root (a few minutes)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; say "debootstrap failed (log: $cache/debootstrap.log)"; exit 1; }
  # The same Debian archive settings as this machine (a snapshot mirror may
  # need its Release files' dates ignored), nothing else of it.
  for f in /etc/apt/apt.conf.d/*; do
    grep -q 'Check-Valid-Until\|Check-Date' "$f" 2>/dev/null && cp "$f" "$root/etc/apt/apt.conf.d/"
  done
  echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
  echo "deb $mirror bookworm-updates main" >>"$root/etc/apt/sources.list"
  mount_all
  say "scripts/install-deps.sh inside the minimal root"
  if ! enter /src/scripts/install-deps.sh >"$cache/install.log" 2>&1; then
    tail -30 "$cache/install.log" >&2
    say "install-deps.sh failed in a minimal Debian root (log: $cache/install.log)"
    exit 1
  fi
  touch "$root/.arcvm-ready"
else
  say "reusing $root (install-deps.sh unchanged)"
  mount_all
fi

say "meson setup, ninja and the unit tests inside the minimal root"
enter rm -rf /tmp/arcvm-build
if ! enter meson setup /tmp/arcvm-build /src >"$cache/setup.log" 2>&1; then
  missing=$(grep -E 'Dependency .* not found|Program .* not found|not found, tried' "$cache/setup.log" | head -5)
  tail -20 "$cache/setup.log" >&2
  say "meson setup failed in a root that has only what install-deps.sh installs:"
  say "${missing:-see the log above}"
  # pkg-config says what is missing underneath (a .pc file's Requires:).
  for dep in $(sed -n 's/.*Dependency "\([^"]*\)" not found.*/\1/p' <<<"$missing"); do
    enter pkg-config --print-errors --exists "$dep" 2>&1 | sed 's/^/pristine-root:   pkg-config: /' >&2 || :
  done
  say "add the Debian package that provides it to scripts/install-deps.sh"
  exit 1
fi
enter ninja -C /tmp/arcvm-build >"$cache/build.log" 2>&1 ||
  { tail -30 "$cache/build.log" >&2; say "the build failed in the minimal root (a header or library install-deps.sh does not install?)"; exit 1; }
if ! enter meson test -C /tmp/arcvm-build --suite unit --print-errorlogs >"$cache/test.log" 2>&1; then
  tail -40 "$cache/test.log" >&2
  say "unit tests failed in the minimal root (a tool install-deps.sh does not install?)"
  exit 1
fi
grep -E '^(Ok|Fail|Skipped|Expected Fail|Unexpected Pass|Timeout):' "$cache/test.log" | tr -s ' ' | paste -sd' ' >&2
if grep -qE '^(Fail|Skipped|Timeout|Unexpected Pass): *[1-9]' "$cache/test.log"; then
  say "some unit tests did not pass in the minimal root"
  exit 1
fi
say "install-deps.sh is complete: a minimal Debian 12 root builds arcvm and passes its unit tests"
