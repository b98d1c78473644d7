#!/usr/bin/env python3
# make_images.py: writes the small test images that the transform tests compare with
# torchvision/PIL. Run once; the PNGs are committed. Deterministic (numpy's PCG64, seed 6).
# Each image mixes what resampling must get right: smooth gradients, hard edges (a disc, a
# checkerboard), fine stripes that alias without antialiasing, and a patch of noise.
import numpy as np
from PIL import Image

rng = np.random.default_rng(6)


def picture(width, height, channels):
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)
    g = 255 * x / width * 0.6 + 255 * y / height * 0.4
    checker = ((x // 9 + y // 9) % 2) * 180 + 30
    stripes = 127 + 127 * np.sin(x * 1.3 + y * 0.4)
    b = np.where(y < height / 2, checker, stripes)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.2) ** 2
    r, g, b = (np.where(disc, v, c) for v, c in ((250, r), (40, g), (90, b)))
    img = np.stack([r, g, b], axis=-1)
    ph, pw = height // 6, width // 6
    img[-ph - 4:-4, 4:4 + pw] = rng.integers(0, 256, size=(ph, pw, 3))
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if channels == 1:
        return Image.fromarray(img[:, :, 1], "L")
    return Image.fromarray(img, "RGB")


for name, w, h, c in [("rgb_300x400", 300, 400, 3), ("rgb_500x333", 500, 333, 3),
                      ("gray_97x61", 97, 61, 1)]:
    picture(w, h, c).save(f"{name}.png", optimize=True)
