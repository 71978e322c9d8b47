# share.sh - the virtio-fs section of suite.sh (sourced; uses lib.sh).
#
# Two boots. The first, arcvm as root: a share and a read-only one, files
# both ways (a checksummed tree each way, a file larger than the guest's
# RAM), the namespace calls, hard links, truncate, fallocate, xattrs,
# changes the host makes while the guest has the share mounted, owners.
# The second, arcvm as an ordinary user (nobody) with a small descriptor
# limit: owners as that user, a hostile guest program that sends raw FUSE
# requests (tests/guest/fuse-attack.c), mount and unmount 50 times.
#
# The shares live on an ext4 file system in a loop-mounted image: in the
# nested harness /tmp is tmpfs on Linux 6.1, which has no user.* xattrs
# and is mounted nodev (a device node there would not tell the server's
# refusal from the mount's).

FS_TOOL=${FS_TOOL:-$PWD/build/fs-tool}

# host_xattr FILE NAME: the value, or nothing (python3, not our fs-tool:
# an independent reader).
host_xattr() {
  python3 -c 'import os, sys
try: print(os.getxattr(sys.argv[1], sys.argv[2]).decode())
except OSError: pass' "$1" "$2"
}
host_xattrs() { python3 -c 'import os, sys; print(" ".join(sorted(os.listxattr(sys.argv[1]))))' "$1"; }
nfds() { ls "/proc/$(cat "$(vm_dir "$1")/pid")/fd" 2>/dev/null | wc -l; }

# A marker for one command's answer, never used before in this run.
guest_tag() { echo "$1$(date +%s%N)"; }

# guest_ok NAME DESC CMD [SECS]: run CMD in the guest, pass when it exits 0.
guest_ok() {
  local name=$1 desc=$2 cmd=$3 secs=${4:-60} tag t0=$SECONDS
  tag=$(guest_tag R)
  vm_send "$name" "$cmd; echo $tag-\$?"
  if vm_expect "$name" "^$tag-[0-9]+\$" "$secs"; then
    check "$desc [$((SECONDS - t0)) s]" vm_expect "$name" "^$tag-0\$" 1
  else
    not_ok "$desc (no answer in ${secs}s)"
  fi
}

# guest_val NAME CMD [SECS]: run CMD in the guest, print its standard
# output (lines joined by spaces, no trailing space).
guest_val() {
  local name=$1 cmd=$2 secs=${3:-60} tag
  tag=$(guest_tag V)
  vm_send "$name" "echo $tag-\$( { $cmd; } | tr '\\n' ' ')-END"
  vm_expect "$name" "^$tag-.*-END\$" "$secs" >/dev/null &&
    vm_grep "$name" "^$tag-" | sed "s/^$tag-//; s/ *-END\$//"
}

outside_kept() { [ "$(cat "$O/secret")" = outside ] && [ "$(ls "$O")" = secret ]; }
allocated() { local s b k; read -r s b k < <(stat -c '%s %b %B' "$1") && [ "$s" = "$2" ] && [ $((b * k)) -ge "$2" ]; }

share_setup() {
  F="$E2E_TMP/fsimg"
  S="$F/share" R="$F/share-ro" O="$F/share-outside" A="$F/attack" U="$F/user"
  mkdir -p "$F"
  modprobe loop 2>/dev/null; modprobe ext4 2>/dev/null # the outer guest loads nothing by itself
  truncate -s 1G "$E2E_TMP/shares.ext4"
  if mkfs.ext4 -q -F "$E2E_TMP/shares.ext4" && mount -o loop "$E2E_TMP/shares.ext4" "$F"; then
    SHARE_MOUNTED=1
  else
    not_ok "an ext4 image for the shares (loop mount); xattr checks will fail on tmpfs"
    SHARE_MOUNTED=0
  fi
  mkdir -p "$S" "$R" "$O" "$A" "$U"
  # nobody (the second boot) must reach its shares.
  chmod 711 "$E2E_TMP"
  echo "outside" >"$O/secret"
  head -c 3M /dev/urandom >"$S/host.bin"
  python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.origin", b"host")' "$S/host.bin"
  echo "read only" >"$R/ro.txt"
  ln -s ../share-outside/secret "$S/escape"
  echo doomed >"$S/doomed"
  # A tree of files with known checksums.
  local i
  for i in $(seq 1 30); do
    mkdir -p "$S/tree/d$((i % 5))/e$((i % 3))"
    head -c $((i * 4099)) /dev/urandom >"$S/tree/d$((i % 5))/e$((i % 3))/f$i"
  done
  (cd "$S/tree" && find . -type f | sort | xargs sha256sum >"$S/tree.sha256")
  # The attack share: a file, a fifo, a device node (1:3, as /dev/null,
  # mode 666: only the server's rule can refuse to open it), symlinks out
  # of the share, and files to flood lookups with.
  echo plain >"$A/plain"
  mkfifo -m 666 "$A/fifo"
  mknod -m 666 "$A/devnode" c 1 3
  ln -s ../share-outside/secret "$A/escape"
  ln -s ../share-outside "$A/escdir"
  (cd "$A" && seq -f 'f%g' 0 599 | xargs touch)
  chmod -R a+rX "$A"
  chown 65534:65534 "$U"
}

