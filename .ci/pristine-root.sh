#!/usr/bin/env bash
# pristine-root.sh - prove that scripts/install-deps.sh installs everything
# the build and the unit tests need, including what pkg-config files pull in:
# in a minimal Debian 12 root (debootstrap --variant=minbase, nothing but
# Debian's essentials), install-deps.sh, meson setup, ninja and the unit
# tests must all succeed. A package this machine happens to have cannot hide
# a missing install step here.
#
# Then the same for the arm64 cross build: install-deps.sh --arm64 on top
# of that root (in an overlay, so the native proof above keeps a root with
# the native list only), which must not remove any package the native list
# installed, then meson setup + ninja of the whole cross build
# (cross/aarch64-linux-gnu.ini), and tests/harness/arm64-libs.sh must find
# every shared library the cross-built arcvm-net-user needs.
#
# The root is cached in $ARCVM_CI_CACHE (default /var/cache/arcvm-ci), keyed
# on install-deps.sh: reused while the script is unchanged (a new dependency
# in meson.build without a matching install step still fails the build
# inside), rebuilt from debootstrap when it changes. The arm64 layer
# ($root.arm64: the overlay's upper directory) is cached the same way.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${ARCVM_CI_CACHE:-/var/cache/arcvm-ci}
mirror=${ARCVM_CI_MIRROR:-http://deb.debian.org/debian}
key=$(cat "$repo/scripts/install-deps.sh" "$0" | sha256sum | cut -c1-16)
root="$cache/bookworm-$key"
layer="$root.arm64"
t0=$SECONDS
say() { echo "pristine-root: [$((SECONDS - t0)) s] $*" >&2; }

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
croot=$root # the root enter() runs in
enter() { chroot "$croot" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
mount_all() {
  bind /proc "$croot/proc"
  bind /sys "$croot/sys"
  bind /dev "$croot/dev"
  bind /dev/pts "$croot/dev/pts"
  mkdir -p "$croot/src"
  bind "$repo" "$croot/src" ro
  cp /etc/resolv.conf "$croot/etc/resolv.conf"
}

if [ ! -f "$root/.arcvm-ready" ]; then
  mkdir -p "$cache"
  # Roots of older install-deps.sh versions are dead weight now.
  find "$cache" -maxdepth 1 -name 'bookworm-*' ! -name "${root##*/}" ! -name "${layer##*/}" \
    -exec rm -rf {} + 2>/dev/null || :
  rm -rf "$root" "$layer"
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

# --- the arm64 cross build, on an overlay of that root -----------------------
# The native root stays as the native list left it (its proof above must not
# see arm64 packages); the overlay's upper directory keeps what
# install-deps.sh --arm64 adds.
if [ ! -f "$layer/upper/.arcvm-arm64-ready" ]; then rm -rf "$layer"; fi
mkdir -p "$layer/upper" "$layer/work" "$layer/merged"
mount -t overlay overlay -o "lowerdir=$root,upperdir=$layer/upper,workdir=$layer/work" "$layer/merged"
mounted+=("$layer/merged")
croot=$layer/merged
mount_all
if [ ! -f "$croot/.arcvm-arm64-ready" ]; then
  say "scripts/install-deps.sh --arm64 on top of it"
  enter dpkg-query -W -f '${Package}:${Architecture}\n' | sort >"$cache/packages-native.txt"
  if ! enter /src/scripts/install-deps.sh --arm64 >"$cache/install-arm64.log" 2>&1; then
    tail -30 "$cache/install-arm64.log" >&2
    say "install-deps.sh --arm64 failed in a minimal Debian root (log: $cache/install-arm64.log)"
    exit 1
  fi
  removed=$(enter dpkg-query -W -f '${Package}:${Architecture}\n' | sort | comm -23 "$cache/packages-native.txt" - | paste -sd' ')
  if [ -n "$removed" ]; then
    say "install-deps.sh --arm64 removed packages the native build needs: $removed"
    exit 1
  fi
  touch "$croot/.arcvm-arm64-ready"
else
  say "reusing the arm64 layer $layer"
fi
say "meson setup and ninja of the arm64 cross build inside it"
enter rm -rf /tmp/arcvm-build-arm64
if ! enter meson setup /tmp/arcvm-build-arm64 /src --cross-file /src/cross/aarch64-linux-gnu.ini \
     >"$cache/setup-arm64.log" 2>&1; then
  tail -20 "$cache/setup-arm64.log" >&2
  say "meson setup of the arm64 cross build failed in a root that has only what install-deps.sh --arm64 installs"
  say "add the :arm64 package (or, if it cannot sit beside its amd64 twin, ARM64_UNPACKED) to scripts/install-deps.sh"
  exit 1
fi
enter ninja -C /tmp/arcvm-build-arm64 >"$cache/build-arm64.log" 2>&1 ||
  { tail -30 "$cache/build-arm64.log" >&2; say "the arm64 cross build failed in the minimal root"; exit 1; }
for exe in arcvm arcvm-net-user; do
  [ -x "$croot/tmp/arcvm-build-arm64/$exe" ] || { say "the arm64 cross build made no $exe"; exit 1; }
done
if ! libs=$(enter /src/tests/harness/arm64-libs.sh /tmp/arcvm-build-arm64/arcvm-net-user 2>&1); then
  say "$libs"
  say "the cross-built arcvm-net-user needs a library install-deps.sh --arm64 does not install"
  exit 1
fi
say "arcvm-net-user's loader and libraries for arm64 guests: $(awk -F: '{print $NF}' <<<"$libs" | paste -sd' ')"
say "install-deps.sh --arm64 is complete: the same root cross-builds arcvm and arcvm-net-user for arm64"
