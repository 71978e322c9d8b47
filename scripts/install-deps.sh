#!/usr/bin/env bash
# Installs the Debian packages that building and testing arcvm need, but only
# the ones that are missing, so that `make` on a ready machine touches nothing.
#
#   install-deps.sh          the native (x86-64) build and its tests
#   install-deps.sh --arm64  also the arm64 cross build (`make cross-arm64`)
#                            and the nested aarch64 harness
set -euo pipefail
arm64=0
case ${1:-} in
  '') ;;
  --arm64) arm64=1 ;;
  *) echo "install-deps: unknown argument '$1' (--arm64 or nothing)" >&2; exit 2 ;;
esac

# Build: compiler, meson/ninja, cmocka (unit tests), liburing (asynchronous
# disk I/O), liblzma + zlib (unpacking kernels), libevent + jansson (HTTP and
# JSON for the Firecracker-compatible API), libslirp (rootless user-mode
# networking; its slirp.pc requires glib-2.0, whose -dev package Debian's
# libslirp-dev does not pull in), clang + compiler-rt (sanitizers,
# libFuzzer), libseccomp (per-thread system call filters). Tests: QEMU (nested-KVM harness and the benchmark baseline),
# the stock Debian kernel, busybox (guest images), cpio/kmod (image builder),
# acpica-tools (iasl checks the generated ACPI tables), e2fsprogs, jq (reads
# the JSON of the API and of `arcvm check --json`), iperf3 (bench/net.sh),
# fio (the e2e durability section writes and verifies with it, in the guest
# and on the host), libfdt + device-tree-compiler (the arm64 machine's
# device tree, unit-tested on every host and decompiled by dtc).
# .ci/pristine-root.sh proves this list complete on a minimal Debian root.
PKGS=(
  build-essential pkg-config meson ninja-build libcmocka-dev liburing-dev
  libevent-dev libjansson-dev libslirp-dev libglib2.0-dev liblzma-dev zlib1g-dev libseccomp-dev
  clang libclang-rt-14-dev
  linux-image-amd64 busybox-static cpio kmod xz-utils
  acpica-tools e2fsprogs util-linux curl iproute2 iperf3 jq fio
  libfdt-dev device-tree-compiler
)
# The arm64 cross build: Debian's cross compiler and the :arm64 -dev
# packages through multiarch (those Debian marks Multi-Arch: same, which
# install beside the amd64 ones); QEMU for the nested aarch64 harness.
# Some are not: libevent-dev and libfdt-dev (installing the :arm64 one
# removes the amd64 one); and libglib2.0-dev:arm64 drags in fifteen more
# :arm64 packages (libmount-dev, libselinux1-dev, libffi-dev, pkgconf, ...),
# each one more version that must move in lockstep with its amd64 twin,
# for one .pc file and headers. Those three are unpacked into ARM64_SYSROOT
# instead (the cross file, cross/aarch64-linux-gnu.ini, looks there); their
# shared libraries come from the :arm64 runtime packages below. arcvm-net-user (libslirp) needs
# slirp.pc (libslirp-dev:arm64), glib-2.0.pc (unpacked) and the
# libpcre2-8.pc that glib-2.0.pc requires (libpcre2-dev:arm64), and at run
# time libslirp0, libglib2.0-0 and libpcre2-8-0 (tests/harness/arm64-libs.sh
# copies them into arm64 guests).
ARM64_SYSROOT=/opt/arcvm/arm64-sysroot
ARM64_PKGS=(
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  liblzma-dev:arm64 zlib1g-dev:arm64 libseccomp-dev:arm64 liburing-dev:arm64
  libjansson-dev:arm64 libcmocka-dev:arm64 libfdt1:arm64 libevent-core-2.1-7:arm64
  libevent-extra-2.1-7:arm64
  libslirp-dev:arm64 libpcre2-dev:arm64 libglib2.0-0:arm64 libslirp0:arm64 libpcre2-8-0:arm64
)
ARM64_UNPACKED=(libevent-dev libfdt-dev libglib2.0-dev)
if [ $arm64 = 1 ]; then PKGS+=("${ARM64_PKGS[@]}"); fi

# QEMU runs the nested harnesses (the outer TCG guest whose emulated
# SVM/EL2 carries /dev/kvm) and is the benchmarks' yardstick. It must be
# 10.0 or newer: under Debian 12's QEMU 7.2 the outer x86 kernel panicked
# ("stack guard page was hit", a #GP or #PF loop on a vCPU thread in
# KVM_RUN) in 3 of 3 attempts of one CI run, and the x86 suite took ~20
# min; under 10.0.2 it passed in 14.7 min (the share section 83 s, was
# 342 s). Debian 12 has 10.0 in bookworm-backports (Debian's own archive),
# which we enable and install QEMU from in an apt run of its own (-t
# there; every other package stays at its bookworm version); newer Debian
# releases have it.
QEMU_MIN=1:10.0
QEMU_PKGS=(qemu-system-x86)
if [ $arm64 = 1 ]; then QEMU_PKGS+=(qemu-system-arm); fi
BACKPORTS_LIST=/etc/apt/sources.list.d/arcvm-bookworm-backports.sources

