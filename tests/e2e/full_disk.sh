#!/usr/bin/env bash
# full_disk.sh TLC SCRATCH: a full disk while a checkpoint is written (issue 12, item 6). The
# trainer's --out is a tmpfs mounted here (as root), sized so that epoch 1's last.ckpt and
# best.ckpt fit and epoch 2's last.ckpt does not: the real write path meets ENOSPC. The run
# must stop with a message that says the previous last.ckpt is intact and how to go on, leave
# it byte for byte as epoch 1 wrote it, and leave no temporary file; resuming from it elsewhere
# ends as a run that had the room. Skipped (status 77) where no tmpfs can be mounted.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
[ -d "$dir/disk" ] && mountpoint -q "$dir/disk" && umount "$dir/disk"
rm -rf "$dir" && mkdir -p "$dir/disk" && cd "$dir" || exit 2

check "build" "$tlc" "$root/examples/fashion_cnn.graph" --set batch=32 --set epochs=2 -o train
check "one epoch with room" sh -c "./train --limit 512 --epochs 1 --out one > one.txt 2>&1"
check "two epochs with room" sh -c "./train --limit 512 --out two > two.txt 2>&1"
size=$(stat -c %s one/last.ckpt)
# Room for samples.png, metrics.jsonl and two checkpoints, not for a third beside them.
if ! mount -t tmpfs -o size=$((size * 5 / 2)) tmpfs disk 2> mount.err; then
  echo "SKIPPED: cannot mount a tmpfs here ($(cat mount.err)); the full-disk case needs root"
  exit 77
fi
trap 'umount "$dir/disk"' EXIT
./train --limit 512 --out disk/run > full.txt 2> full.err
status=$?
cat full.txt full.err
check "a full disk stops the run: status 1" test $status -eq 1
check "the message: what failed, that the previous checkpoint is intact, how to go on" grep -qF "error: disk/run/last.ckpt: cannot write disk/run/last.ckpt.tmp." full.err
check "the message names ENOSPC" grep -qF "No space left on device; the previous disk/run/last.ckpt is intact: --resume disk/run/last.ckpt continues from it" full.err
check "the previous last.ckpt is epoch 1's, byte for byte" cmp one/last.ckpt disk/run/last.ckpt
check "best.ckpt is epoch 1's too" cmp one/best.ckpt disk/run/best.ckpt
check "no temporary file left" sh -c "! ls disk/run | grep -q tmp"
cp -r disk/run elsewhere
check "resumed where there is room" sh -c "./train --limit 512 --out elsewhere --resume elsewhere/last.ckpt > resumed.txt 2>&1"
check "it ends as the run that had room" cmp two/last.ckpt elsewhere/last.ckpt
check_report full_disk
