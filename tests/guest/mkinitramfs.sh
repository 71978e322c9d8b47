#!/usr/bin/env bash
# mkinitramfs.sh — build a small guest initramfs (gzip-compressed newc cpio)
# from busybox-static plus kernel modules of the stock Debian kernel that
# tests/guest/kernel.sh resolves.
#
# Usage:
#   mkinitramfs.sh -o OUT.cpio.gz -i INIT_SCRIPT [-m MODULE]... [-f HOSTPATH:GUESTPATH]...
#                  [-b BINARY]... [-B BUSYBOX] [-K BASEDIR]
#   mkinitramfs.sh -d DIR -i INIT_SCRIPT ...   the same tree in a directory
#
#   -o OUT       output file, written atomically (temp file + mv)
#   -d DIR       write the tree into DIR (created, must not exist) instead of
#                an archive, e.g. for mkfs.ext4 -d; no /dev/console node then
#   -i INIT      becomes /init (mode 755)
#   -m MODULE    kernel module to include (kvm-amd and kvm_amd both work), with
#                its dependencies resolved recursively via `modinfo -F depends`
#   -f HOST:GUEST  copy a host file or directory to GUEST (absolute path);
#                the split is at the last ':'
#   -b BINARY    a dynamically linked host program (e.g. /usr/bin/iperf3), put
#                at the same path with every shared library ldd lists for it
#   -B BUSYBOX   a static busybox of another architecture (an arm64 image:
#                tests/harness/nested-arm64.sh) instead of the host's; the
#                applet links come from the host's busybox of the same version
#   -K BASEDIR   take -m modules from the module tree BASEDIR/lib/modules/REL
#                (an unpacked kernel package, e.g. Debian's arm64 one; exactly
#                one REL there) instead of the host kernel's (kernel.sh)
#
# Image layout:
#   /bin/busybox plus a symlink for every applet (as `busybox --install -s`)
#   /dev /proc /sys /tmp /run /mnt /root /etc, and a /dev/console node
#   /lib/modules/<release>/...   the modules, decompressed to plain .ko
#   /etc/modules.list            their paths, dependencies first
#   /bin/load-modules            insmods that list in order (skips loaded ones)
#
# /dev/console: the archive carries a real character node (5,1). It is written
# as a hand-made newc entry, so no mknod and no root are needed to build it; the
# kernel creates the node while unpacking. Init scripts should still mount
# devtmpfs on /dev for everything else.
#
# Deterministic: sorted entries, owner 0:0, mtimes at $SOURCE_DATE_EPOCH (0 by
# default), gzip -n. Runs as any user that can read the kernel's modules.
set -euo pipefail

prog=mkinitramfs.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "$prog: $*" >&2; exit 1; }
usage() {
  sed -n '/^# Usage:/,/^# Image layout:/{/^# Image layout:/d;s/^# \{0,1\}//p}' "$0" >&2
  exit 2
}

out='' init='' dir=''
modules=() files=() binaries=()
guest_busybox='' modbase=''
while getopts ':o:d:i:m:f:b:B:K:h' opt; do
  case $opt in
    o) out=$OPTARG ;;
    d) dir=$OPTARG ;;
    i) init=$OPTARG ;;
    m) modules+=("$OPTARG") ;;
    f) files+=("$OPTARG") ;;
    b) binaries+=("$OPTARG") ;;
    B) guest_busybox=$OPTARG ;;
    K) modbase=$OPTARG ;;
    h) usage ;;
    :) echo "$prog: -$OPTARG needs an argument" >&2; usage ;;
    *) echo "$prog: unknown option -$OPTARG" >&2; usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { echo "$prog: unexpected argument '$1'" >&2; usage; }
[ -n "$out$dir" ] || { echo "$prog: -o OUT or -d DIR is required" >&2; usage; }
[ -z "$out" ] || [ -z "$dir" ] || { echo "$prog: -o and -d exclude each other" >&2; usage; }
[ -z "$dir" ] || [ ! -e "$dir" ] || die "-d '$dir' exists already"
[ -n "$init" ] || { echo "$prog: -i INIT_SCRIPT is required" >&2; usage; }
if [ ! -f "$init" ] || [ ! -r "$init" ]; then die "init script '$init' is not a readable file"; fi

for tool in cpio gzip; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh"
done
busybox=/bin/busybox
# Only the static build works in an image without a libc.
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  die "static $busybox not found; run scripts/install-deps.sh (package busybox-static)"
fi

