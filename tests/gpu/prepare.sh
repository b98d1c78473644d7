#!/usr/bin/env bash
# prepare.sh: builds, here, everything tests/gpu/run.sh needs on the GPU machine, which has a
# driver, PyTorch and Python but no LLVM and none of our packages (so tlc cannot be built
# there; the trainers are self-contained and travel). Writes build/gpu/pack.tar.xz, to be
# carried to the device:
#   tests/gpu/prepare.sh
#   device run --carry build/gpu 'tests/gpu/run.sh build/gpu/pack.tar.xz checks steps torch features'
#   device run --carry build/gpu 'tests/gpu/run.sh build/gpu/pack.tar.xz fashion'
#   device run --carry build/gpu 'tests/gpu/run.sh build/gpu/pack.tar.xz bench:bench_resnet18_fixed,bench_cnn_bn'
#   ... then bench:bench_resnet18_ft,bench_mobilenet_v2_ft and bench:bench_effnet_b5_ft
# (each call within the device's 10 minutes); run.sh writes its results to $OUT.
# The tile sweep has a pack of its own (bench/tile_sweep.sh: under 3 minutes on the device):
#   bench/tile_sweep.sh build
#   device run --carry build/gpu/tiles.tar.xz 'bench/tile_sweep.sh run build/gpu/tiles.tar.xz'
# and its $OUT/tile_table.def is committed as codegen/tile_table.def.
# The trainers' CPU kernels target x86-64-v3 (AVX2), which every H100/H200 host has.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tools/build.sh >/dev/null
tlc=$root/build/tlc
stage=$root/build/gpu/stage
rm -rf "$root/build/gpu" && mkdir -p "$stage/data/subset" "$stage/data/full"

# Every model on Fashion-MNIST at 28x28, batch 16: the kernel-by-kernel checks. The data there
# is the 512-image subset, so 64 images (not 5,000) are held out for validation.
for model in cnn_bn resnet18 mobilenet_v2 efficientnet_b5; do
  echo "prepare: $model"
  "$tlc" tests/gpu/fashion_zoo.graph --set "model=$model(input = [1, 28, 28], classes = 10)" --set data.val=64 \
    --cpu=x86-64-v3 -o "$stage/check_$model"
done
# cnn_bn in float32 throughout, for the two-epoch comparison of the devices (the default, bf16
# tensor cores on the GPU, is checked kernel by kernel above and by the Fashion-MNIST accuracy).
"$tlc" tests/gpu/fashion_zoo.graph --set "model=cnn_bn(input = [1, 28, 28], classes = 10)" --set data.val=64 \
  --set 'precision="fp32"' --cpu=x86-64-v3 -o "$stage/check_cnn_bn_fp32"
# One step of every model against PyTorch (step_torch.py, which names each model's call), and
# the script with the weights module it imports.
for model in cnn_bn resnet18 mobilenet_v2 efficientnet_b5; do
  echo "prepare: step $model"
  "$tlc" tests/gpu/step_zoo.graph --set "model=$(/usr/bin/python3 tests/gpu/step_torch.py call $model)" \
    --cpu=x86-64-v3 -o "$stage/step_$model"
done
mkdir -p "$stage/torch"
cp tests/gpu/step_torch.py tests/weights/weights.py "$stage/torch/"
# ResNet-18 as a fixed feature extractor (only fc trains), for the feature cache in device memory.
"$tlc" tests/emulator/features.graph --cpu=x86-64-v3 -o "$stage/features_resnet18"
# The Fashion-MNIST example as users build it, for accuracy against the CPU's.
"$tlc" examples/fashion_cnn.graph --cpu=x86-64-v3 -o "$stage/fashion_cnn"

# The benchmark's trainers (bench/gpu.sh): the examples on a synthetic photo folder, 10 classes.
bench() {   # bench NAME EXAMPLE [--set ...]
  local name=$1 example=$2; shift 2
  echo "prepare: benchmark $name"
  "$tlc" "examples/$example.graph" --set 'data=image_folder("data/bench")' --set classes=10 --set weights=none \
    --set epochs=2 "$@" --cpu=x86-64-v3 -o "$stage/bench_$name"
}
bench resnet18_ft resnet18_ft --set batch=128
bench resnet18_fixed resnet18_fixed --set batch=128
bench mobilenet_v2_ft mobilenet_v2_ft --set batch=128
bench effnet_b5_ft effnet_b5_ft --set batch=32
bench cnn_bn cnn_bn_scratch --set batch=128
# The data path on the GPU with every transform it runs: rotation and colour jitter too.
bench data_jitter cnn_bn_scratch --set batch=128 --set 'train_transform=[random_resized_crop(224), hflip(0.5),
  rotate(15), color_jitter(0.4, 0.4, 0.4, 0.1), normalize(mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225])]'
mkdir -p "$stage/bench"
cp bench/gpu.sh bench/gpu_torch.py "$stage/bench/"

# Data: the real files, and a 512-image subset of each split for the quick checks.
cp /usr/share/datasets/fashion-mnist/*.gz "$stage/data/full/"
python3 - "$stage/data/full" "$stage/data/subset" 512 <<'PY'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for split in ('train', 't10k'):
    for kind, header in (('images-idx3', 16), ('labels-idx1', 8)):
        name = f'{split}-{kind}-ubyte.gz'
        data = gzip.open(f'{src}/{name}').read()
        head = bytearray(data[:header])
        struct.pack_into('>I', head, 4, n)
        item = 28 * 28 if kind.startswith('images') else 1
        gzip.open(f'{dst}/{name}', 'wb').write(bytes(head) + data[header:header + n * item])
PY
# Symbol tables are not needed there and the pack must travel within 64 MiB (.tlc_bundle stays):
# xz's large window also shares the libraries every trainer links (49 MB where gzip made 62).
strip "$stage"/check_* "$stage"/step_* "$stage"/bench_* "$stage"/features_* "$stage/fashion_cnn"
cp tests/gpu/run.sh "$stage/"
git rev-parse --short HEAD > "$stage/commit.txt"
tar -C "$stage" -cf - . | xz -T2 -6e > "$root/build/gpu/pack.tar.xz"
rm -rf "$stage"
du -h "$root/build/gpu/pack.tar.xz"
