#!/usr/bin/env bash
# graphs.sh TLC EMULATOR_LIB_DIR SCRATCH: the steps as CUDA graphs on the emulated GPU. cnn_bn
# (models.graph: Fashion-MNIST at 28x28, batch 8, a random flip) trains two epochs of 24
# images with validation and the test at the end, once replaying its training step and
# evaluation pass as graphs with each batch uploaded from pinned memory on a second stream
# while the step before runs (the first batch of each pass during the last step of the pass
# before), once with --no-cuda-graph (kernel by kernel, each batch copied just before its
# step). Its learning rate halves each epoch and its dropout draws from {seed, step}, so a
# batch loaded ahead for the next epoch must carry that epoch's rate and step. Both runs must
# end with the same checkpoints (last and best), bit for bit, and print the same figures; so
# must a graph run stopped by SIGINT in its second epoch and resumed. The emulator runs a stream's work only when something
# waits for it, so a missing wait reads stale or unwritten memory: with
# TLC_EMU_DROP_WAITS=1 (cuStreamWaitEvent does nothing) or 6 (from its 6th call on) the
# graph run must not end as the other does. Exit 77 (skipped) without NVRTC or the data.
set -u
tlc=$1 emulator=$2 dir=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/check.sh"
. "$here/trainer_test.sh"
need_fashion_mnist
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
export TLC_CACHE_DIR=$emulator/../tlc-cache

build_trainer cnn_bn "$tlc" "$here/models.graph" --set "model=cnn_bn(input = [1, 28, 28])" --set image=28 \
  --set 'schedule=step(step_size = 1, gamma = 0.5)'

export LD_LIBRARY_PATH=$emulator TLC_EMU_STATS=1
# --no-gpu-data: the batches come from the loader through the slots, which is what the graphs
# test; Fashion-MNIST's images, in memory, would otherwise be built on the GPU, without graphs.
run() {   # run NAME FLAGS...: two epochs of 24 images on the emulated GPU; the exit status
  local name=$1; shift
  ./train --device cuda --no-gpu-data --limit 24 --epochs 2 --out "$name" "$@" > "$name.txt" 2> "$name.err"
}
# The epoch lines without their times, and the result line without its times.
figures() { sed -E 's/  [0-9.]+ img\/s  [0-9.]+ s$//; s/ (train_time_s|images_per_s)=[0-9.]+//g' "$1" | grep -E '^(epoch|result)'; }

run graphs
status=$?
check "graphs: trains (status $status)" test $status -eq 0
[ $status -eq 0 ] || tail -5 graphs.err
check "graphs: says the steps are graphs" grep -q "^cuda graphs: on, each step replays one" graphs.txt
run kernels --no-cuda-graph
status=$?
check "--no-cuda-graph: trains (status $status)" test $status -eq 0
[ $status -eq 0 ] || tail -5 kernels.err
check "--no-cuda-graph: says nothing of graphs" sh -c "! grep -q 'cuda graphs' kernels.txt"
for f in last.ckpt best.ckpt; do
  check "graphs: the same $f as kernel by kernel" cmp -s graphs/$f kernels/$f
done
figures graphs.txt > graphs.figures
figures kernels.txt > kernels.figures
check "graphs: the same figures as kernel by kernel" sh -c "test -s graphs.figures && cmp -s graphs.figures kernels.figures"
# Every batch but the run's first went up while the step before ran; the first of each pass
# but the first (validation, the second epoch's training, validation, the test) too.
ahead=$(sed -nE 's/^cuda graphs: ([0-9]+) of ([0-9]+) batches went up while the step before ran, ([0-9]+) of them the first of a pass$/\1 \2 \3/p' graphs.txt)
check "graphs: every batch but the first went up ahead ($ahead), 4 of them the first of a pass" \
  sh -c "set -- $ahead; test \$# -eq 3 && test \$((\$1 + 1)) -eq \$2 && test \$3 -eq 4"
check "graphs: as many kernels ran" test "$(sed -n 's/^tlc emulator: \([0-9]*\) launches.*/\1/p' graphs.err)" = \
  "$(sed -n 's/^tlc emulator: \([0-9]*\) launches.*/\1/p' kernels.err)"

# Ctrl-C in the second epoch: the step under way finishes (its next batch, loaded ahead, is
# dropped) and the run resumed as printed ends as the run never stopped.
set -m   # job control: a background job does not ignore SIGINT
./train --device cuda --no-gpu-data --limit 24 --epochs 2 --out stopped > stopped.txt 2> stopped.err &
pid=$! tries=0
set +m
until grep -q "^epoch 1/2" stopped.txt 2> /dev/null || [ $tries -ge 1200 ]; do sleep 0.1; tries=$((tries + 1)); done
sleep 0.5
kill -s INT $pid
wait $pid
status=$?
check "stopped: exit status 130 (status $status)" test $status -eq 130
check "stopped: inside the second epoch" grep -qE "^stopped: SIGINT in epoch 2 of 2, after [0-2] of 3 batches" stopped.txt
resume=$(sed -n 's/^stopped: continue with: //p' stopped.txt)
check "stopped: resumed as printed" sh -c "test -n '$resume' && $resume > resumed.txt 2> resumed.err"
check "stopped: the same checkpoint as never stopped" cmp -s stopped/last.ckpt graphs/last.ckpt

# The test can see a race. Without any wait the first step reads a batch that has not arrived
# (NaN: the trainer stops). Without the waits from the 6th on (two a step: the upload stream
# for the arena to take a slot, the compute stream for the slot to arrive; the 6th is the
# third step's), the third step copies its slot before its batch arrives and trains on the
# stale batch the slot held before: the run ends, elsewhere.
TLC_EMU_DROP_WAITS=1 run dropped
check "no wait at all is caught" sh -c "! cmp -s dropped/last.ckpt kernels/last.ckpt"
TLC_EMU_DROP_WAITS=6 run stale
status=$?
check "a stale batch still trains (status $status)" test $status -eq 0
check "a stale batch is caught" sh -c "test -s stale/last.ckpt && ! cmp -s stale/last.ckpt kernels/last.ckpt"
# The first batch of a pass goes up during the last step of the pass before: without the
# waits from the 8th on (the 7th is the upload stream's, for the validation's first batch
# during the third training step; the 8th the compute stream's for it), validation reads the
# batch its slot held before, the second training step's: the first epoch's figures differ.
TLC_EMU_DROP_WAITS=8 run cross
figures cross.txt | head -1 > cross.first
head -1 kernels.figures > kernels.first
check "a missing wait for the first batch of a pass is caught" sh -c "test -s cross.first && ! cmp -s cross.first kernels.first"
check_report graphs