modinfo_base=()
if [ -n "$modbase" ]; then
  # Another kernel's tree: modinfo -b looks there only, never at the host's
  # /lib/modules (a module of the same name would be the wrong one).
  [ -d "$modbase/lib/modules" ] || die "-K '$modbase' has no lib/modules directory"
  modbase=$(cd "$modbase" && pwd)
  rels=("$modbase"/lib/modules/*/)
  [ ${#rels[@]} -eq 1 ] && [ -d "${rels[0]}" ] ||
    die "-K '$modbase': want exactly one kernel release in lib/modules, found ${#rels[@]}"
  kver=$(basename "${rels[0]}")
  moddir=$(cd "${rels[0]}" && pwd)
  modinfo_base=(-b "$modbase")
else
  kver=$("$here/kernel.sh" --version)
  moddir=$("$here/kernel.sh" --modules-dir)
fi

umask 022 # the modes in the image must not depend on the caller's umask
epoch=${SOURCE_DATE_EPOCH:-0}
if [ -n "$dir" ]; then
  mkdir -p -- "$dir"
  stage=$(cd "$dir" && pwd)
else
  outdir=$(dirname -- "$out")
  mkdir -p -- "$outdir"
  stage=$(mktemp -d "${TMPDIR:-/tmp}/mkinitramfs.XXXXXX")
  tmpout=$(mktemp "$outdir/.$(basename -- "$out").XXXXXX")
  trap 'rm -rf -- "$stage"; rm -f -- "$tmpout"' EXIT
fi

# --- skeleton and busybox ---------------------------------------------------
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,mnt,root,etc}
chmod 1777 "$stage/tmp"
chmod 700 "$stage/root"
if [ -n "$guest_busybox" ]; then
  [ -f "$guest_busybox" ] || die "-B '$guest_busybox' is not a file"
  cp "$guest_busybox" "$stage/bin/busybox"
else
  cp "$busybox" "$stage/bin/busybox"
fi
# Applet paths look like usr/sbin/chroot; their directories exist already.
# One perl process (perl-base is Essential in Debian) instead of ~270 `ln -s`
# forks saves about a second.
"$busybox" --list-full | (cd "$stage" && perl -lne \
  'next if $_ eq "" || -e || -l; symlink("/bin/busybox", $_) or die "symlink $_: $!\n"')

install -m 755 "$init" "$stage/init"

# --- kernel modules ---------------------------------------------------------
# resolve NAME -> path of its .ko* file in $moddir, "(builtin)", or failure.
resolve_module() {
  local name=$1 f norm
  f=$(modinfo ${modinfo_base[@]+"${modinfo_base[@]}"} -k "$kver" -F filename "$name" 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    # No modules.dep (depmod never ran)? Search by file name, treating - and _
    # alike as the kernel does.
    norm=${name//-/_}
    f=$(find "$moddir" -name '*.ko*' | LC_ALL=C sort | while read -r p; do
          b=${p##*/}; b=${b%%.ko*}
          [ "${b//-/_}" = "$norm" ] && { echo "$p"; break; }
        done)
    # Or built into the kernel (modules.builtin, shipped with the package).
    if [ -z "$f" ] && [ -f "$moddir/modules.builtin" ] &&
       sed 's,.*/,,; s,\.ko.*,,; y,-,_,' "$moddir/modules.builtin" | grep -qxF "$norm"; then
      f="(builtin)"
    fi
  fi
  [ -n "$f" ] || die "module '$name' is not in kernel $kver ($moddir); check the name with: find $moddir -name '${name//[-_]/?}.ko*'"
  echo "$f"
}

