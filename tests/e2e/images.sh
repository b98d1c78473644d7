#!/usr/bin/env bash
# images.sh TLC SCRATCH: trainers on image files end to end. An ImageFolder tree of
# Fashion-MNIST PNG files (written by tests/data/make_data.py with PIL) trains a small CNN
# above chance by a wide margin; the trainer reports its splits and classes and draws
# OUT/samples.png; results do not depend on the thread count or the decoded cache; corrupt
# files are skipped and counted; an image smaller than the crop is a clear error; CIFAR-10
# and Flowers102 trees train through their own loaders; every trainer is self-contained.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
make=$root/tests/data/make_data.py
$py "$make" folder_png png 120 && $py "$make" cifar10 cifar 16 && $py "$make" flowers102 flowers 24 || exit 1

cat > folder.graph <<'G'
import "cnn_bn.graph"
experiment {
  model = cnn_bn(input = [1, 28, 28], hidden = 64)
  classes = 10
  data = image_folder("png")
  train_transform = [random_crop(28, pad = 2), hflip(0.5), normalize(mean = [0.286], std = [0.353])]
  eval_transform = [normalize(mean = [0.286], std = [0.353])]
  optimizer = adam(lr = 0.002)
  epochs = 2
  batch = 32
  seed = 3
}
G
check "build the ImageFolder trainer" "$tlc" folder.graph -o train
check "ImageFolder trainer: ldd shows only the C library" self_contained train

# Learns: 1,200 training images, 2 epochs; chance is 10%.
check "train" ./train --out run > train.txt
cat train.txt
check "report: split sizes" grep -qF "data: png (image_folder): train 1200, val 240, test 240 images, 10 classes" train.txt
check "report: val folder" grep -qF "data: val is png/val" train.txt
check "report: class names in torchvision's order" grep -qF "data: classes: 0 Ankle boot, 1 Bag, 2 Coat," train.txt
check "report: cached" grep -qF "of decoded images cached in memory" train.txt
acc=$(sed -n 's/^result: test_acc=\([0-9.]*\).*/\1/p' train.txt)
check "test accuracy above 0.50 (chance 0.10)" awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.50) }'
check "no file skipped" grep -qF "skipped_images=0" train.txt
# 16 samples: 4x4 tiles of 28x28 enlarged 3 times (84 pixels), an 11-pixel label strip, 4-pixel gaps.
check "samples.png: a 4x4 grid of tiles with labels" $py -c "
from PIL import Image; import numpy as np
im = Image.open('run/samples.png'); a = np.asarray(im)
assert im.mode == 'RGB' and im.size == (4 * 88 + 4, 4 * (84 + 11 + 4) + 4), im.size
assert a[4:88, 4:88].std() > 10   # a picture, not a blank tile
assert (a[88:99, 4:88] == 255).any()  # white label text under it
"

# The thread count and the decoded cache change nothing: bit-identical checkpoints.
check "1 thread" ./train --epochs 1 --limit 256 --threads 1 --out t1 > /dev/null
check "2 threads, 2 loader threads" ./train --epochs 1 --limit 256 --threads 2 --loader-threads 2 --out t2 > /dev/null
check "1 thread, 3 loader threads, no cache" ./train --epochs 1 --limit 256 --threads 1 --loader-threads 3 --cache-mb 0 --out t3 > t3.txt
check "threads 1 vs 2: bit-identical" cmp t1/last.ckpt t2/last.ckpt
check "cache vs decoding every epoch: bit-identical" cmp t1/last.ckpt t3/last.ckpt
check "no cache: said so" grep -qF "data: --cache-mb 0: decoding the image files every epoch" t3.txt

