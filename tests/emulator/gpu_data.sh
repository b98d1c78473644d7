#!/usr/bin/env bash
# gpu_data.sh TLC EMULATOR_LIB_DIR SCRATCH: the data path on the emulated GPU. An ImageFolder
# tree of PNG files of many sizes (written here with PIL: 30 to 90 pixels a side, a few
# photographs of 150 to 260, some gray) is kept in device memory and every batch is built by
# the data path's kernels. The oracle is the CPU's loader (runtime/transform*.c, which
# tests/transforms checks against torchvision): with --check-gpu-data the trainer builds each
# batch on both and stops at the first float that differs. The tolerance is zero: the kernels
# sum the same integers as the CPU's resize (Pillow's fixed-point taps, which the host
# computes with the CPU's own code; integer sums do not depend on their order), rotate with
# the CPU's 16.16 coefficients, blend colours with the same float operations (the product
# rounded on its own, as the CPU's, which has no fused multiply-add), look hue up in tables
# the CPU's conversions fill, and read the same float table for the normalisation: there is
# no rounding to differ. Each transform is checked alone and in chains like the examples';
# a two-epoch training run with the data path on the GPU ends with the checkpoints of one
# without it, bit for bit. A kernel planted to take its neighbour's crop and flip (the
# trainer's own program through TLC_EMU_SOURCE) must fail the check, and so must one whose
# hue is a step off. The start of a run says where the batches are built, with the bytes the
# device holds (the PNG files' decoded sizes, summed here with PIL), or why not. Exit 77
# (skipped) without NVRTC.
set -u
tlc=$1 emulator=$2 dir=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/check.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
export TLC_CACHE_DIR=$emulator/../tlc-cache TLC_EMU_MEMORY_MB=2048
# Trainers run on the emulated driver; tlc does not (NVRTC crashes with it on the library path).
emu() { LD_LIBRARY_PATH=$emulator "$@"; }
py=/usr/bin/python3

