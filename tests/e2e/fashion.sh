#!/usr/bin/env bash
# fashion.sh TLC SCRATCH: builds the Fashion-MNIST example into a trainer and runs it on a
# subset: it must learn (test accuracy above a floor), be self-contained (ldd), resume
# bit-exactly, and refuse bad input with clear errors.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"

example=$root/examples/fashion_cnn.graph
check "build" "$tlc" "$example" --set batch=32 --set epochs=2 -o train
check "build twin" "$tlc" "$example" --set batch=32 --set 'model=cnn_bn(input = [1, 28, 28], hidden = 64)' -o other

# Self-contained: only the C library's own parts.
check "ldd shows only the C library" self_contained train

# Learns: 1536 training images, 2 epochs.
check "train" ./train --limit 1536 --out run > train.txt
cat train.txt
acc=$(sed -n 's/^result: test_acc=\([0-9.]*\).*/\1/p' train.txt)
check "test accuracy above 0.60 (chance 0.10)" awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.60) }'
check "metrics: one line per epoch" test "$(wc -l < run/metrics.jsonl)" -eq 2
check "checkpoints written" test -s run/last.ckpt -a -s run/best.ckpt

# Resume: 1 epoch, then the second from the checkpoint, equals 2 epochs straight.
check "first epoch" ./train --limit 1536 --epochs 1 --out half > /dev/null
check "resumed epoch" ./train --limit 1536 --resume half/last.ckpt --out half > resumed.txt
check "resume is bit-exact" cmp run/last.ckpt half/last.ckpt
check "same result line" test "$(grep '^result' resumed.txt | cut -d' ' -f2-3)" = "$(grep '^result' train.txt | cut -d' ' -f2-3)"
tested=$(sed -n 's/^result: .* tested=\([a-z]*\).*/\1/p' train.txt)   # best.ckpt's figure, or the last one's
check "--eval of the $tested weights" sh -c "./train --limit 1536 --eval run/$tested.ckpt | grep -q '^result: test_acc=$acc'"
# --profile: the same run, every kernel timed: the table, and one line per kernel of both
# passes in profile.tsv; the result is the unprofiled run's (the same kernels in the same order).
check "--profile" sh -c "./train --limit 1536 --profile --out prof > prof.txt"
check "profile: the slowest kernels listed" grep -qE '^profile: +[0-9.]+% of the training step' prof.txt
kernels=$("$tlc" "$example" --set batch=32 --emit=c | grep -c 'tlc_parallel_for(')
check "profile.tsv: every kernel ($kernels)" test "$(tail -n +2 prof/profile.tsv | wc -l)" -eq "$kernels"
check "profiled, the same result" test "$(grep '^result' prof.txt | cut -d' ' -f2-3)" = "$(grep '^result' train.txt | cut -d' ' -f2-3)"

# Bad input.
fails_with "checkpoint of another graph" 1 "classifier.0.weight" ./other --limit 64 --resume run/last.ckpt --out o2
head -c 1000 run/last.ckpt > cut.ckpt
fails_with "checkpoint cut short" 1 "cut.ckpt" ./train --limit 64 --resume cut.ckpt --out o3
fails_with "missing data" 1 "/nonexistent" ./train --data /nonexistent --out o4
touch afile
fails_with "unwritable --out" 1 "afile" ./train --limit 64 --out afile/run
check_report fashion
