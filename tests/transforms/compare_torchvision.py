#!/usr/bin/env python3
"""compare_torchvision.py TOOL IMAGES_DIR SCRATCH: libtlcrt's transforms against torchvision
0.14 on PIL images (the oracle), on the committed test images.

Each case runs transform_tool (our C code, fixed choices) and the torchvision/PIL call it
mirrors on the same image, and compares pixel by pixel. The tolerances, stated and asserted:
  - eval pipeline (Resize 256, CenterCrop 224, ToTensor, Normalize with ImageNet mean/std):
    max |difference| of the normalised floats <= 1e-6, i.e. the same 8-bit pixels (one 8-bit
    level is 1/255/std >= 0.0171 here);
  - every 8-bit transform: no pixel differs by more than one level, and at most 0.1% of values
    differ at all (0 is what we measure; the slack is for the float steps of colour jitter on
    another libm).
Prints one line per case with the measured maximum difference and the fraction of values that
differ, then "N passed, M failed"; exits 1 on any failure.
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

tool, images_dir, scratch = sys.argv[1:4]
os.makedirs(scratch, exist_ok=True)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
EVAL_TOL = 1e-6
LEVEL_TOL, FRACTION_TOL = 1, 0.001
passed = failed = 0


def report(name, ok, detail):
    global passed, failed
    passed += ok
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")


def run_tool(src_path, out_path, *args):
    r = subprocess.run([tool, src_path, out_path, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"transform_tool {' '.join(map(str, args))}: {r.stderr.strip()}")


def compare_pixels(name, src_path, want, *args):
    out = os.path.join(scratch, "out.pnm")
    try:
        run_tool(src_path, out, *args)
    except RuntimeError as e:
        return report(name, False, str(e))
    got = np.asarray(Image.open(out)).astype(np.int32)
    want = np.asarray(want).astype(np.int32)
    if got.shape != want.shape:
        return report(name, False, f"shape {got.shape}, torchvision gives {want.shape}")
    diff = np.abs(got - want)
    fraction = float((diff > 0).mean())
    ok = diff.max() <= LEVEL_TOL and fraction <= FRACTION_TOL
    report(name, ok, f"{want.shape}, max |diff| {diff.max()} levels, {fraction:.4%} of values differ")


def compare_eval(name, src_path, img):
    out = os.path.join(scratch, "eval.bin")
    c = len(img.getbands())
    pipeline = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN[:c], STD[:c])])
    want = pipeline(img).numpy()
    try:
        run_tool(src_path, out, "eval", 256, 224)
    except RuntimeError as e:
        return report(name, False, str(e))
    got = np.fromfile(out, dtype=np.float32)
    if got.size != want.size:
        return report(name, False, f"{got.size} floats, torchvision gives {want.size}")
    diff = np.abs(got.reshape(want.shape) - want)
    level = 1.0 / 255 / max(STD)
    far = float((diff > level * 1.01).mean())
    ok = float(diff.max()) <= EVAL_TOL
    report(name, ok, f"{want.shape}, max |diff| {diff.max():.2e} (one 8-bit level is {level:.4f}), "
           f"{far:.4%} of values differ by more than one level")


def cases(stem, img, src):
    w, h = img.size
    compare_eval(f"{stem} eval resize 256 + center crop 224 + normalize", src, img)
    for size in [(w // 3, h // 5), (w * 2 + 1, h + 7), (w - 1, h // 2), (37, 29)]:
        compare_pixels(f"{stem} resize to {size[0]}x{size[1]}", src,
                       img.resize(size, Image.BILINEAR), "resize", *size)
    for s in [min(w, h) // 2, min(w, h) * 3]:
        compare_pixels(f"{stem} Resize({s})", src, F.resize(img, s), "resize_short", s)
    for hw in [[h // 2 + 1, w // 3], [224, 224]]:
        compare_pixels(f"{stem} Resize({hw})", src, F.resize(img, hw), "resize_hw", *hw)
    for s in [min(w, h) - 1, min(w, h) // 2]:
        compare_pixels(f"{stem} CenterCrop({s})", src, F.center_crop(img, s), "center_crop", s)
    pad, s = 4, min(w, h) // 2
    for top, left in [(0, 0), (3, h // 3), (h + 2 * pad - s, w + 2 * pad - s)]:
        left = min(left, w + 2 * pad - s)
        want = F.crop(F.pad(img, pad, fill=0), top, left, s, s)
        compare_pixels(f"{stem} RandomCrop({s}, padding={pad}) at ({top}, {left})", src, want,
                       "random_crop", s, pad, top, left)
    for top, left, ch, cw in [(1, 2, h - 5, w - 9), (h // 4, w // 5, h // 3, w // 2), (0, 0, h, w)]:
        want = F.resized_crop(img, top, left, ch, cw, [32, 32])
        compare_pixels(f"{stem} RandomResizedCrop(32) box {cw}x{ch} at ({top}, {left})", src, want,
                       "random_resized_crop", 32, top, left, ch, cw)
    compare_pixels(f"{stem} hflip", src, F.hflip(img), "hflip")
    compare_pixels(f"{stem} vflip", src, F.vflip(img), "vflip")
    for angle in [17.5, -33.25, 90.0, 180.0, -0.3, 359.0]:
        compare_pixels(f"{stem} rotate {angle}", src, F.rotate(img, angle, fill=0), "rotate", angle)
    for f in [0.0, 0.55, 1.0, 1.45]:
        compare_pixels(f"{stem} brightness {f}", src, F.adjust_brightness(img, f), "brightness", f)
        compare_pixels(f"{stem} contrast {f}", src, F.adjust_contrast(img, f), "contrast", f)
        compare_pixels(f"{stem} saturation {f}", src, F.adjust_saturation(img, f), "saturation", f)
    for hue in [-0.5, -0.23, 0.0, 0.1, 0.37, 0.5]:
        compare_pixels(f"{stem} hue {hue}", src, F.adjust_hue(img, hue), "hue", hue)
    b, c, s_, hue = 1.3, 0.7, 1.6, -0.12
    order = [3, 1, 0, 2]
    want = img
    for i in order:
        want = [lambda x: F.adjust_brightness(x, b), lambda x: F.adjust_contrast(x, c),
                lambda x: F.adjust_saturation(x, s_), lambda x: F.adjust_hue(x, hue)][i](want)
    compare_pixels(f"{stem} jitter order {order}", src, want, "jitter", "".join(map(str, order)),
                   b, c, s_, hue)
    if img.mode == "L":
        compare_pixels(f"{stem} grayscale to rgb", src, img.convert("RGB"), "grayscale_to_rgb")


def main():
    torch.set_num_threads(1)
    names = sorted(n for n in os.listdir(images_dir) if n.endswith(".png"))
    if not names:
        sys.exit(f"no test images in {images_dir}")
    for name in names:
        img = Image.open(os.path.join(images_dir, name))
        img.load()
        stem = name[:-4]
        src = os.path.join(scratch, stem + (".pgm" if img.mode == "L" else ".ppm"))
        img.save(src)
        cases(stem, img, src)
    square = Image.open(os.path.join(images_dir, names[0])).crop((10, 20, 110, 120))
    src = os.path.join(scratch, "square.ppm")
    square.save(src)
    for angle in [90.0, 270.0, -90.0]:
        compare_pixels(f"square rotate {angle}", src, F.rotate(square, angle, fill=0), "rotate", angle)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
