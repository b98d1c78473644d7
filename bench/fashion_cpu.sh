#!/usr/bin/env bash
# The CPU benchmark: training images/s of examples/fashion_cnn.graph, tlc's trainer against
# PyTorch eager (bench/fashion_cnn_torch.py: same model, batch, optimizer, augmentation,
# thread count), one after the other in one run on this machine. Prints a markdown table.
#
#   bench/fashion_cpu.sh [LIMIT]      (training images per run, default 20000)
# Needs a built tlc (tools/build.sh) and the distribution's python3-torch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
limit=${1:-20000}
threads=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$root/build/tlc" "$root/examples/fashion_cnn.graph" --set epochs=1 -o "$tmp/train"
tlc_line=$("$tmp/train" --limit "$limit" --threads "$threads" --out "$tmp/run" | grep '^result:')
torch_line=$(/usr/bin/python3 "$root/bench/fashion_cnn_torch.py" --limit "$limit" --threads "$threads" | grep '^result:')
tlc_ips=$(sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p' <<< "$tlc_line")
torch_ips=$(sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p' <<< "$torch_line")
torch_version=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)')

echo "| trainer | training images/s | |"
echo "|---|---|---|"
echo "| tlc ($(git -C "$root" rev-parse --short HEAD)) | $tlc_ips | $(awk -v a="$tlc_ips" -v b="$torch_ips" 'BEGIN { printf "%.2fx PyTorch", a / b }') |"
echo "| PyTorch $torch_version eager | $torch_ips | 1.00x |"
echo
echo "$limit training images, batch 128, $threads threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
