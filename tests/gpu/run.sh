#!/usr/bin/env bash
# run.sh: the GPU checks, on a machine with an NVIDIA GPU (see prepare.sh for how the pack
# gets there). Results go to $OUT (default ./gpu-results):
#   device.txt          the GPU and driver
#   check_MODEL.txt     --check-gpu: one training step and one evaluation pass of each model,
#                       kernel by kernel on the GPU and the CPU from the same inputs; every
#                       buffer a kernel writes must agree within 1e-4 of its largest value
#                       (2e-2 for a kernel on bf16 tensor cores)
#   steps.txt           two epochs of cnn_bn on each device from the same seed: losses agree
#   graphs.txt          steps as CUDA graphs (batches, or the choices the GPU builds them from,
#                       uploaded on a second stream, each pass's first during the pass before)
#                       against --no-cuda-graph: the same checkpoint, bit for bit, and images/s
#                       of each
#   torch_steps.txt     one training step of each model against PyTorch on this GPU: the same
#                       weights and images, loss and every tensor after the step compared
#                       (tests/gpu/step_torch.py states the tolerances)
#   fashion_gpu.txt     the Fashion-MNIST example trained on the GPU, to the CPU's accuracy
#   features.txt        resnet18 as a fixed feature extractor with its features cached in device
#                       memory (its steps as graphs), without, and kernel by kernel: the same
#                       checkpoint, bit for bit
#   data.txt            batches built on the GPU from decoded photos in device memory: each the
#                       CPU loader's bit for bit (--check-gpu-data, with rotation and colour
#                       jitter too), and an epoch of resnet18 with them and without (its images/s)
#   benchmark.md        images/s and peak memory against PyTorch eager and torch.compile
#   profile_NAME.txt    --profile of a benchmark trainer: the kernels that took the most time, and
#   profile_NAME.tsv    every kernel's time per step (where the speed work should go)
#   summary.txt         one line per check, PASS or FAIL
# Exit status: 0 when every check passed.
#   tests/gpu/run.sh [PACK] [PART...]     PART: checks, steps, graphs, torch, fashion, features, data,
#                                         profile, bench
#                                         (default: all);
#                                         bench:TRAINER,... runs only those experiments
#                                         (bench_resnet18_ft, bench_resnet18_fixed,
#                                         bench_mobilenet_v2_ft, bench_effnet_b5_ft, bench_cnn_bn)
# A device command may run 10 minutes: run the parts in separate calls where all would not fit.
set -u
out=${OUT:-$PWD/gpu-results}
mkdir -p "$out"
work=$(mktemp -d)
pack=${1:-build/gpu/pack.tar.xz}
shift || true
parts=${*:-checks steps graphs torch fashion features data profile bench}
wants() { [[ " $parts " == *" $1 "* ]]; }
# Python unpacks it: every machine with PyTorch has it, where xz may be missing.
python3 -c 'import sys, tarfile
safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
tarfile.open(sys.argv[1]).extractall(sys.argv[2], **safe)' "$pack" "$work" ||
  { echo "run.sh: cannot unpack $pack"; exit 2; }
cd "$work"
mkdir -p runs   # the parts write their logs there before any trainer makes it
summary=$out/summary.txt
: > "$summary"
verdict() {   # verdict NAME STATUS
  if [ "$2" -eq 0 ]; then echo "PASS $1" | tee -a "$summary"; else echo "FAIL $1" | tee -a "$summary"; fi
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; echo "commit $(cat commit.txt)"; } > "$out/device.txt" 2>&1
cat "$out/device.txt"

# 1. Kernel by kernel, every model: one epoch of 64 images is 4 training steps and the
#    evaluation passes; the first step and the first pass list every kernel.
for model in cnn_bn resnet18 mobilenet_v2 efficientnet_b5; do
  wants checks || break
  ./check_$model --check-gpu --data data/subset --limit 64 --epochs 1 --out runs/check_$model \
    > "$out/check_$model.txt" 2>&1
  verdict "check-gpu $model" $?
done

