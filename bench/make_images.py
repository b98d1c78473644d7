#!/usr/bin/python3
"""make_images.py OUT SIZE N [CLASSES]: N PNG images of SIZE x SIZE (RGB) in
OUT/train/class<k>/ and the first of each class again in OUT/val/class<k>/, for the CPU
training benchmarks (cpu_models.sh): Fashion-MNIST images enlarged and tinted, with noise.
What the pixels are does not change a training step's speed; they are real images so that
the losses of both trainers look like training."""
import gzip
import os
import sys

import numpy as np
from PIL import Image

out, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
classes = int(sys.argv[4]) if len(sys.argv) > 4 else 10
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
with gzip.open("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)
rng = np.random.default_rng(0)
seen = set()
for k in range(n):
    g = np.asarray(Image.fromarray(images[k]).resize((size, size), Image.BILINEAR)).astype(np.float32)
    rgb = g[:, :, None] * rng.uniform(0.5, 1.0, 3)[None, None, :] + rng.normal(0, 8, (size, size, 3))
    photo = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    c = int(labels[k]) % classes
    for split in ["train"] + (["val"] if c not in seen else []):
        d = f"{out}/{split}/class{c}"
        os.makedirs(d, exist_ok=True)
        photo.save(f"{d}/{k:05d}.png")
    seen.add(c)