share_teardown() {
  [ "$SHARE_MOUNTED" = 1 ] && umount "$F"
  rm -f "$E2E_TMP/shares.ext4"
}

# ---- boot 1: arcvm as root ----
share_root() {
  local host_sha gsha tsha n0 n1 mem owners t0
  host_sha=$(sha256sum "$S/host.bin" | cut -d' ' -f1)
  if ! vm_expect share "ARCVM-GUEST-READY" 240; then
    not_ok "boot with shares"; vm_wait share 5
    tail -5 "$(vm_dir share)/err" | sed 's/^/     /'; return
  fi
  ok "boots with two shares [$((SECONDS - SHARE_T0)) s]"
  guest_ok share "the guest mounts both shares" \
    'modprobe virtiofs 2>/dev/null; mkdir -p /mnt /ro; mount -t virtiofs hostshare /mnt && mount -t virtiofs roshare /ro && [ -f /mnt/doomed ]' 30
  check "the guest reads the host's 3 MiB file intact" \
    [ "$(guest_val share 'sha256sum </mnt/host.bin | cut -c1-64')" = "$host_sha" ]
  gsha=$(guest_val share 'dd if=/dev/urandom of=/mnt/guest.bin bs=1M count=5 2>/dev/null; sync; sha256sum </mnt/guest.bin | cut -c1-64')
  check "the host reads the guest's 5 MiB file intact" \
    [ -n "$gsha" -a "$(sha256sum "$S/guest.bin" | cut -d' ' -f1)" = "$gsha" ]
  guest_ok share "a tree of 30 files from the host reads intact in the guest (sha256sum -c)" \
    'cd /mnt/tree && sha256sum -c /mnt/tree.sha256 >/dev/null && [ $(find . -type f | wc -l) = 30 ]; r=$?; cd /; (exit $r)' 60
  guest_ok share "the guest writes a tree of 30 files and its manifest" \
    'mkdir -p /mnt/gtree && cd /mnt/gtree && for i in $(seq 1 30); do mkdir -p d$((i % 4)) && dd if=/dev/urandom of=d$((i % 4))/g$i bs=$((i * 3001)) count=1 2>/dev/null; done && find . -type f | sort | xargs sha256sum >/mnt/gtree.sha256; r=$?; cd /; (exit $r)' 120
  check "the host checks the guest's tree against its manifest" \
    sh -c "cd '$S/gtree' && sha256sum -c --quiet '$S/gtree.sha256' && [ \$(wc -l <'$S/gtree.sha256') = 30 ]"
  guest_ok share "rename, symlink, chmod, mkdir -p and rm -rf of a deep tree in the guest" \
    'cd /mnt && mv guest.bin moved.bin && ln -s moved.bin link && chmod 600 moved.bin && mkdir -p deep/a/b/c/d/e/f && echo x >deep/a/b/c/d/e/f/x && echo y >deep/a/y && rm -rf deep; r=$?; cd /; (exit $r)' 60
  host_sees() { [ -f "$S/moved.bin" ] && [ ! -e "$S/guest.bin" ] && [ ! -e "$S/deep" ] &&
    [ "$(readlink "$S/link")" = moved.bin ] && [ "$(stat -c %a "$S/moved.bin")" = 600 ]; }
  check "the host sees them" host_sees
  # Hard link, truncate, fallocate, xattrs.
  check "a hard link made in the guest: 2 links there" \
    [ "$(guest_val share 'ln /mnt/moved.bin /mnt/hard && stat -c %h /mnt/moved.bin')" = 2 ]
  check "... and on the host, the same inode" \
    [ "$(stat -c %h "$S/moved.bin")" = 2 -a "$(stat -c %i "$S/moved.bin")" = "$(stat -c %i "$S/hard")" ]
  tsha=$(guest_val share 'head -c 100000 /dev/urandom >/mnt/trunc && head -c 12345 /mnt/trunc | sha256sum | cut -c1-64 && truncate -s 12345 /mnt/trunc')
  check "truncate in the guest: the host has the first 12345 bytes" \
    [ -n "$tsha" -a "$(stat -c %s "$S/trunc")" = 12345 -a "$(sha256sum <"$S/trunc" | cut -d' ' -f1)" = "$tsha" ]
  guest_ok share "fallocate -l 8M in the guest" 'fallocate -l 8388608 /mnt/falloc'
  check "the host has the 8 MiB allocated ($(stat -c '%s bytes, %b blocks of %B' "$S/falloc" 2>&1))" \
    allocated "$S/falloc" 8388608
  guest_ok share "the guest sets user.color" 'fs-tool setxattr /mnt/moved.bin user.color blue'
  check "the host reads the guest's xattr" [ "$(host_xattr "$S/moved.bin" user.color)" = blue ]
  check "the guest reads the host's xattr" \
    [ "$(guest_val share 'fs-tool getxattr /mnt/host.bin user.origin')" = host ]
  check "the guest lists the xattrs" \
    [ "$(guest_val share 'fs-tool listxattr /mnt/moved.bin')" = user.color ]
  check "trusted.* and security.* from the guest are refused" \
    [ "$(guest_val share 'fs-tool setxattr /mnt/moved.bin trusted.evil x; fs-tool setxattr /mnt/moved.bin security.evil x' | grep -o 'not supported' | wc -l)" = 2 ]
  check "... and absent on the host ($(host_xattrs "$S/moved.bin"))" [ "$(host_xattrs "$S/moved.bin")" = user.color ]
  # Changes the host makes while the share is mounted.
  echo one >"$S/live.txt"
  check "a file the host creates shows in the guest" [ "$(guest_val share 'cat /mnt/live.txt')" = one ]
  echo "two, longer" >"$S/live.txt"; rm "$S/doomed"
  check "the host's change to it shows in the guest (after the 1 s attribute timeout)" \
    [ "$(guest_val share 'sleep 2; cat /mnt/live.txt')" = "two, longer" ]
  check "a file the host removes is gone in the guest" \
    [ "$(guest_val share '[ -e /mnt/doomed ]; echo $?')" = 1 ]
  # Owners (arcvm as root): a new entry is its guest maker's, chown goes through.
  guest_ok share "guest root and guest uid 1000 make files; root gives one to 1234:2345" \
    'mkdir /mnt/own && chmod 777 /mnt/own && touch /mnt/own/byroot && fs-tool as 1000:1000 touch /mnt/own/by1000 && touch /mnt/own/given && chown 1234:2345 /mnt/own/given'
  owners=$(cd "$S/own" 2>/dev/null && stat -c %u:%g byroot by1000 given | tr '\n' ' ')
  check "owners on the host of byroot, by1000, given: $owners" [ "$owners" = "0:0 1000:1000 1234:2345 " ]
  check "the guest sees the same owners" \
    [ "$(guest_val share 'stat -c %u:%g /mnt/own/by1000 /mnt/own/given')" = "1000:1000 1234:2345" ]
  # A file larger than the guest's RAM, written and read back through the share.
  mem=$(guest_val share 'awk "/MemTotal/ {print \$2}" /proc/meminfo')
  guest_ok share "the guest writes 200 MiB, more than its RAM (MemTotal ${mem} kB)" \
    'fs-tool pattern-write /mnt/big 200 >/dev/null' 240
  check "the host reads every block of it in place" \
    [ "${mem:-999999}" -lt 204800 -a "$("$FS_TOOL" pattern-check "$S/big" 200)" = "pattern ok 200 MiB" ]
  guest_ok share "the guest reads it back with a cold cache" \
    'echo 3 >/proc/sys/vm/drop_caches; fs-tool pattern-check /mnt/big 200 >/dev/null && rm /mnt/big' 240
  # The read-only share, and mount and unmount 50 times.
  check "a symlink out of the share leads nowhere in the guest" \
    [ "$(guest_val share 'cat /mnt/escape >/dev/null 2>&1; echo $?')" != 0 ]
  check "the read-only share refuses a new file and a removal" \
    [ "$(guest_val share 'echo no >/ro/new.txt; a=$?; rm /ro/ro.txt; echo $a$?')" != 00 ]
  check "the read-only share's files are untouched" [ -f "$R/ro.txt" -a ! -e "$R/new.txt" ]
  check "nothing outside the share changed" outside_kept
  guest_ok share "the read-only share unmounts" 'umount /ro'
  n0=$(nfds share) t0=$SECONDS
  check "mount, look up, unmount 50 times in a row" \
    [ "$(guest_val share 'i=0; while [ $i -lt 50 ] && mount -t virtiofs roshare /ro && [ -f /ro/ro.txt ] && umount /ro; do i=$((i + 1)); done; echo $i' 240)" = 50 ]
  echo "     the 50 cycles took $((SECONDS - t0)) s"
  n1=$(nfds share)
  check "arcvm holds no more descriptors after them ($n0 before, $n1 after)" [ "$n1" -le "$n0" ]
  guest_ok share "the share unmounts" 'umount /mnt'
  vm_send share 'poweroff -f'
  vm_wait share 60
  check "power-off with shares exits 0 (got $VM_RC)" [ "$VM_RC" -eq 0 ]
  [ "$VM_RC" -eq 0 ] || tail -3 "$(vm_dir share)/err" | sed 's/^/     /'
}

