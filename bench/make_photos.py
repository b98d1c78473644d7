#!/usr/bin/python3
"""make_photos.py OUT N: N JPEG files of photo size (500x375 and 375x500, RGB, quality 90) in
OUT/train/<class>/ (and the first of each class again in OUT/val/<class>/, which the
ImageFolder layout wants), made from Fashion-MNIST images (enlarged, tinted, with noise so that they
do not compress like flat drawings), for the loader benchmark."""
import gzip
import os
import sys

import numpy as np
from PIL import Image

out, n = sys.argv[1], int(sys.argv[2])
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
rng = np.random.default_rng(0)
for k in range(n):
    size = (500, 375) if k % 2 == 0 else (375, 500)
    g = np.asarray(Image.fromarray(images[k]).resize(size, Image.BILINEAR)).astype(np.float32)
    tint = rng.uniform(0.5, 1.0, 3)
    rgb = g[:, :, None] * tint[None, None, :] + rng.normal(0, 12, (size[1], size[0], 3))
    d = f"{out}/train/class{k % 4}"
    os.makedirs(d, exist_ok=True)
    photo = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    photo.save(f"{d}/{k:05d}.jpg", quality=90)
    if k < 4:
        os.makedirs(f"{out}/val/class{k}", exist_ok=True)
        photo.save(f"{out}/val/class{k}/{k:05d}.jpg", quality=90)