# Corrupt files: skipped with a warning naming them, counted, never fatal; with the cache
# (dropped before training) and without it (replaced when met).
cp -r png bad
first=$(ls bad/test/Bag | head -1) second=$(ls bad/test/Coat | head -1)
head -c 300 "png/test/Bag/$first" > "bad/test/Bag/$first"
echo "not an image" > "bad/test/Coat/$second"
for cache in 2048 0; do
  check "corrupt files, --cache-mb $cache: runs" sh -c "./train --data bad --epochs 1 --limit 64 --cache-mb $cache --out c$cache > c$cache.txt 2> c$cache.err"
  check "corrupt files, --cache-mb $cache: warned" grep -qF "warning: bad/test/Bag/$first: not a readable PNG" c$cache.err
  check "corrupt files, --cache-mb $cache: counted" grep -qF "skipped_images=" c$cache.txt
done
check "cached: both counted" grep -qF "skipped_images=2" c2048.txt
check "cached: summary line" grep -qF "data: 2 image files could not be decoded and were skipped" c2048.txt

# An image smaller than the crop: an error naming the file and both sizes.
cp -r png small
$py -c "from PIL import Image; Image.new('L', (20, 20), 128).save('small/train/Bag/aaa_small.png')"
fails_with "image smaller than the crop" 1 "small/train/Bag/aaa_small.png: random_crop: the image is 20x20 (24x24 with padding 2), smaller than the 28x28 crop" ./train --data small --epochs 1 --out s

# CIFAR-10: 5 x 16 records, the last 20 as the dev split, 3x32x32.
cat > cifar.graph <<'G'
import "cnn_bn.graph"
experiment {
  model = cnn_bn(input = [3, 32, 32], hidden = 32)
  classes = 10
  data = cifar10("cifar", dev = 20)
  train_transform = [random_crop(32, pad = 4), hflip(0.5), normalize(mean = [0.49, 0.48, 0.45], std = [0.25, 0.24, 0.26])]
  eval_transform = [normalize(mean = [0.49, 0.48, 0.45], std = [0.25, 0.24, 0.26])]
  optimizer = sgd(lr = 0.01, momentum = 0.9)
  epochs = 1
  batch = 16
}
G
check "build the CIFAR-10 trainer" "$tlc" cifar.graph -o train_cifar
check "CIFAR-10 trainer runs" sh -c "./train_cifar --out cifar_run > cifar.txt"
check "CIFAR-10 report" grep -qF "data: cifar (cifar10): train 60, val 20, test 16 images, 10 classes" cifar.txt
check "CIFAR-10 class names" grep -qF "data: classes: 0 airplane, 1 automobile," cifar.txt

# Flowers102: 24 JPEG files of several sizes, .mat labels and splits, 102 classes.
cat > flowers.graph <<'G'
import "cnn_bn.graph"
experiment {
  model = cnn_bn(classes = 102, input = [3, 32, 32], hidden = 32)
  classes = 102
  data = flowers102("flowers")
  train_transform = [resize(36), center_crop(32), hflip(0.5), normalize()]
  eval_transform = [resize(32), center_crop(32), normalize()]
  optimizer = adam(lr = 0.001)
  epochs = 1
  batch = 4
}
G
check "build the Flowers102 trainer" "$tlc" flowers.graph -o train_flowers
check "Flowers102 trainer: ldd shows only the C library (matio and HDF5 linked in)" self_contained train_flowers
check "Flowers102 trainer runs" sh -c "./train_flowers --out flowers_run > flowers.txt"
check "Flowers102 report" grep -qF "data: flowers (flowers102): train 8, val 8, test 8 images, 102 classes" flowers.txt
check "Flowers102 class names" grep -qF "data: classes: 0 pink primrose, 1 hard-leaved pocket orchid," flowers.txt
check "Flowers102 samples drawn" test -s flowers_run/samples.png
cp -r png nine && rm -r nine/*/Trouser
fails_with "a data set with other classes than the model" 1 "nine has 9 classes (Ankle boot, ...), but model 'cnn_bn' has 10 outputs" ./train --data nine --out x

check_report images
