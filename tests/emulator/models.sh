#!/usr/bin/env bash
# models.sh TLC EMULATOR_LIB_DIR SCRATCH MODEL: a zoo model's trainer (models.graph, Fashion-MNIST,
# batch 8) built by tlc with its GPU kernels, run with --check-gpu on the emulated driver
# (EMULATOR_LIB_DIR/libcuda.so.1): every kernel of the first training step and of the first
# evaluation pass runs on the emulator and on the CPU backend from the same inputs, and every
# buffer it writes must agree (runtime/gpu_check.c). For cnn_bn, also: the same program with a
# planted bug (every ReLU's fmaxf made fminf; in its first tensor-core kernel a missing
# barrier, a wrong fragment layout, an off-by-one tile edge, and a wrong fragment layout in an
# input gradient's tiles, a missing barrier in a weight gradient's; a wrong channel in
# bn_dx's 16-byte form, the last maximum of a window taken in maxpool_grad, a bf16 buffer read
# as float in bn_apply, a round of loads skipped in bn_dparams' first pass, the last chunk left
# out of a bias gradient's second pass, elements one off in the optimizer's one launch: plant.py), given through
# TLC_EMU_SOURCE, must fail the check there, and TLC_EMU_SM picks the GPU the trainer sees. Exit 77 (skipped) without NVRTC, which the GPU
# kernels need, or without the data.
set -u
tlc=$1 emulator=$2 dir=$3 model=$4
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/check.sh"
. "$here/trainer_test.sh"
need_fashion_mnist
case $model in
  cnn_bn) call="cnn_bn(input = [1, 28, 28])" image=28 ;;
  resnet18) call="resnet18(input = [1, 32, 32], classes = 10)" image=32 ;;
  mobilenet_v2) call="mobilenet_v2(input = [1, 32, 32], classes = 10)" image=32 ;;
  efficientnet_b0) call="efficientnet_b0(input = [1, 64, 64], classes = 10)" image=64 ;;
  *) echo "models.sh: unknown model $model"; exit 2 ;;
esac
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
# NVRTC's output is cached beside the emulator's, so a second run of the suite builds faster.
export TLC_CACHE_DIR=$emulator/../tlc-cache

start=$(date +%s.%N)
build_trainer "$model" "$tlc" "$here/models.graph" --set "model=$call" --set image=$image
built=$(date +%s.%N)

export LD_LIBRARY_PATH=$emulator TLC_EMU_STATS=1
./train --check-gpu --limit 16 --out run > check_out.txt 2> check_err.txt
status=$?
ran=$(date +%s.%N)
check "$model: trains with --check-gpu (status $status)" test $status -eq 0
check "$model: on the emulated device" grep -q "^device: CUDA emulator (sm_90)$" check_out.txt
check "$model: the training step agrees kernel by kernel" \
  grep -qE "^check-gpu: training step: [1-9][0-9]* kernels, 0 mismatched" check_out.txt
check "$model: the evaluation pass agrees kernel by kernel" \
  grep -qE "^check-gpu: evaluation pass: [1-9][0-9]* kernels, 0 mismatched" check_out.txt
check "$model: the kernels ran on the emulator" grep -qE "^tlc emulator: [1-9][0-9]* launches" check_err.txt
if [ "$status" -ne 0 ] || grep -q MISMATCH check_out.txt; then
  grep -E "MISMATCH|error" check_out.txt check_err.txt | head -20
fi