# 2. Whole steps: 2 epochs of the subset's 448 training images on each device, the same seed, in
#    float32 (precision = "fp32"), at a learning rate of 0.001: the per-epoch losses must agree
#    to 1e-3. Not at the graph's 0.01: there the trajectory is chaotic, and a change of 1e-5 in
#    the learning rate alone moves the CPU's own epoch-2 validation loss by 1.6% to 4.1%, which
#    is what the emulator's GPU kernels did (3.5%, their sums in another order); at 0.001 the
#    emulator's run agrees with the CPU's to 1e-8, and that 1e-5 change moves the losses by
#    3e-6. The CPU run at a learning rate 1e-5 off shows that floor in steps.txt.
if wants steps; then
./check_cnn_bn_fp32 --device cpu --data data/subset --epochs 2 --lr 0.001 --out runs/cpu > "$out/steps.txt" 2>&1
cpu=$?
./check_cnn_bn_fp32 --device cpu --data data/subset --epochs 2 --lr 0.00100001 --out runs/cpu_nudged \
  >> "$out/steps.txt" 2>&1
./check_cnn_bn_fp32 --device cuda --data data/subset --epochs 2 --lr 0.001 --out runs/gpu >> "$out/steps.txt" 2>&1
gpu=$?
python3 - runs/cpu/metrics.jsonl runs/gpu/metrics.jsonl runs/cpu_nudged/metrics.jsonl >> "$out/steps.txt" 2>&1 <<'PY'
import json, sys
cpu, gpu, nudged = ([json.loads(l) for l in open(p) if '"val_loss"' in l] for p in sys.argv[1:])
assert len(cpu) == len(gpu) == 2, (len(cpu), len(gpu))
for c, g, n in zip(cpu, gpu, nudged):
    for key in ('loss', 'val_loss'):
        rel = abs(c[key] - g[key]) / abs(c[key])
        floor = abs(c[key] - n[key]) / abs(c[key])
        print(f"epoch {c['epoch']} {key}: cpu {c[key]:.7f} gpu {g[key]:.7f} relative difference {rel:.2e} "
              f"(the cpu at a learning rate 1e-5 off: {floor:.2e})")
        assert rel < 1e-3, key
PY
verdict "two epochs agree between cpu and gpu" $(( cpu || gpu || $? ))
fi

