#!/usr/bin/env bash
# The CPU training benchmarks of issue 14: training images/s and peak memory of a tlc trainer
# against PyTorch eager (bench/cpu_torch.py: same model, batch, optimizer, flip and
# normalisation, images decoded once into memory on both sides), run alternately in one run,
# REPEATS times each. Prints a markdown table: the median images/s of each, their spread
# (min-max), the ratio of medians, and each one's peak resident memory.
#
#   bench/cpu_models.sh WORKLOAD THREADS [STEPS] [REPEATS]
#   WORKLOAD: rn18_224 (ResNet-18, 224x224, batch 32), rn18_32 (ResNet-18, 32x32, batch 128),
#             mnv2_224 (MobileNetV2, 224x224, batch 32), vgg11_32 (VGG-11-BN, 32x32, batch 64),
#             rn18_fixed_224 (ResNet-18 as a fixed feature extractor, 224x224, batch 32)
# Every layer trains from random weights (weights = none: speed does not depend on them),
# 10 classes, SGD with momentum 0.9; images/s of the second of two epochs of STEPS steps
# (default 5), so the first step's page faults and caches are not counted.
# Needs a built tlc (tools/build.sh) and the distribution's python3-torch and -torchvision.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
workload=$1 threads=$2 steps=${3:-5} repeats=${4:-3}
py=/usr/bin/python3
. "$root/bench/workloads.sh"
workload "$workload"
images=$((steps * batch))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$py "$root/bench/make_images.py" "$tmp/images" "$size" "$images"
workload_graph "$tmp/bench.graph" "$tmp/images"
"$root/build/tlc" "$tmp/bench.graph" -o "$tmp/train" >/dev/null
torch_args=(--model "$model" --images "$tmp/images" --batch "$batch" --threads "$threads" --steps "$steps")
[ "$freeze" = none ] || torch_args+=(--frozen)
tlc_ips=() tlc_mb=() torch_ips=() torch_mb=()
for r in $(seq "$repeats"); do
  rm -rf "$tmp/run"
  /usr/bin/time -f '%M' -o "$tmp/rss" "$tmp/train" --threads "$threads" --limit "$images" --out "$tmp/run" >/dev/null
  tlc_ips+=("$(tail -1 "$tmp/run/metrics.jsonl" | sed -n 's/.*"images_per_s": *\([0-9.e+]*\).*/\1/p')")
  tlc_mb+=("$(awk '{ printf "%.0f", $1 / 1024 }' "$tmp/rss")")
  line=$($py "$root/bench/cpu_torch.py" "${torch_args[@]}" | grep '^result:')
  torch_ips+=("$(sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p' <<< "$line")")
  torch_mb+=("$(sed -n 's/.*peak_rss_mb=\([0-9]*\).*/\1/p' <<< "$line")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
tm=$(median "${tlc_ips[@]}") pm=$(median "${torch_ips[@]}")
echo "| $workload, $threads threads | images/s (median) | spread | peak RSS MiB | |"
echo "|---|---|---|---|---|"
echo "| tlc ($(git -C "$root" rev-parse --short HEAD)) | $(printf %.2f "$tm") | $(spread "${tlc_ips[@]}") | $(median "${tlc_mb[@]}") | $(awk -v a="$tm" -v b="$pm" 'BEGIN { printf "%.2fx PyTorch", a / b }') |"
echo "| PyTorch $($py -c 'import torch; print(torch.__version__)') eager | $(printf %.2f "$pm") | $(spread "${torch_ips[@]}") | $(median "${torch_mb[@]}") | 1.00x |"
