#!/usr/bin/env bash
# Installs what tlc needs from the distribution's packages, only when something is missing
# (so a second run costs nothing and needs no network).
set -euo pipefail

packages=(
  build-essential cmake            # the C toolchain and the build
  llvm-dev libclang-dev clang      # the CPU backend lowers kernels through LLVM's C API
  zlib1g-dev libjpeg62-turbo-dev libpng-dev   # the runtime's data loaders (IDX, JPEG, PNG)
  libmatio-dev libhdf5-dev libaec-dev         # Flowers102's .mat files (matio, linked statically with HDF5)
  libflatbuffers-dev flatbuffers-compiler     # checkpoints and the kernel bundle
  libjansson-dev                   # safetensors headers (JSON); trainers link libjansson.a
  libcairo2-dev fonts-dejavu-core  # the pictures (--predict-grid, tlc report): Cairo, loaded with dlopen, and a font
  dataset-fashion-mnist            # the default data, under /usr/share/datasets/fashion-mnist
  python3                          # tests read flatc's JSON of checkpoints
  python3-pil python3-numpy        # the data tests write JPEG/PNG trees; the loader benchmark
  python3-scipy                    # the Flowers102 test writes real MAT v5 files (scipy.io.savemat)
  python3-torch python3-torchvision  # the oracles: torchvision's transforms (tests/transforms),
                                   # DataLoader (the loader benchmark), weights and logits (tests/weights)
  xz-utils                         # tests/gpu/prepare.sh packs the GPU machine's files
)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "tlc setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