# What each fuse-attack request must get (tests/guest/fuse-attack.c).
FUSE_ATTACKS="before-init:EIO init:OK second-init:EIO
lookup-slash:EINVAL lookup-dotdot:EINVAL lookup-dot:EINVAL lookup-empty:EINVAL
lookup-path-out:EINVAL lookup-absolute:EINVAL lookup-too-long:ENAMETOOLONG
lookup-unterminated:EINVAL
lookup-escape-symlink:OK open-escape-symlink:EACCES lookup-through-symlink:ENOTDIR
lookup-escdir-symlink:OK lookup-through-dir-symlink:ENOTDIR
lookup-fifo:OK open-fifo:EACCES lookup-devnode:OK open-devnode:EACCES
create-over-fifo:EACCES mknod-chardev:EPERM setxattr-security:EOPNOTSUPP
rename-whiteout:EINVAL forget-one:NOREPLY lookup-after-forget:OK
len-larger:EINVAL len-smaller:EINVAL truncated-header:NOREPLY reply-room-8:NOREPLY
reply-room-no-entry:EINVAL unknown-opcode:ENOSYS opcode-zero:ENOSYS
getattr-unknown-node:ENOENT read-bad-fh:EBADF write-size-mismatch:EINVAL
forget-on-request-queue:NOREPLY forget-root:NOREPLY batch-forget-overcount:NOREPLY
interrupt:NOREPLY lookup-on-hiprio:NOREPLY getattr-root-after-all:OK"