declare -A visited=()
ordered=()   # module files, dependencies first
builtin=()
visit() {
  local name=$1 key f deps dep
  key=${name//-/_}
  [ -z "${visited[$key]+x}" ] || return 0
  visited[$key]=1
  f=$(resolve_module "$name")
  if [ "$f" = "(builtin)" ]; then builtin+=("$key"); return 0; fi
  deps=$(modinfo -F depends "$f")
  local IFS=,
  for dep in $deps; do
    [ -n "$dep" ] && visit "$dep"
  done
  ordered+=("$f")
}
# The loop below runs in this shell (not a pipe), so `die` inside stops us.
for m in "${modules[@]}"; do visit "$m"; done

mkdir -p "$stage/lib/modules/$kver"
: >"$stage/etc/modules.list"
for f in "${ordered[@]}"; do
  rel=${f#"$moddir"/}
  dest="$stage/lib/modules/$kver/${rel%.ko*}.ko"
  mkdir -p "$(dirname "$dest")"
  # busybox insmod takes plain ELF only; Debian may ship .ko.xz/.ko.zst.
  case $f in
    *.ko) cp "$f" "$dest" ;;
    *.ko.xz) command -v xz >/dev/null || die "$f is xz-compressed but xz is missing; apt-get install xz-utils"
             xz -dc "$f" >"$dest" ;;
    *.ko.zst) command -v zstd >/dev/null || die "$f is zstd-compressed but zstd is missing; apt-get install zstd"
              zstd -qdc "$f" >"$dest" ;;
    *.ko.gz) gzip -dc "$f" >"$dest" ;;
    *) die "unknown module file type: $f" ;;
  esac
  chmod 644 "$dest"
  echo "/lib/modules/$kver/${rel%.ko*}.ko" >>"$stage/etc/modules.list"
done
if [ ${#builtin[@]} -gt 0 ]; then
  printf '%s\n' "${builtin[@]}" >"$stage/etc/modules.builtin"
fi

cat >"$stage/bin/load-modules" <<'EOF'
#!/bin/sh
# load-modules: insmod every module in /etc/modules.list, in order (the list
# puts dependencies first). Modules already loaded or built in are skipped.
# Exits 1 if any module failed to load (after trying the rest).
rc=0
[ -f /etc/modules.list ] || exit 0
while read -r path; do
  [ -n "$path" ] || continue
  name=${path##*/}; name=${name%.ko}
  name=$(echo "$name" | tr - _)   # /sys/module uses the underscore spelling
  [ -d "/sys/module/$name" ] && continue
  if ! err=$(insmod "$path" 2>&1); then
    case $err in
      *"File exists"*) ;;            # loaded meanwhile, or built in
      *) echo "load-modules: insmod $path failed: $err" >&2; rc=1 ;;
    esac
  fi
done </etc/modules.list
exit $rc
EOF
chmod 755 "$stage/bin/load-modules"

# --- extra files ------------------------------------------------------------
for spec in ${files[@]+"${files[@]}"}; do
  case $spec in *:*) ;; *) die "-f wants HOSTPATH:GUESTPATH, got '$spec'" ;; esac
  src=${spec%:*} dst=${spec##*:}
  case $dst in /*) ;; *) die "-f guest path must be absolute: '$dst'" ;; esac
  [ -e "$src" ] || die "-f source '$src' does not exist"
  mkdir -p "$stage$(dirname "$dst")"
  cp -a -- "$src" "$stage$dst"
done

# --- programs with their shared libraries -----------------------------------
for bin in ${binaries[@]+"${binaries[@]}"}; do
  [ -x "$bin" ] || die "-b '$bin' is not an executable"
  for f in "$bin" $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
    [ -e "$stage$f" ] && continue
    mkdir -p "$stage$(dirname "$f")"
    cp -L -- "$f" "$stage$f"   # -L: the library itself, not its symlink
  done
done

# --- archive ----------------------------------------------------------------
[ -z "$dir" ] || exit 0
# newc_entry NAME MODE(octal) RDEVMAJOR RDEVMINOR INO: one header-only entry.
newc_entry() {
  local name=$1 mode=$2 maj=$3 min=$4 ino=$5 namesize pad
  namesize=$(( ${#name} + 1 ))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$ino" "$((8#$mode))" 0 0 1 "$epoch" 0 0 0 "$maj" "$min" "$namesize" 0
  printf '%s\0' "$name"
  # header (110 bytes) + name is padded to a multiple of 4
  pad=$(( (4 - (110 + namesize) % 4) % 4 ))
  [ $pad -eq 0 ] || head -c "$pad" /dev/zero
}

find "$stage" -exec touch -h -d "@$epoch" {} +
{
  # --reproducible: no device numbers and renumbered inodes; -R 0:0: the
  # builder's uid must not leak into the image.
  (cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
     cpio -o -H newc --reproducible -R 0:0 --quiet)
  # A second archive with the console node; the kernel unpacks concatenated
  # newc archives in turn.
  newc_entry dev/console 020600 5 1 1
  newc_entry TRAILER!!! 0 0 0 0
} | gzip -n -6 >"$tmpout"   # -n: no name/timestamp in the gzip header
chmod 644 "$tmpout"
mv -f -- "$tmpout" "$out"