SUDO=
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive

# Unpack the :arm64 build of each ARM64_UNPACKED package into ARM64_SYSROOT
# (once per version): .pc files rewritten to point there, shared-library
# links pointed at the runtime packages' files in /usr/lib/aarch64-linux-gnu.
unpack_arm64() {
  local p ver stamp dir deb
  for p in "${ARM64_UNPACKED[@]}"; do
    ver=$(apt-cache policy "$p:arm64" | awk '/Candidate:/ {print $2}')
    [ -n "$ver" ] && [ "$ver" != '(none)' ] || { echo "install-deps: no $p:arm64 in the package lists" >&2; exit 1; }
    stamp="$ARM64_SYSROOT/.stamp-$p-$ver"
    [ -f "$stamp" ] && continue
    echo "install-deps: unpacking $p:arm64 $ver into $ARM64_SYSROOT" >&2
    dir=$(mktemp -d)
    (cd "$dir" && apt-get download -q "$p:arm64=$ver" >&2)
    deb=$(ls "$dir"/*.deb)
    $SUDO mkdir -p "$ARM64_SYSROOT"
    $SUDO dpkg-deb -x "$deb" "$ARM64_SYSROOT"
    rm -rf -- "$dir"
    local lib="$ARM64_SYSROOT/usr/lib/aarch64-linux-gnu" f t
    for f in "$lib"/*.so; do
      [ -L "$f" ] || continue
      t=$(readlink "$f")
      $SUDO ln -sfn "/usr/lib/aarch64-linux-gnu/${t##*/}" "$f"
    done
    for f in "$lib"/pkgconfig/*.pc; do
      [ -f "$f" ] && $SUDO sed -i "s|^prefix=/usr\$|prefix=$ARM64_SYSROOT/usr|" "$f"
    done
    $SUDO touch "$stamp"
  done
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${PKGS[@]}"; do
  installed "$p" || missing+=("$p")
done
qemu_old=()
for p in "${QEMU_PKGS[@]}"; do
  if ! installed "$p" || ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' "$p")" ge "$QEMU_MIN"; then
    qemu_old+=("$p")
  fi
done
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
qemu_from=()   # a newer Debian's own QEMU is recent enough
[ "$codename" = bookworm ] && qemu_from=(-t bookworm-backports)
if [ ${#missing[@]} -eq 0 ] && [ ${#qemu_old[@]} -eq 0 ]; then
  [ $arm64 = 0 ] || unpack_arm64
  exit 0
fi

echo "install-deps: installing missing Debian packages: ${missing[*]} ${qemu_old[*]}" >&2
if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
  echo "install-deps: not root and no sudo; run as root: apt-get install ${missing[*]} ${qemu_old[*]}" >&2
  exit 1
fi
if [ $arm64 = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
fi
if [ "$codename" = bookworm ] && [ ${#qemu_old[@]} -gt 0 ] && [ ! -f "$BACKPORTS_LIST" ]; then
  echo "install-deps: enabling bookworm-backports for QEMU $QEMU_MIN ($BACKPORTS_LIST)" >&2
  printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
    'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
    $SUDO tee "$BACKPORTS_LIST" >/dev/null
fi
# Package lists may be absent on a fresh machine; refresh them once.
$SUDO apt-get update -q >&2
# Never let apt make room by removing packages: a :arm64 -dev package that
# cannot sit beside its amd64 twin would take the native build with it
# (apt once removed libevent-dev:amd64 that way). Ask apt first, refuse.
# QEMU is installed on its own, with the backports release as the target
# (its qemu-system-common/-data and seabios must come from there too).
would_remove() {
  apt-get install -s -q --no-install-recommends "$@" 2>/dev/null |
    awk '/^Remv / {print $2}' | paste -sd' ' || :
}
removals=''
[ ${#missing[@]} -eq 0 ] || removals=$(would_remove "${missing[@]}")
[ ${#qemu_old[@]} -eq 0 ] || removals="$removals $(would_remove "${qemu_from[@]}" "${qemu_old[@]}")"
removals=$(echo $removals) # one space between names, none around
if [ -n "$removals" ]; then
  echo "install-deps: installing ${missing[*]} ${qemu_old[*]} would remove $removals; refusing (unpack the offending :arm64 package into $ARM64_SYSROOT instead, see ARM64_UNPACKED)" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] || $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
[ ${#qemu_old[@]} -eq 0 ] || $SUDO apt-get install -y -q --no-install-recommends "${qemu_from[@]}" "${qemu_old[@]}" >&2
[ $arm64 = 0 ] || unpack_arm64
