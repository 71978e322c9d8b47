#!/bin/sh
# durability.sh - the guest half of the e2e section "durability"
# (tests/e2e/suite.sh), installed as /bin/durability on an ext4 root disk
# whose arcvm the host kills with SIGKILL when it prints KILL-NOW.
# Whatever it reports flushed must be on the image afterwards:
#   /known.bin    4 MiB of random bytes, then sync         KNOWN-<sha256>
#   /flushed.fio  16 MiB written by fio with crc32c verify headers, fsync at
#                 its end, then sync (the host runs fio --verify_only on it)
#                                                          FLUSHED-<sha256>
#   /seq/N        256 KiB each, then fsync of it and of /seq
#                                                          SYNCED-N-<md5>
# Before the /seq loop two fio jobs start writing until the kill: random
# O_DIRECT writes, and buffered ones with an fsync every 64, so requests
# and flushes are in flight when arcvm dies. After SYNCED-5 it prints
# WRITERS-<fio processes> and KILL-NOW, and writes on.
set -e
# Kernel messages (a slow disk's hung-task warnings) must not split the
# marker lines on the console.
dmesg -n 1
# --eta=never: its status line goes to the console (a tty) and would
# share lines with the markers.
fio_common="--ioengine=psync --output=/dev/null --eta=never"
dd if=/dev/urandom of=/known.bin bs=1M count=4 2>/dev/null
sync
echo "KNOWN-$(sha256sum </known.bin | cut -c1-64)"
# shellcheck disable=SC2086 # $fio_common is several options
fio --name=flushed --filename=/flushed.fio --rw=write --bs=64k --size=16M --verify=crc32c \
  --do_verify=0 --end_fsync=1 $fio_common
sync
echo "FLUSHED-$(sha256sum </flushed.fio | cut -c1-64)"
# shellcheck disable=SC2086
fio --name=direct --filename=/inflight-direct.fio --rw=randwrite --bs=4k --size=32M --direct=1 \
  --time_based --runtime=900 $fio_common &
# shellcheck disable=SC2086
fio --name=buffered --filename=/inflight-buffered.fio --rw=randwrite --bs=16k --size=32M \
  --fsync=64 --time_based --runtime=900 $fio_common &
# Until both jobs have made their files (at most a minute).
i=0
while { [ ! -s /inflight-direct.fio ] || [ ! -s /inflight-buffered.fio ]; } && [ $i -lt 600 ]; do
  sleep 0.1
  i=$((i + 1))
done
mkdir -p /seq
n=0
while :; do
  n=$((n + 1))
  dd if=/dev/urandom of=/seq/$n bs=64k count=4 2>/dev/null
  sync /seq/$n /seq # busybox sync FILE...: fsync of each
  echo "SYNCED-$n-$(md5sum </seq/$n | cut -c1-32)"
  if [ $n -eq 5 ]; then
    echo "WRITERS-$(pidof fio | wc -w)"
    echo KILL-NOW
  fi
done
