#!/usr/bin/env bash
# fake_driver.sh TLC FAKE_LIB_DIR SCRATCH FAKE_OLD_DIR: a trainer's GPU path against a stand-in driver
# (fake_cuda.c, built as FAKE_LIB_DIR/libcuda.so.1) that runs no kernel but checks every call:
# the cubin loads on its own architecture and the PTX on a newer one, every function is
# found, every launch's arguments point into the arena, copies stay inside it, and the loss
# the trainer prints is the one on the device. The steps replay CUDA graphs (streams, events,
# pinned memory and asynchronous copies checked too), or with --no-cuda-graph, or on a driver
# without graphs (FAKE_OLD_DIR/libcuda.so.1), launch kernel by kernel. Then each driver
# failure gives its message.
# Exit 77 (skipped) when this machine has no NVRTC to build GPU kernels with.
set -u
tlc=$1 fake=$2 dir=$3 fake_old=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/check.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
export TLC_CACHE_DIR=$dir/cache

"$tlc" "$root/examples/fashion_cnn.graph" --set batch=16 --set epochs=1 -o train 2> build.txt || { cat build.txt; exit 1; }
if grep -q "will run on the CPU only" build.txt; then cat build.txt; exit 77; fi
export LD_LIBRARY_PATH=$fake

# train MODE ARGS...: the trainer on the fake driver in that mode
train() { local m=$1; shift; FAKE_CUDA=$m ./train --limit 64 "$@"; }

for m in sm_90 sm_100; do
  train $m --device cuda --out run_$m > out_$m.txt 2> err_$m.txt
  check "$m: trains" test $? -eq 0
  check "$m: on the fake GPU" grep -q "^device: Fake GPU (${m/_/_})" out_$m.txt
  # No kernel ran, so the device's loss is still the fill value: the trainer read it there.
  check "$m: the loss comes from the device" grep -q "loss 1.5000" out_$m.txt
  check "$m: kernels launched" grep -q "fake libcuda: [1-9][0-9]* launches" err_$m.txt
  check "$m: the checkpoint comes back" test -s run_$m/last.ckpt
  check "$m: steps as CUDA graphs" grep -q "^cuda graphs: on" out_$m.txt
  check "$m: two graphs, launched every step" grep -qE "graphs launched [1-9][0-9]* times" err_$m.txt
done
train sm_90 --device cuda --no-cuda-graph --out run_nograph > out_nograph.txt 2> err_nograph.txt
check "--no-cuda-graph: trains" test $? -eq 0
check "--no-cuda-graph: kernel by kernel" grep -q "0 graphs launched 0 times" err_nograph.txt
check "--no-cuda-graph: says nothing of graphs" sh -c "! grep -q 'cuda graphs' out_nograph.txt"
check "--no-cuda-graph: the loss comes from the device" grep -q "loss 1.5000" out_nograph.txt
# A driver older than CUDA 11.4 (no graph entry points) trains kernel by kernel, and says so once.
LD_LIBRARY_PATH=$fake_old FAKE_CUDA=sm_90 ./train --limit 64 --device cuda --out run_old > out_old.txt 2> err_old.txt
check "old driver: trains" test $? -eq 0
check "old driver: says why there are no graphs, once" test "$(grep -c '^cuda graphs: off, steps launch kernel by kernel (the NVIDIA driver lacks cuStreamCreate (CUDA 11.4 and newer have it))$' out_old.txt)" -eq 1
check "old driver: the loss comes from the device" grep -q "loss 1.5000" out_old.txt
train nopinned --device cuda --out run_nopinned > out_nopinned.txt 2> err_nopinned.txt
check "no pinned memory: trains" test $? -eq 0
check "no pinned memory: says so" grep -q "^cuda graphs: off, steps launch kernel by kernel (cannot allocate .* of pinned host memory: out of memory)" out_nopinned.txt
fails_with "a graph that will not instantiate" 1 "cannot make the training step a CUDA graph: invalid argument (--no-cuda-graph launches it kernel by kernel)" train graphfail --device cuda --out e8
fails_with "a kernel of a graph fails" 1 "a GPU kernel failed: unspecified launch failure (--no-cuda-graph launches kernel by kernel, and names it)" train streamfail --device cuda --out e9
check "auto picks the GPU" sh -c "FAKE_CUDA=sm_90 ./train --limit 64 --out run_auto | grep -q '^device: Fake GPU'"

# --check-gpu catches a GPU whose kernels compute nothing, at the first kernel that writes.
fails_with "--check-gpu finds a wrong GPU" 1 "kernels of the training step differ between the GPU and the CPU" train sm_90 --check-gpu --out run_check

fails_with "no GPU" 1 "--device cuda: the NVIDIA driver is installed but sees no GPU" train nogpu --device cuda --out e1
fails_with "driver without devices" 1 "sees no GPU" train nodevice --device cuda --out e2
check "auto falls back, saying why" sh -c "FAKE_CUDA=nogpu ./train --limit 64 --out e3 | grep -q '^device: cpu (the NVIDIA driver is installed but sees no GPU)'"
fails_with "older GPU" 1 "rebuild it with tlc --arch=sm_80" train sm_80 --device cuda --out e4
fails_with "driver too old" 1 "the NVIDIA driver is too old for this trainer's kernels" train oldptx --device cuda --out e5
fails_with "out of memory" 1 "cannot allocate the trainer's" train oom --device cuda --out e6
fails_with "failed launch" 1 "failed to launch: unspecified launch failure" train launchfail --device cuda --out e7

check_report fake_driver
