#!/usr/bin/env bash
# features.sh TLC EMULATOR_LIB_DIR SCRATCH MODEL: the feature cache on the emulated GPU. A fixed
# feature extractor (features.graph: resnet18 or cnn_bn, only the head trains) is built by tlc
# with its GPU kernels and trained two epochs on the emulated driver (EMULATOR_LIB_DIR/
# libcuda.so.1) with its features cached in device memory: it must say so, with the budget the
# emulated device's free memory gives (TLC_EMU_MEMORY_MB), launch fewer kernels, and end with
# the checkpoints and exported weights of the same run with --no-feature-cache, bit for bit
# (the gather kernel must put each image's row where the step reads it, in each epoch's
# order). For cnn_bn, also: a budget too small (--gpu-cache-mb 0, or a device whose free memory
# is under the 512 MB kept free) falls back to the whole step, says why and ends the same;
# --check-gpu checks the whole step and says the cache is off. Exit 77 (skipped) without NVRTC
# or the data.
set -u
tlc=$1 emulator=$2 dir=$3 model=$4
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/check.sh"
. "$here/trainer_test.sh"
need_fashion_mnist
case $model in
  cnn_bn) sets=(--set "model=cnn_bn(input = [1, 28, 28])" --set image=28 --set 'freeze=all_except(["classifier"])') ;;
  resnet18) sets=() ;;
  *) echo "features.sh: unknown model $model"; exit 2 ;;
esac
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
export TLC_CACHE_DIR=$emulator/../tlc-cache

build_trainer "$model" "$tlc" "$here/features.graph" "${sets[@]}"
"$tlc" "$here/features.graph" "${sets[@]}" --stats > stats.txt
check "$model: tlc finds a feature cache" grep -q "^feature cache .* runs once per training image" stats.txt
arena=$(sed -n 's/^trainer arena *\([0-9,]*\) bytes.*/\1/p' stats.txt | tr -d ,)
"$tlc" "$here/features.graph" "${sets[@]}" --emit=cuda > program.cu
check "$model: the program has the gather kernel" grep -q '__global__ void __launch_bounds__(256) feature_gather(' program.cu

export LD_LIBRARY_PATH=$emulator TLC_EMU_STATS=1
run() {   # run NAME FLAGS...: a training run of 16 images, two epochs, on the emulated GPU
  local name=$1; shift
  ./train --device cuda --limit 16 --out "$name" --export "$name.safetensors" "$@" > "$name.txt" 2> "$name.err"
  local status=$?
  check "$model: $name run (status $status)" test $status -eq 0
  [ $status -eq 0 ] || tail -5 "$name.err"
}
# The epoch lines without their times, and the result line without its times.
figures() { sed -E 's/  [0-9.]+ img\/s  [0-9.]+ s$//; s/ (train_time_s|images_per_s)=[0-9.]+//g' "$1" | grep -E '^(epoch|result)'; }
launches() { sed -n 's/^tlc emulator: \([0-9]*\) launches.*/\1/p' "$1"; }

TLC_EMU_MEMORY_MB=1024 run cached
check "$model: the features are cached on the device" grep -q "^features: cached on the device, " cached.txt
# The budget is what the emulated device reports free once the arena is there, less 512 MB.
free=$(awk -v a="$arena" 'BEGIN { printf "%.0f", (1024 * 1048576 - int((a + 255) / 256) * 256) / 1048576 }')
check "$model: the budget is the device's free $free MB less 512 MB" \
  grep -qF "(budget $((free - 512)) MB: the device's free $free MB less 512 MB kept free" cached.txt
run full --no-feature-cache
check "$model: no cache when told" sh -c "! grep -q '^features:' full.txt"
for file in last.ckpt best.ckpt; do
  check "$model: cached and uncached runs end with the same $file" cmp cached/$file full/$file
done
check "$model: and export the same weights" cmp cached.safetensors full.safetensors
check "$model: and print the same figures" cmp <(figures cached.txt) <(figures full.txt)
cached_launches=$(launches cached.err) full_launches=$(launches full.err)
check "$model: the cached run launched fewer kernels ($cached_launches, against $full_launches)" \
  test "${cached_launches:-0}" -gt 0 -a "${cached_launches:-0}" -lt "${full_launches:-0}"