if [ "$model" = cnn_bn ]; then
  # Activations live in bf16 on the GPU (precision "bf16", the default): the GPU's arena holds
  # the training activations in about half the CPU's bytes, the trainer says so, and the CUDA
  # program moves them as bf16 (8-byte accesses of four values).
  "$tlc" "$here/models.graph" --set "model=$call" --set image=$image --stats > stats.txt
  cpu_act=$(sed -n 's/^trainer arena .*training activations \([0-9,]*\),.*/\1/p' stats.txt | tr -d ,)
  gpu_act=$(sed -n 's/^GPU arena .*bf16 activations.*training activations \([0-9,]*\),.*/\1/p' stats.txt | tr -d ,)
  check "cnn_bn: bf16 training activations ($gpu_act bytes) take at most 0.8 of fp32's (${cpu_act:-?})" \
    test "${gpu_act:-0}" -gt 0 -a "${gpu_act:-0}" -le $(( ${cpu_act:-0} * 8 / 10 ))
  check "cnn_bn: the trainer says its activations are bf16" grep -q "^memory: arena .* activations in bf16" check_out.txt
  # The check can fail: a bug planted in the trainer's own program is found, at a ReLU
  # (fails_with keeps the run's output in out.txt and err.txt).
  "$tlc" "$here/models.graph" --set "model=$call" --set image=$image --emit=cuda > program.cu
  sed 's/fmaxf(/fminf(/g' program.cu > planted.cu
  check "cnn_bn: the planted program differs" sh -c '! cmp -s program.cu planted.cu'
  TLC_EMU_SOURCE=$PWD/planted.cu fails_with "cnn_bn: a planted fminf fails --check-gpu" 1 \
    "kernels of the training step differ between the GPU and the CPU" ./train --check-gpu --limit 16 --out run_planted
  check "cnn_bn: the mismatch is named at a kernel with a ReLU" grep -qE "k[0-9]+_bn_apply.*MISMATCH" out.txt
  # Bugs planted in a tensor-core kernel (plant.py) are found there: a missing barrier, a wrong
  # fragment layout, an off-by-one tile edge.
  for bug in barrier fragment edge; do
    check "cnn_bn: plant a $bug bug" python3 "$here/plant.py" $bug program.cu planted_$bug.cu
    TLC_EMU_SOURCE=$PWD/planted_$bug.cu fails_with "cnn_bn: a planted $bug bug fails --check-gpu" 1 \
      "kernels of the training step differ between the GPU and the CPU" ./train --check-gpu --limit 16 --out run_$bug
    check "cnn_bn: the $bug bug is named at the tiled convolution" grep -qE "k[0-9]+_conv2d_features_0_0 .*MISMATCH" out.txt
  done
  # and in the gradients' tiles: a wrong fragment layout in the input gradient's, a missing
  # barrier in the weight gradient's; in the memory-bound kernels' GPU forms: a batchnorm
  # gradient's 16-byte form reading a neighbour plane's channel, a max-pool gradient taking a
  # window's last maximum (ReLU's zeros tie), a bf16 buffer read as float in bn_apply, a
  # batchnorm parameter gradient's first pass summing its chunk short, a bias gradient's
  # second pass leaving the last chunk out (the classifier's linear layers: cnn_bn's
  # convolutions have no bias), the optimizer's one launch for every parameter taking each
  # thread's elements one off.
  for planted in fragment:conv2d_dx barrier:conv2d_dw channel:bn_dx window:maxpool_grad bf16read:bn_apply \
                 round:bn_dparams chunks:bias_grad group:sgd_update; do
    bug=${planted%%:*} op=${planted#*:}
    check "cnn_bn: plant a $bug bug in $op" python3 "$here/plant.py" $bug program.cu planted_$op.cu $op
    TLC_EMU_SOURCE=$PWD/planted_$op.cu fails_with "cnn_bn: a planted $bug bug in $op fails --check-gpu" 1 \
      "kernels of the training step differ between the GPU and the CPU" ./train --check-gpu --limit 16 --out run_$op
    check "cnn_bn: the $bug bug is named at $op" grep -qE "k[0-9]+_${op}_(features|classifier)_[a-z0-9_]+ .*MISMATCH" out.txt
  done
  # precision = "fp32": every value fp32 on the GPU too, each kernel compared within 1e-4.
  env -u LD_LIBRARY_PATH "$tlc" "$here/models.graph" --set "model=$call" --set image=$image --set 'precision="fp32"' \
    -o train_fp32 > build_fp32.txt 2>&1
  ./train_fp32 --check-gpu --limit 16 --out run_fp32 > out_fp32.txt 2>&1
  check "cnn_bn: in fp32 the activations stay fp32" grep -q "^memory: arena .* activations in fp32" out_fp32.txt
  check "cnn_bn: in fp32 every kernel agrees within 1e-4" sh -c \
    "grep -qE '^check-gpu: training step: [1-9][0-9]* kernels, 0 mismatched' out_fp32.txt && ! grep -qE '  bf16  |\(bf16:' out_fp32.txt"
  # The tile shapes the table may choose (TLC_TILE forces one on every product, as
  # bench/tile_sweep.sh does): the largest and the smallest agree with the CPU too.
  for tile in 128x128 32x16; do
    env -u LD_LIBRARY_PATH TLC_TILE=$tile "$tlc" "$here/models.graph" --set "model=$call" --set image=$image \
      -o train_$tile > build_$tile.txt 2>&1
    dx=$(env -u LD_LIBRARY_PATH "$tlc" inspect train_$tile | grep -o 'k[0-9]*_conv2d_dx_features_1_0' | head -n 1)
    env -u LD_LIBRARY_PATH "$tlc" inspect train_$tile "$dx" > kernel_$tile.cu 2>&1
    check "cnn_bn: TLC_TILE=$tile gives the input gradient tiles of its shape" grep -q "tiles of ${tile/x/ x } of" kernel_$tile.cu
    ./train_$tile --check-gpu --limit 16 --out run_$tile > out_$tile.txt 2>&1
    check "cnn_bn: tiles of $tile agree kernel by kernel" \
      grep -qE "^check-gpu: training step: [1-9][0-9]* kernels, 0 mismatched" out_$tile.txt
  done
  # --profile on the emulated GPU: every kernel launched and waited for, timed, listed.
  ./train --device cuda --profile --limit 32 --epochs 1 --out run_profile > out_profile.txt 2>&1
  check "cnn_bn: --profile on the emulated GPU" grep -qE '^profile: CUDA emulator.*training steps' out_profile.txt
  check "cnn_bn: profile.tsv lists the kernels" test "$(wc -l < run_profile/profile.tsv)" -gt 40
  # The device the trainer sees: an older GPU than the cubin is refused, a newer one runs the PTX path.
  TLC_EMU_SM=80 fails_with "cnn_bn: TLC_EMU_SM=80 is older than the cubin" 1 "rebuild it with tlc --arch=sm_80" \
    ./train --device cuda --limit 16 --out run_sm80
  TLC_EMU_SM=100 ./train --device cuda --limit 16 --out run_sm100 > out_sm100.txt 2>&1
  check "cnn_bn: TLC_EMU_SM=100 trains" grep -q "^device: CUDA emulator (sm_100)$" out_sm100.txt
fi

grep "^tlc emulator:" check_err.txt
awk -v m="$model" -v a="$start" -v b="$built" -v c="$ran" 'BEGIN {
  printf "%s: tlc built the trainer in %.1f s; --check-gpu ran in %.1f s", m, b - a, c - b
  print " (compiling the program for the emulator included, unless it was cached)" }'
check_report "emulator.models.$model"
