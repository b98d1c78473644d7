#!/usr/bin/env bash
# examples.sh TLC SCRATCH: examples/ants_bees_rn18.graph and examples/cifar10_rn18.graph end to
# end at reduced size (--set), on data written by tests/data/make_data.py in the real layouts
# (hymenoptera_data's train/{ants,bees} and val/{ants,bees} JPEG folders; CIFAR-10's binary
# batches) where the examples expect it. ants_bees starts from a torchvision resnet18 with
# seeded random weights saved as safetensors by tests/weights/weights.py: the 1000-class head
# must be re-initialised (said so) and one epoch must train. cifar10 trains two epochs keeping
# best.ckpt on its dev split, then predicts one test image written as PNG, with CIFAR-10's class
# names and the probabilities of the softmax of the logits --eval writes for that image.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
mkdir -p data weights
$py "$root/tests/data/make_data.py" hymenoptera data/hymenoptera_data 16 &&
  $py "$root/tests/data/make_data.py" cifar10 data/cifar-10-batches-bin 16 &&
  $py "$root/tests/weights/weights.py" make resnet18 1000 weights/resnet18.safetensors 3 || exit 1

# Ants and bees: 64x64 images, batch 8, one epoch, on the example's own data path (its weights
# path is relative to the .graph, so the file comes through --weights).
check "build ants_bees_rn18" "$tlc" "$root/examples/ants_bees_rn18.graph" --set image=64 --set batch=8 \
  --set epochs=1 -o train_ants_bees
check "ants_bees: trains" sh -c "./train_ants_bees --weights weights/resnet18.safetensors --out ab > ab.txt"
cat ab.txt
check "ants_bees: splits and classes" grep -qF "data: data/hymenoptera_data (image_folder): train 32, val 16, test 16 images, 2 classes; the model takes 3x64x64" ab.txt
check "ants_bees: class names" grep -qF "data: classes: 0 ants, 1 bees" ab.txt
check "ants_bees: the head is re-initialised" grep -qF "weights: weights/resnet18.safetensors: the classification head is re-initialised, its class count differs: fc.weight [1000, 512] in the file, [2, 512] here" ab.txt
check "ants_bees: the rest loaded" grep -qF "weights: weights/resnet18.safetensors: 120 tensors loaded" ab.txt
check "ants_bees: one epoch, a result" sh -c "grep -q '^epoch 1/1 ' ab.txt && grep -q '^result: test_acc=' ab.txt"
check "ants_bees: augmented samples drawn" test -s ab/samples.png

# CIFAR-10 from scratch: 5 x 16 training records, the last 16 the dev split, batch 16, 2 epochs,
# lr 0.01 (0.1 for 8 steps sends the running statistics far off, and every probability to 0 or 1).
check "build cifar10_rn18" "$tlc" "$root/examples/cifar10_rn18.graph" --set batch=16 --set epochs=2 \
  --set 'data=cifar10("data/cifar-10-batches-bin", dev = 16)' --set 'optimizer=sgd(lr = 0.01, momentum = 0.9)' -o train_cifar
check "cifar10: trains" sh -c "./train_cifar --out c10 > c10.txt"
cat c10.txt
check "cifar10: splits" grep -qF "data: data/cifar-10-batches-bin (cifar10): train 64, val 16, test 16 images, 10 classes" c10.txt
check "cifar10: two epochs on dev, best kept" sh -c "test \$(wc -l < c10/metrics.jsonl) -eq 2 && test -s c10/best.ckpt"
# The first test record as a PNG, from the published byte layout (label, then R, G, B planes).
check "cifar10: test image as PNG" $py -c "
import numpy as np; from PIL import Image
r = np.fromfile('data/cifar-10-batches-bin/test_batch.bin', np.uint8, 3073)
Image.fromarray(r[1:].reshape(3, 32, 32).transpose(1, 2, 0)).save('test0.png')
"
check "cifar10: --eval best.ckpt --predict" sh -c "./train_cifar --eval c10/best.ckpt --predict test0.png > p.txt"
check "cifar10: --eval --logits" sh -c "./train_cifar --eval c10/best.ckpt --logits test.npy > /dev/null"
cat p.txt
check "cifar10: the prediction, named, is the softmax of the logits" $py -c "
import re; import numpy as np
names = open('data/cifar-10-batches-bin/batches.meta.txt').read().split()
lines = [l for l in open('p.txt') if l.startswith('predict: ')]
assert len(lines) == 1 and lines[0].startswith('predict: test0.png -> '), lines
top = re.findall(r' ?(.+?) \((\d+)\) ([01]\.\d{6})(?:,|$)', lines[0].split(' -> ')[1].rstrip())
x = np.load('test.npy')[0].astype(np.float64); p = np.exp(x - x.max()); p /= p.sum()
want = np.argsort(-p, kind='stable')[:5]
assert [int(k) for _, k, _ in top] == list(want), (top, want)
for name, k, prob in top:
    assert name == names[int(k)] and abs(float(prob) - p[int(k)]) < 2e-6, (name, k, prob, p)
"

check_report examples