if [ "$model" = cnn_bn ]; then
  # The comparison can fail: a gather planted to give every row of the batch its first
  # image's features (the trainer's own program through TLC_EMU_SOURCE) ends elsewhere.
  sed '/ feature_gather(/,/^}/ s/b1\[(i \/ \([0-9]*\))\]/b1[0]/' program.cu > planted.cu
  check "cnn_bn: the planted gather differs" sh -c '! cmp -s program.cu planted.cu'
  TLC_EMU_SOURCE=$PWD/planted.cu TLC_EMU_MEMORY_MB=1024 run planted
  check "cnn_bn: a planted gather changes the weights" sh -c '! cmp -s planted.safetensors full.safetensors'
  # The cached training step as a CUDA graph: its gather reads the batch's rows from a fixed
  # buffer, copied from the epoch's order on the compute stream before each step; only the
  # labels, seed and learning rate go up through the slots. Kernel by kernel ends the same.
  check "cnn_bn: the cached training step is a graph" grep -q "^cuda graphs: on, each step replays one: the \
training step from cached features (the gather through a fixed buffer of the batch's rows, then the head)" cached.txt
  check "cnn_bn: every cached batch but the first went up ahead" \
    awk '/^cuda graphs: [0-9]+ of [0-9]+ batches went up/ { ok = $3 + 1 == $5 && $3 > 0 } END { exit !ok }' cached.txt
  TLC_EMU_MEMORY_MB=1024 run kernels --no-cuda-graph
  for file in last.ckpt best.ckpt; do
    check "cnn_bn: cached, graphs and kernel by kernel end with the same $file" cmp cached/$file kernels/$file
  done
  check "cnn_bn: and export the same weights" cmp cached.safetensors kernels.safetensors
  check "cnn_bn: and print the same figures" cmp <(figures cached.txt) <(figures kernels.txt)
  # A missing wait is seen: without the streams' waits from the 6th on (two a batch; the 6th
  # is the first validation step's, whose batch went up during the last training step),
  # validation and then the second epoch's steps read what their slots held before (labels
  # of other batches): the run ends elsewhere.
  TLC_EMU_DROP_WAITS=6 TLC_EMU_MEMORY_MB=1024 run stale
  check "cnn_bn: cached graphs: stale labels are caught" sh -c '! cmp -s stale/last.ckpt kernels/last.ckpt'
  # Over the budget the run says why and trains as without the cache.
  run flag --gpu-cache-mb 0
  check "cnn_bn: --gpu-cache-mb 0: not cached, and why" grep -qF "features: not cached: 0.2 MB for 16 training images \
is over the device's budget of 0 MB (--gpu-cache-mb 0); every step runs the frozen prefix" flag.txt
  check "cnn_bn: --gpu-cache-mb 0: as uncached" cmp flag.safetensors full.safetensors
  TLC_EMU_MEMORY_MB=256 run small
  check "cnn_bn: a device with 256 MB: not cached, and why" grep -qE "^features: not cached: 0.2 MB for 16 training \
images is over the device's budget of 0 MB \(the device's free 24[0-9] MB less 512 MB kept free; --gpu-cache-mb sets \
another\); every step runs the frozen prefix$" small.txt
  check "cnn_bn: a device with 256 MB: as uncached" cmp small.safetensors full.safetensors
  TLC_EMU_MEMORY_MB=256 run given --gpu-cache-mb 1
  check "cnn_bn: --gpu-cache-mb 1 overrides the device's free memory" \
    grep -qF "features: cached on the device, 0.2 MB for 16 training images (budget 1 MB: --gpu-cache-mb 1)" given.txt
  check "cnn_bn: --gpu-cache-mb 1: as uncached" cmp given.safetensors full.safetensors
  # --check-gpu compares every kernel of the whole step; the cache is off, and it says so.
  ./train --check-gpu --limit 16 --epochs 1 --out check > check.txt 2> check.err
  check "cnn_bn: --check-gpu (status $?)" test $? -eq 0
  check "cnn_bn: --check-gpu says the cache is off" \
    grep -qF "features: not cached: --check-gpu compares every kernel of the whole training step" check.txt
  check "cnn_bn: --check-gpu: the training step agrees" \
    grep -qE "^check-gpu: training step: [1-9][0-9]* kernels, 0 mismatched" check.txt
  fails_with "cnn_bn: --gpu-cache-mb -1 is a usage error" 2 "--gpu-cache-mb expects an integer from 0" \
    ./train --gpu-cache-mb -1
fi
check_report "emulator.features.$model"