# 2b. No launch gaps: two epochs of the subset (28 steps of 16 images each) replaying the step
#    and the evaluation pass as CUDA graphs, and again with --no-cuda-graph (kernel by kernel,
#    each batch copied up just before its step): the same last.ckpt, bit for bit, and the
#    second epoch's training images/s of each, where the launch gaps show (small steps). The
#    subset's images are in memory, so its batches are built on the GPU (their choices go up
#    through the slots, the kernels that build them run before the graph); cnn_bn also with
#    --no-gpu-data (its batches go up whole). Every batch but the first must go up while the
#    step before runs, the first of each pass during the last step of the pass before.
if wants graphs; then
  : > "$out/graphs.txt"
  for run in cnn_bn resnet18 cnn_bn:--no-gpu-data; do
    model=${run%%:*} flag=${run#*:} name=${run//[:-]/_}
    [ "$flag" = "$run" ] && flag=
    # shellcheck disable=SC2086
    ./check_$model --device cuda --data data/subset --epochs 2 $flag --out runs/graphs_$name > runs/graphs_$name.txt 2>&1
    on=$?
    # shellcheck disable=SC2086
    ./check_$model --device cuda --data data/subset --epochs 2 $flag --no-cuda-graph --out runs/kernels_$name \
      > runs/kernels_$name.txt 2>&1
    off=$?
    cat runs/graphs_$name.txt runs/kernels_$name.txt >> "$out/graphs.txt"
    grep -q '^cuda graphs: on' runs/graphs_$name.txt &&
      awk '/^cuda graphs: [0-9]+ of [0-9]+ batches went up/ { ok = $3 + 1 == $5 } END { exit !ok }' \
        runs/graphs_$name.txt &&
      cmp runs/graphs_$name/last.ckpt runs/kernels_$name/last.ckpt >> "$out/graphs.txt" 2>&1
    verdict "$model $flag: CUDA graphs bit-identical to --no-cuda-graph" $(( on || off || $? ))
    grep -h '^cuda graphs: [0-9]' runs/graphs_$name.txt
    python3 - "$model $flag" runs/graphs_$name/metrics.jsonl runs/kernels_$name/metrics.jsonl >> "$out/graphs.txt" <<'PY'
import json, sys
speed = [[json.loads(l) for l in open(p) if '"images_per_s"' in l][-1]["images_per_s"] for p in sys.argv[2:]]
print(f"{sys.argv[1]}: training images/s, second epoch: graphs {speed[0]:.0f}, --no-cuda-graph {speed[1]:.0f}, "
      f"ratio {speed[0] / max(speed[1], 1e-9):.2f}")
PY
  done
  grep 'images/s, second epoch' "$out/graphs.txt"
fi

# 3. One training step of each model against PyTorch on this GPU (step_torch.py): the
#    trainer on cuda, PyTorch on cuda in float32 (no TF32) and in float64, from the same weights
#    and the first 16 training images.
if wants torch; then
  : > "$out/torch_steps.txt"
  for model in cnn_bn resnet18 mobilenet_v2 efficientnet_b5; do
    python3 torch/step_torch.py run $model ./step_$model data/subset runs/torch_$model --device cuda 2>&1 \
      | tee -a "$out/torch_steps.txt"
    verdict "one step of $model against PyTorch" "${PIPESTATUS[0]}"
  done
fi

# 4. The Fashion-MNIST example, all 15 epochs on the GPU in its default precision ("bf16":
#    bf16 activations and tensor cores, fp32 weights): the CPU (fp32) reached 91.64% test accuracy
#    (bench/results/2026-12-01-fashion-cnn-accuracy-3e6165d.txt); issue 15 allows 0.3 points.
if wants fashion; then
./fashion_cnn --device cuda --data data/full --out runs/fashion > "$out/fashion_gpu.txt" 2>&1
status=$?
acc=$(sed -n 's/^result: test_acc=\([0-9.]*\).*/\1/p' "$out/fashion_gpu.txt")
cpu_acc=0.9164
grep '^memory:' "$out/fashion_gpu.txt"
awk -v a="${acc:-0}" -v c=$cpu_acc 'BEGIN { exit !(a >= c - 0.003) }'
verdict "fashion_cnn on the GPU in bf16: test accuracy ${acc:-none}, the CPU's (fp32) $cpu_acc, within 0.3 points" \
  $(( status || $? ))
fi

# 5. The feature cache in device memory: resnet18 as a fixed feature extractor
#    (tests/emulator/features.graph), two epochs of the subset with the cache and without it
#    must end with the same checkpoint, bit for bit; the epoch lines show the time saved. The
#    cached steps are CUDA graphs (the gather through a fixed buffer of the batch's rows): with
#    --no-cuda-graph too the same checkpoint.
if wants features; then
  ./features_resnet18 --device cuda --data data/subset --out runs/features_cached > "$out/features.txt" 2>&1
  cached=$?
  ./features_resnet18 --device cuda --data data/subset --no-feature-cache --out runs/features_full \
    >> "$out/features.txt" 2>&1
  full=$?
  ./features_resnet18 --device cuda --data data/subset --no-cuda-graph --out runs/features_kernels \
    >> "$out/features.txt" 2>&1
  kernels=$?
  grep -q '^features: cached on the device' "$out/features.txt" &&
    grep -q '^cuda graphs: on, each step replays one: the training step from cached features' "$out/features.txt" &&
    cmp runs/features_cached/last.ckpt runs/features_full/last.ckpt >> "$out/features.txt" 2>&1 &&
    cmp runs/features_cached/last.ckpt runs/features_kernels/last.ckpt >> "$out/features.txt" 2>&1
  verdict "feature cache in device memory, as graphs: bit-identical to --no-feature-cache and --no-cuda-graph" \
    $(( cached || full || kernels || $? ))
  grep -E '^epoch 2' "$out/features.txt"
fi

# 5b. The data path on the GPU (trainer_gpu_data.c), on 256 of the benchmark's photos
#    (500x375 JPEG files, bench/gpu.sh makes them): every batch of an epoch built on both the
#    GPU and the CPU must be equal bit for bit (the emulator checks this in CI; here the GPU's
#    own compiler and arithmetic do it), for resnet18_ft's transforms and for a chain with
#    rotation and colour jitter; then two epochs of resnet18_ft with the batches built on the
#    GPU and with --no-gpu-data, whose epoch lines give the images/s of each, end with the same
#    checkpoint.
if wants data; then
  [ -d data/bench ] || bench/gpu.sh 256 none > /dev/null 2>&1
  : > "$out/data.txt"
  for trainer in bench_resnet18_ft bench_data_jitter; do
    timeout 150 ./$trainer --device cuda --check-gpu-data --data data/bench --limit 256 --epochs 1 --weights none \
      --out runs/data_check_$trainer >> "$out/data.txt" 2>&1
    verdict "batches built on the GPU equal the CPU's ($trainer)" $?
  done
  timeout 150 ./bench_resnet18_ft --device cuda --data data/bench --limit 256 --epochs 2 --weights none --out runs/data_gpu \
    >> "$out/data.txt" 2>&1
  gpu=$?
  timeout 150 ./bench_resnet18_ft --device cuda --no-gpu-data --data data/bench --limit 256 --epochs 2 --weights none \
    --out runs/data_cpu >> "$out/data.txt" 2>&1
  cpu=$?
  grep -E '^(data: on the GPU|epoch)' "$out/data.txt"
  cmp runs/data_gpu/last.ckpt runs/data_cpu/last.ckpt >> "$out/data.txt" 2>&1
  verdict "resnet18_ft with the data path on the GPU ends as without it" $(( gpu || cpu || $? ))
  # The steps on GPU-built batches are CUDA graphs; kernel by kernel ends the same.
  timeout 150 ./bench_resnet18_ft --device cuda --no-cuda-graph --data data/bench --limit 256 --epochs 2 --weights none \
    --out runs/data_kernels >> "$out/data.txt" 2>&1
  kernels=$?
  grep -q '^cuda graphs: on, each step replays one: the training step on batches built on the GPU' "$out/data.txt" &&
    cmp runs/data_gpu/last.ckpt runs/data_kernels/last.ckpt >> "$out/data.txt" 2>&1
  verdict "resnet18_ft on GPU-built batches: CUDA graphs bit-identical to --no-cuda-graph" $(( kernels || $? ))
  grep -E '^(epoch|cuda graphs: [0-9])' "$out/data.txt"
fi

# 6. Where the time goes: the benchmark trainers at their real sizes with --profile (each
#    kernel timed, waited for), on 256 of the benchmark's photos (bench/gpu.sh makes them).
if wants profile; then
  bench/gpu.sh 256 none > /dev/null 2>&1
  for trainer in bench_resnet18_ft bench_mobilenet_v2_ft bench_effnet_b5_ft; do
    timeout 150 ./$trainer --device cuda --profile --data data/bench --limit 256 --epochs 1 --weights none \
      --out runs/profile_$trainer > "$out/profile_$trainer.txt" 2>&1
    verdict "--profile of $trainer" $?
    cp runs/profile_$trainer/profile.tsv "$out/profile_$trainer.tsv" 2>/dev/null
  done
fi

# 7. The benchmark against PyTorch on this machine (bench/gpu.sh): a table, not a check.
chosen=$(printf '%s\n' $parts | sed -n 's/^bench://p' | tr ',' ' ')
if wants bench || [ -n "$chosen" ]; then
  # shellcheck disable=SC2086
  bench/gpu.sh 1280 $chosen > "$out/benchmark.md" 2> "$out/benchmark.err"
  cat "$out/benchmark.md"
fi

cat "$summary"
! grep -q '^FAIL' "$summary"