# The images, and the bytes they take decoded as RGB (the model's channels).
$py - > bytes.txt <<'PY' || exit 1
import os, random
import numpy as np
from PIL import Image
random.seed(7)
rng = np.random.default_rng(7)
total = 0
for split, n in (("train", 12), ("val", 4)):
    for cls in ("ants", "bees"):
        os.makedirs(f"folder/{split}/{cls}", exist_ok=True)
        for i in range(n):
            side = (150, 260) if i % 5 == 4 else (30, 90)
            w, h = random.randint(*side), random.randint(*side)
            y, x = np.mgrid[0:h, 0:w]
            smooth = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x * 3 + y * 5) % 256], -1)
            pixels = np.clip(smooth + rng.integers(-60, 60, (h, w, 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            (image.convert("L") if i % 6 == 2 else image).save(f"folder/{split}/{cls}/{cls}_{i}.png")
            total += w * h * 3
print(total)
PY
bytes=$(cat bytes.txt)

# A small network: the step's kernels on the emulator take little of the test's time.
cat > data.graph <<'G'
model small(classes = 2, input = [3, 28, 28]) {
  conv2d(4, 3, stride = 2, pad = 1)
  relu
  global_avg_pool
  flatten
  fc: linear(classes)
}
experiment {
  model = small()
  data = image_folder("folder")
  train_transform = [random_resized_crop(28), hflip(0.5), normalize(mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225])]
  eval_transform = [resize(32), center_crop(28), normalize(mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225])]
  optimizer = adam(lr = 0.002)
  epochs = 2
  batch = 8
  seed = 3
}
G
if ! "$tlc" data.graph -o train > build.txt 2>&1; then
  cat build.txt
  echo "FAIL: tlc could not build the trainer"
  exit 1
fi
if grep -q "will run on the CPU only" build.txt; then
  cat build.txt
  exit 77
fi
"$tlc" data.graph --emit=cuda > program.cu
check "the program has the augment kernel" grep -q '__global__ void __launch_bounds__(256) augment(' program.cu

# Each transform alone (after a resize to the model's size where it needs one), then chains.
norm='normalize(mean = [0.5, 0.4, 0.3], std = [0.2, 0.25, 0.3])'
lists=(
  "[resize([28, 28])]"
  "[resize(28), center_crop(28), $norm]"
  "[random_resized_crop(28, scale = [0.05, 1.0], ratio = [0.5, 2.0]), $norm]"
  "[resize([28, 28]), hflip(0.5)]"
  "[resize([28, 28]), vflip(0.5)]"
  "[resize(28), random_crop(28, pad = 4), $norm]"
  "[center_crop(30), resize([28, 28]), hflip(1.0), $norm]"
  "[random_crop(30), random_resized_crop(28), vflip(0.5), hflip(0.5), $norm]"
  "[resize(40), random_crop(32), center_crop(28), hflip(0.5), $norm]"
  "[resize([28, 28]), rotate(30)]"
  "[resize([28, 28]), rotate(180), $norm]"
  "[resize(30), random_crop(28, pad = 2), rotate(15), hflip(0.5), $norm]"
  "[random_resized_crop(32), hflip(0.5), rotate(20), center_crop(28), vflip(0.5), $norm]"
  "[resize([28, 28]), color_jitter(brightness = 0.6)]"
  "[resize([28, 28]), color_jitter(contrast = 0.8), $norm]"
  "[resize([28, 28]), color_jitter(saturation = 0.9), $norm]"
  "[resize([28, 28]), color_jitter(hue = 0.4), $norm]"
  "[random_resized_crop(28), hflip(0.5), rotate(10), color_jitter(0.4, 0.4, 0.4, 0.1), $norm]"
)
i=0
for list in "${lists[@]}"; do
  i=$((i + 1))
  "$tlc" data.graph --set "train_transform=$list" -o train_$i > /dev/null 2>&1 ||
    { check "build with $list" false; continue; }
  emu ./train_$i --check-gpu-data --epochs 1 --out check_$i > check_$i.txt 2>&1
  status=$?
  check "train $list: every batch the CPU's bit for bit (status $status)" test $status -eq 0
  [ $status -eq 0 ] || tail -3 check_$i.txt
  check "train $list: built on the GPU" grep -q "^check-gpu-data: 1 batch built on the GPU" check_$i.txt
done
check "the chains' evaluation batches too" grep -q "the training and evaluation batches are built there" check_1.txt
# Three epochs: the eleventh batch is checked too, and most tables were drawn while the GPU ran the step before.
emu ./train --check-gpu-data --epochs 3 --out ahead > ahead.txt 2>&1
check "three epochs, every batch the CPU's (status $?)" grep -q '^result:' ahead.txt
check "batches drawn ahead" grep -qE "^check-gpu-data: 11 batches built on the GPU, .*; [1-9][0-9]* drawn while the step before ran" ahead.txt

# In-memory gray images (Fashion-MNIST's IDX files) for a 3-channel model: grayscale_to_rgb
# before the geometry and the jitter.
fashion=/usr/share/datasets/fashion-mnist
if [ -e "$fashion/train-images-idx3-ubyte.gz" ]; then
  "$tlc" data.graph --set "data=idx(\"$fashion\", val = 64)" --set classes=10 \
    --set "train_transform=[grayscale_to_rgb(), random_crop(28, pad = 2), hflip(0.5), rotate(20), color_jitter(0.3, 0.3, 0.3, 0.05), $norm]" \
    --set "eval_transform=[grayscale_to_rgb(), resize(32), center_crop(28), $norm]" -o train_idx > /dev/null 2>&1
  emu ./train_idx --check-gpu-data --limit 48 --epochs 1 --out idx > idx.txt 2>&1
  check "IDX, gray to RGB: every batch the CPU's (status $?)" grep -q "^check-gpu-data: 1 batch built on the GPU" idx.txt
  check "IDX: the images the device holds (48 in each split, 28x28 bytes)" grep -q "^data: on the GPU: 0.1 MB (112896 bytes) of decoded images (144 images)" idx.txt
fi

# The start of a run says where, and how many bytes the device holds.
emu ./train --device cuda --out gpu > gpu.txt 2>&1
check "a run with the data path on the GPU (status $?)" grep -q '^result:' gpu.txt
check "it says so, with the decoded images' $bytes bytes" \
  grep -q "^data: on the GPU: [0-9.]* MB ($bytes bytes) of decoded images (32 images); budget 1[0-9]* MB: the device's free" gpu.txt
emu ./train --device cuda --no-gpu-data --out cpu > cpu.txt 2>&1
check "--no-gpu-data: said" grep -q "^data: batches built on the CPU: --no-gpu-data" cpu.txt
for file in last.ckpt best.ckpt; do
  check "with and without the data path on the GPU: the same $file" cmp gpu/$file cpu/$file
done
# The steps as CUDA graphs on batches built on the GPU: each batch's choices go up through the
# slots while the step before runs, and the kernels that build it run on the compute stream
# before the graph. Kernel by kernel (--no-cuda-graph) must end the same, bit for bit, with
# the same figures; so must the jitter chain (three kernels, its factors in the slot too).
figures() { sed -E 's/  [0-9.]+ img\/s  [0-9.]+ s$//; s/ (train_time_s|images_per_s)=[0-9.]+//g' "$1" | grep -E '^(epoch|result)'; }
check "graphs on batches built on the GPU: said" grep -q "^cuda graphs: on, each step replays one: the training step \
on batches built on the GPU (their choices go up) and the evaluation pass on batches built on the GPU;" gpu.txt
# Every batch but the run's first went up while the step before ran (each pass's first
# during the last step of the pass before): its choices drawn for the next epoch's order.
check "graphs on batches built on the GPU: every batch but the first went up ahead" \
  awk '/^cuda graphs: [0-9]+ of [0-9]+ batches went up/ { ok = $3 + 1 == $5 && $3 > 0 } END { exit !ok }' gpu.txt
emu ./train --device cuda --no-cuda-graph --out kernels > kernels.txt 2>&1
check "--no-cuda-graph: trains (status $?)" grep -q '^result:' kernels.txt
for file in last.ckpt best.ckpt; do
  check "graphs and kernel by kernel on GPU-built batches: the same $file" cmp gpu/$file kernels/$file
done
figures gpu.txt > gpu.figures
figures kernels.txt > kernels.figures
check "graphs and kernel by kernel: the same figures" sh -c "test -s gpu.figures && cmp -s gpu.figures kernels.figures"
if [ -x train_18 ]; then
  emu ./train_18 --device cuda --out jitter_graphs > jitter_graphs.txt 2>&1
  emu ./train_18 --device cuda --no-cuda-graph --out jitter_kernels > jitter_kernels.txt 2>&1
  check "jitter: graphs and kernel by kernel end the same" sh -c \
    "test -s jitter_graphs/last.ckpt && cmp jitter_graphs/last.ckpt jitter_kernels/last.ckpt"
fi
# A missing wait can be seen: without the streams' waits from the 6th on (the third step's),
# the third step builds its batch from the choices its slot held before (the first epoch's
# figures differ) or, in a slot that grew, from memory never written (the kernel faults).
TLC_EMU_DROP_WAITS=6 emu ./train --device cuda --out stale > stale.txt 2>&1
figures stale.txt | head -1 > stale.first
head -1 kernels.figures > kernels.first
check "graphs on GPU-built batches: stale choices are caught" sh -c "grep -q '^error: a GPU kernel failed: kernel augment' \
  stale.txt || (test -s stale.first && ! cmp -s stale.first kernels.first)"
emu ./train --device cuda --gpu-data-mb 0 --limit 8 --epochs 1 --out small > small.txt 2>&1
check "--gpu-data-mb 0: over the budget, said" \
  grep -q "^data: batches built on the CPU: 0.[0-9] MB of decoded images is over the device's budget of 0 MB (--gpu-data-mb 0)" small.txt
"$tlc" data.graph --set 'train_transform=[hflip(0.5), resize([28, 28])]' -o train_cpu > /dev/null 2>&1
emu ./train_cpu --device cuda --limit 8 --epochs 1 --out flip_first > flip_first.txt 2>&1
check "a chain the kernel cannot run: that split on the CPU, said" \
  grep -q "^data: training batches built on the CPU: hflip before resize" flip_first.txt
check "and the other split on the GPU" grep -q "the evaluation batches are built there" flip_first.txt
emu ./train --check-gpu --limit 8 --epochs 1 --out checked > checked.txt 2>&1
check "--check-gpu: the data path is off, said" \
  grep -q "^data: batches built on the CPU: --check-gpu compares the steps from the host's batches" checked.txt

# The check can fail: each sample takes the crop and flip of its neighbour in the batch.
sed -E '/ augment\(/,/^}/ s/\(n \* 32\) \+ (21|22)\)/((n ^ 1) * 32) + \1)/g' program.cu > planted.cu
check "the planted kernel differs" sh -c '! cmp -s program.cu planted.cu'
TLC_EMU_SOURCE=$PWD/planted.cu emu ./train --check-gpu-data --epochs 1 --out planted > planted.txt 2>&1
check "a planted neighbour's flip fails the check" grep -q "^error: --check-gpu-data: batch 1 differs at sample" planted.txt
# And a hue one step off (the hue-only trainer above, list 17).
"$tlc" data.graph --set "train_transform=${lists[16]}" --emit=cuda > hue.cu
sed -E '/ jitter\(/,/^}/ s/r = \(\(r \+ b1/r = ((r + 1 + b1/' hue.cu > hue_planted.cu
check "the planted hue differs" sh -c '! cmp -s hue.cu hue_planted.cu'
TLC_EMU_SOURCE=$PWD/hue_planted.cu emu ./train_17 --check-gpu-data --epochs 1 --out hue_planted > hue_planted.txt 2>&1
check "a planted hue step fails the check" grep -q "^error: --check-gpu-data: batch 1 differs at sample" hue_planted.txt
check_report gpu_data