# ---- boot 2: arcvm as nobody, 2048 descriptors ----
share_user() {
  local out a want got bad=0 n=0 flood left owners t0
  if ! vm_expect shareu "ARCVM-GUEST-READY" 240; then
    not_ok "boot as nobody with shares"; vm_wait shareu 5
    tail -5 "$(vm_dir shareu)/err" | sed 's/^/     /'; return
  fi
  ok "arcvm as nobody boots with two shares"
  t0=$SECONDS
  vm_send shareu 'modprobe virtiofs 2>/dev/null; fuse-attack attackshare 600 2>&1; echo FA-RC-$?'
  if vm_expect shareu '^FA-RC-[0-9]+$' 300; then
    echo "     fuse-attack took $((SECONDS - t0)) s"
    out=$(tr -d '\r' <"$(vm_dir shareu)/out")
    for a in $FUSE_ATTACKS; do
      want=${a#*:} n=$((n + 1))
      got=$(echo "$out" | awk -v k="${a%%:*}" '$1 == "FUSE" && $2 == k {print $3; exit}')
      [ "$got" = "$want" ] || { bad=$((bad + 1)); echo "     ${a%%:*}: got '${got:-nothing}', want $want"; }
    done
    check "fuse-attack: each of $n raw requests gets the expected answer ($bad wrong)" \
      [ $bad -eq 0 -a "$(grep -ac '^FUSE-DONE' <<<"$out")" = 1 ]
    flood=$(echo "$out" | grep -a '^FUSE flood' | sed 's/^FUSE //')
    check "a flood of lookups without FORGET meets the inode limit: $flood" \
      grep -qE '^flood lookups=600 ok=[1-5][0-9]{2} ENFILE=[1-9][0-9]* other=0$' <<<"$flood"
    check "arcvm logged the limit" grep -q 'inodes is reached' "$(vm_dir shareu)/err"
  else
    not_ok "fuse-attack did not finish"
  fi
  check "nothing outside the shares changed" outside_kept
  left=$(ls "$A" | grep -v '^f[0-9]' | tr '\n' ' ')
  check "the attack made nothing in its share ($left)" \
    [ "$left" = "devnode escape escdir fifo plain " -a "$(cat "$A/plain")" = plain ]
  check "... nor an xattr on its file ($(host_xattrs "$A/plain"))" [ -z "$(host_xattrs "$A/plain")" ]
  got=$(guest_val shareu 'mkdir -p /att && mount -t virtiofs attackshare /att && cat /att/plain && stat -c %n /att/f599' 60)
  check "the kernel drives the attacked device again: mount, read, look up ($got)" \
    [ "$got" = "plain /att/f599" ]
  guest_ok shareu "it unmounts" 'umount /att'
  # Owners as nobody: everything the guest makes is nobody's on the host.
  guest_ok shareu "the user share mounts; guest root and uid 1000 make files" \
    'mkdir -p /u && mount -t virtiofs usershare /u && touch /u/byroot && chmod 777 /u && fs-tool as 1000:1000 touch /u/by1000'
  owners=$(stat -c %u:%g "$U/byroot" "$U/by1000" | tr '\n' ' ')
  check "on the host both are nobody's: $owners" \
    [ "$owners" = "65534:65534 65534:65534 " ]
  check "the guest sees the host's owners" \
    [ "$(guest_val shareu 'stat -c %u:%g /u/by1000')" = 65534:65534 ]
  check "guest root's chown to 1234 fails: arcvm cannot give files away" \
    [ "$(guest_val shareu 'chown 1234 /u/byroot 2>/dev/null; echo $?')" != 0 ]
  check "... and the host file stays nobody's" [ "$(stat -c %u "$U/byroot")" = 65534 ]
  guest_ok shareu "the user share unmounts" 'umount /u'
  vm_send shareu 'poweroff -f'
  vm_wait shareu 60
  check "power-off after the attack exits 0 (got $VM_RC)" [ "$VM_RC" -eq 0 ]
  [ "$VM_RC" -eq 0 ] || tail -3 "$(vm_dir shareu)/err" | sed 's/^/     /'
}

section_share() {
  local F S R O A U SHARE_MOUNTED SHARE_T0=$SECONDS
  share_setup
  # Both guests boot at once (a boot is the slow part); the second waits
  # for its turn. As nobody, with 2048 descriptors: with two shares each
  # may hold 384 inodes (fuse_default_limits), so 600 lookups reach the
  # limit.
  vm_start share --kernel "$KERNEL" --initrd "$INITRD" --memory 160M \
    --share "$S:hostshare" --share "$R:roshare,ro"
  VM_PREFIX="prlimit --nofile=2048:2048 setpriv --reuid 65534 --regid 65534 --clear-groups" \
    vm_start shareu --kernel "$KERNEL" --initrd "$INITRD" --memory 160M --kernel-cache off \
    --share "$U:usershare" --share "$A:attackshare"
  share_root
  share_user
  share_teardown
  echo "# share: $((SECONDS - SHARE_T0)) s"
}
