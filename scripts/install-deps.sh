#!/usr/bin/env bash
# Installs the Debian packages that building and testing arcvm need, but only
# the ones that are missing, so that `make` on a ready machine touches nothing.
set -euo pipefail

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
# and on the host).
# .ci/pristine-root.sh proves this list complete on a minimal Debian root.
PKGS=(
  build-essential pkg-config meson ninja-build libcmocka-dev liburing-dev
  libevent-dev libjansson-dev libslirp-dev libglib2.0-dev liblzma-dev zlib1g-dev libseccomp-dev
  clang libclang-rt-14-dev
  qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils
  acpica-tools e2fsprogs util-linux curl iproute2 iperf3 jq fio
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing missing Debian packages: ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps: not root and no sudo; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Package lists may be absent on a fresh machine; refresh them once.
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
