#!/usr/bin/env bash
# The first GPU benchmark (issue 5), on the GPU machine, inside the pack tests/gpu/prepare.sh
# makes (it holds the benchmark trainers, built here with `tlc --cpu=x86-64-v3`, and this
# script). For each experiment: training images/s (the second of two epochs, so that
# warm-up, cuDNN autotuning and compilation are not timed) and peak device memory, for tlc
# and for PyTorch on the same files (eager with channels_last, bf16 autocast and cuDNN, and
# torch.compile), one after the other in one run. Writes a markdown table to stdout.
#   (cd PACK && bench/gpu.sh [IMAGES [TRAINER...]])
# IMAGES: synthetic photos to train on (default 1280: ten steps of 128 in the timed epoch);
# TRAINER: run only these experiments (bench_resnet18_ft ...; default all). A device call
# lasts 10 minutes and the first kernels are slow, so the GPU script runs a few per call.
# TLC_BENCH_FLAGS: more flags for the tlc trainers, e.g. --no-cuda-graph to time the steps
# launched kernel by kernel (tests/gpu/run.sh's graphs part compares both on small steps).
set -u
images=${1:-1280}
shift || true
only=" $* "
py=python3
$py - data/bench "$images" <<'PY'
# Photo-sized JPEG files in 10 classes, as ImageFolder wants them (train/ and val/).
import os, sys
import numpy as np
from PIL import Image
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for k in range(n):
    for split in ("train", "val") if k < 10 else ("train",):
        d = f"{out}/{split}/class{k % 10}"
        os.makedirs(d, exist_ok=True)
        base = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(base).resize((500, 375), Image.BILINEAR).save(f"{d}/{k:05d}.jpg", quality=90)
PY

# name, trainer, torchvision model, image, batch, extra PyTorch flags
experiments=(
  "resnet18 fine-tune|bench_resnet18_ft|resnet18|224|128|"
  "resnet18 fixed feature extractor|bench_resnet18_fixed|resnet18|224|128|--fixed"
  "mobilenet_v2 fine-tune|bench_mobilenet_v2_ft|mobilenet_v2|224|128|"
  "efficientnet_b5 fine-tune|bench_effnet_b5_ft|efficientnet_b5|456|32|"
  "cnn_bn from scratch|bench_cnn_bn|cnn_bn|224|128|"
)

# Peak device memory of a command, polled through nvidia-smi (the same for both sides).
peak_of() {
  local log=$1; shift
  local best=0
  "$@" > "$log" 2>&1 &
  local pid=$!
  while kill -0 $pid 2>/dev/null; do
    local used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    [ "${used:-0}" -gt "$best" ] && best=$used
    sleep 0.5
  done
  wait $pid
  echo "$best"
}

# "eager, batch on GPU": PyTorch eager training every step on one batch kept on the device, its
# speed without its loader (tlc builds its batches on the GPU; the DataLoader decodes JPEG files
# on CPU workers). tlc / eager is against the loader-fed run, as a user would run it.
echo "| experiment | tlc images/s | PyTorch eager images/s | eager, batch on GPU | torch.compile images/s | tlc / eager | tlc / eager, batch on GPU | tlc peak MiB | eager peak MiB | compile peak MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
ratio() {   # ratio A B: A / B as "1.23x", or "-"
  awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else print "-" }'
}
for e in "${experiments[@]}"; do
  IFS='|' read -r name trainer model image batch extra <<< "$e"
  [ "$only" = "  " ] || [[ "$only" == *" $trainer "* ]] || continue
  # The first kernels are naive (one thread per parallel-loop iteration): a run that would
  # not end in time is stopped and reported as such rather than holding the machine.
  mem_tlc=$(peak_of "runs/$trainer.log" timeout "${TLC_BENCH_TIMEOUT:-150}" ./"$trainer" --device cuda --data data/bench \
    --epochs 2 --out "runs/$trainer" --cache-mb 16384 --weights none ${TLC_BENCH_FLAGS:-})
  tlc=$($py -c "import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])['images_per_s'])" \
    "runs/$trainer/metrics.jsonl" 2>/dev/null || echo "timeout")
  mem_eager=$(peak_of "runs/$trainer.eager.log" $py bench/gpu_torch.py --model "$model" --image "$image" --batch "$batch" \
    --data data/bench --mode eager $extra)
  eager=$(sed -n 's/^result: images_per_s=\([0-9.]*\).*/\1/p' "runs/$trainer.eager.log")
  peak_of "runs/$trainer.resident.log" $py bench/gpu_torch.py --model "$model" --image "$image" --batch "$batch" \
    --data data/bench --mode eager --batch-on-device $extra > /dev/null
  resident=$(sed -n 's/^result: images_per_s=\([0-9.]*\).*/\1/p' "runs/$trainer.resident.log")
  mem_compile=$(peak_of "runs/$trainer.compile.log" $py bench/gpu_torch.py --model "$model" --image "$image" \
    --batch "$batch" --data data/bench --mode compile $extra)
  compiled=$(sed -n 's/^result: images_per_s=\([0-9.]*\).*/\1/p' "runs/$trainer.compile.log")
  echo "| $name ($image px, batch $batch) | ${tlc:-failed} | ${eager:-failed} | ${resident:-failed} | ${compiled:-failed} |" \
    "$(ratio "$tlc" "$eager") | $(ratio "$tlc" "$resident") | $mem_tlc | $mem_eager | $mem_compile |"
done
