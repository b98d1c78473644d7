#!/usr/bin/env bash
# The loader benchmark: images/s of decode + augment (JPEG photos, resize 256, center crop 224,
# flip, normalise) by libtlcrt's loader (bench/loader_bench.c) against torchvision's
# DataLoader with PIL (bench/loader_torch.py), on the same files, one after the other, with
# 1 thread/worker and with one per core. Prints a markdown table.
#
#   bench/loader.sh [IMAGES] [EPOCHS]     (default 512 images, 2 timed epochs)
# Needs a built tlc (tools/build.sh) and the distribution's python3-torch and -torchvision.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
images=${1:-512} epochs=${2:-2}
cores=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
$py "$root/bench/make_photos.py" "$tmp/photos" "$images"
bench=$root/build/bench/loader_bench
ips() { sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p'; }
tlc1=$("$bench" "$tmp/photos" 1 "$epochs" | ips)
torch1=$($py "$root/bench/loader_torch.py" "$tmp/photos" 0 "$epochs" | ips)
tlcn=$("$bench" "$tmp/photos" "$cores" "$epochs" | ips)
torchn=$($py "$root/bench/loader_torch.py" "$tmp/photos" "$cores" "$epochs" | ips)
versions=$($py -c 'import torch, torchvision, PIL; print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, PIL {PIL.__version__}")')

echo "| loader | threads / workers | images/s | images/s per core | |"
echo "|---|---|---|---|---|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx torchvision", a / b }'; }
echo "| tlc ($(git -C "$root" rev-parse --short HEAD)) | 1 | $tlc1 | $tlc1 | $(ratio "$tlc1" "$torch1") |"
echo "| torchvision DataLoader + PIL | 0 (main process) | $torch1 | $torch1 | 1.00x |"
echo "| tlc | $cores | $tlcn | $(awk -v a="$tlcn" -v c="$cores" 'BEGIN { printf "%.1f", a / c }') | $(ratio "$tlcn" "$torchn") |"
echo "| torchvision DataLoader + PIL | $cores | $torchn | $(awk -v a="$torchn" -v c="$cores" 'BEGIN { printf "%.1f", a / c }') | 1.00x |"
echo
echo "$images JPEG files (500x375 / 375x500), $epochs timed epochs after one untimed, batch 32, $versions,"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores"
