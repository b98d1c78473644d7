#!/usr/bin/python3
"""check_data.py DUMP_DATA SCRATCH: the loaders (through dump_data) against data sets that
make_data.py writes in the real formats. Checks counts, labels, class names and pixels (PNG
and CIFAR-10 exactly; JPEG against PIL's decoding of the same file within 1 and against the
image written within a mean of 3); an ImageFolder of every PIL mode in nested folders against
torchvision's own make_dataset (files, order, labels) and PIL's convert("RGB") / convert("L")
(pixels); then each kind of bad input for its message."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

DUMP, SCRATCH = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
failed = passed = 0


def check(name, ok, detail=""):
    global failed, passed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {name} {detail}")


def make(kind, out, n=0):
    subprocess.run([sys.executable, f"{HERE}/make_data.py", kind, out, str(n)], check=True)
    with open(f"{out}/expected.json") as f:
        return json.load(f)


def dump(fmt, d, param=None):
    args = [DUMP, fmt, d] + ([str(param)] if param is not None else [])
    r = subprocess.run(args, capture_output=True, text=True)
    out = {"rc": r.returncode, "text": r.stdout + r.stderr, "classes": None, "splits": {}}
    for line in r.stdout.splitlines():
        f = line.split(" ")
        if f[0] == "classes":
            out["classes"] = line.split(" ", 2)[2].split("|") if len(f) > 2 and f[2] else []
        elif f[0] == "split":
            out["splits"][f[1]] = []
        elif f[0] in ("train", "val", "test"):
            if f[3] == "error":
                out["splits"][f[0]].append({"label": int(f[2]), "error": " ".join(f[4:])})
            else:
                w, h, c = int(f[3]), int(f[4]), int(f[5])
                px = np.frombuffer(bytes.fromhex(f[6]), np.uint8).reshape(h, w, c)
                out["splits"][f[0]].append({"label": int(f[2]), "pixels": px, "path": " ".join(f[7:])})
    return out


def exact_split(name, got, want):
    check(f"{name}: count", len(got) == len(want), f"{len(got)} vs {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        check(f"{name}[{i}]: label", g["label"] == w["label"], f"{g['label']} vs {w['label']}")
        if "file" in w:
            check(f"{name}[{i}]: file", g.get("path", "").endswith("/" + w["file"]), f"{g.get('path')} vs {w['file']}")
        want_px = bytes.fromhex(w["pixels"])
        check(f"{name}[{i}]: pixels", "pixels" in g and g["pixels"].tobytes() == want_px,
              g.get("error", "") or f"shape {g['pixels'].shape}")


def jpeg_close(name, g, source=None):
    pil = np.asarray(Image.open(g["path"]))
    pil = pil.reshape(pil.shape[0], pil.shape[1], -1)
    ok = g["pixels"].shape == pil.shape and np.abs(g["pixels"].astype(int) - pil).max() <= 1
    check(f"{name}: JPEG pixels within 1 of PIL's", ok, f"{g['pixels'].shape} vs {pil.shape}")
    if source is not None:
        err = np.abs(g["pixels"].astype(int).reshape(source.shape) - source).mean()
        check(f"{name}: JPEG close to the image written", err < 3, f"mean error {err:.2f}")


def dump_args(fmt, d, param, channels):
    """dump_data's output with image files decoded to `channels`, and its report lines by key."""
    r = subprocess.run([DUMP, fmt, d, str(param), str(channels)], capture_output=True, text=True)
    keys = {}
    for line in r.stdout.splitlines():
        f = line.split(" ", 1)
        if f[0] in ("names_from", "nested", "other", "val_from"):
            keys[f[0]] = f[1] if len(f) > 1 else ""
    return r, keys


def fails(name, got, text):
    check(name, got["rc"] == 1 and text in got["text"], f"status {got['rc']}: {got['text'][-400:]}")


shutil.rmtree(SCRATCH, ignore_errors=True)
os.makedirs(SCRATCH)
S = SCRATCH

# ImageFolder of PNG files with train/val/test folders.
exp = make("folder_png", f"{S}/png", 6)
got = dump("image_folder", f"{S}/png")
check("png: loads", got["rc"] == 0, got["text"][-300:])
check("png: classes sorted by name", got["classes"] == exp["classes"], str(got["classes"]))
for split in ("train", "val", "test"):
    exact_split(f"png {split}", got["splits"].get(split, []), exp[split])

# Every PNG colour type and depth becomes 8-bit gray or RGB.
exp = make("png_kinds", f"{S}/kinds")
got = dump("image_folder", f"{S}/kinds")
exact_split("png kinds", got["splits"].get("train", []), exp["train"])

# One folder of JPEG files, a quarter of each class held out; test is val.
exp = make("folder_jpg", f"{S}/jpg", 8)
got = dump("image_folder", f"{S}/jpg", 0.25)
tr, va, te = (got["splits"].get(s, []) for s in ("train", "val", "test"))
check("jpg: train + val is everything", len(tr) + len(va) == len(exp["all"]), f"{len(tr)} + {len(va)}")
check("jpg: 2 of 8 per class held out", len(va) == 20 and [g["label"] for g in va] == sorted(c for c in range(10) for _ in range(2)))
check("jpg: test is val", [g["path"] for g in te] == [g["path"] for g in va])
source = {w["file"]: np.frombuffer(bytes.fromhex(w["pixels"]), np.uint8).reshape(28, 28, 1) for w in exp["all"]}
for i, g in enumerate(tr + va):
    jpeg_close(f"jpg[{i}]", g, source[os.path.basename(g["path"])])
again = dump("image_folder", f"{S}/jpg", 0.25)
check("jpg: the held-out files are the same every time", [g["path"] for g in again["splits"]["val"]] == [g["path"] for g in va])

# CIFAR-10 binary batches with a dev split of 3.
exp = make("cifar10", f"{S}/cifar", 4)
cifar_classes = exp["classes"]
got = dump("cifar10", f"{S}/cifar", 3)
check("cifar: classes from batches.meta.txt", got["classes"] == exp["classes"], str(got["classes"]))
exact_split("cifar train", got["splits"].get("train", []), exp["train"][:-3])
exact_split("cifar val (dev)", got["splits"].get("val", []), exp["train"][-3:])
exact_split("cifar test", got["splits"].get("test", []), exp["test"])

# Flowers102: jpg/, imagelabels.mat (compressed v5), setid.mat (v5, double and uint16).
exp = make("flowers102", f"{S}/flowers", 12)
got = dump("flowers102", f"{S}/flowers")
check("flowers: loads", got["rc"] == 0, got["text"][-300:])
check("flowers: 102 class names", got["classes"] is not None and len(got["classes"]) == 102 and
      got["classes"][0] == "pink primrose" and got["classes"][101] == "blackberry lily")
for split in ("train", "val", "test"):
    g, w = got["splits"].get(split, []), exp[split]
    check(f"flowers {split}: count", len(g) == len(w))
    check(f"flowers {split}: labels", [x["label"] for x in g] == [x["label"] for x in w])
    check(f"flowers {split}: files", [os.path.basename(x.get("path", "")) for x in g] == [x["file"] for x in w])
    for i, x in enumerate(g):
        jpeg_close(f"flowers {split}[{i}]", x)

# torchvision's ImageFolder: nested folders in sorted(os.walk()) order, every image converted
# to RGB by PIL (gray, gray+alpha, palette with transparency, RGBA, CMYK JPEG, gray JPEG).
from torchvision.datasets.folder import make_dataset, find_classes
subprocess.run([sys.executable, f"{HERE}/make_data.py", "mixed", f"{S}/mixed"], check=True)
for split in ("train", "test"):
    root = f"{S}/mixed/{split}"
    classes, to_idx = find_classes(root)
    want = [(p, c) for p, c in make_dataset(root, to_idx, extensions=(".jpg", ".jpeg", ".png"))]
    for channels in (3, 1):
        r, keys = dump_args("image_folder", f"{S}/mixed", 0, channels)
        samples = [line.split(" ") for line in r.stdout.splitlines() if line.startswith(split + " ")]
        check(f"mixed {split}: torchvision's files, order and labels",
              [(" ".join(f[7:]), int(f[2])) for f in samples if f[3] != "error"] == want,
              f"\n  got  {[(' '.join(f[7:]), f[2]) for f in samples]}\n  want {want}")
        for f in samples:
            if f[3] == "error":
                check(f"mixed {split}[{f[1]}] ({channels} channels): decodes", False, " ".join(f[4:]))
                continue
            path = " ".join(f[7:])
            w, h, c = int(f[3]), int(f[4]), int(f[5])
            px = np.frombuffer(bytes.fromhex(f[6]), np.uint8).reshape(h, w, c).astype(int)
            pil = Image.open(path).convert("RGB")
            pil = np.asarray(pil if channels == 3 else pil.convert("L")).reshape(h, w, -1).astype(int)
            exact = path.lower().endswith(".png")
            diff = np.abs(px - pil).max() if px.shape == pil.shape else 999
            check(f"mixed {path} ({channels} channels): PIL's convert{'' if exact else ' within 1'}",
                  diff <= (0 if exact else 1), f"{px.shape} vs {pil.shape}, max difference {diff}")
check("mixed: images in sub-folders counted", keys.get("nested") == "10", str(keys))
check("mixed: .bmp and .tif files counted as not decoded", keys.get("other") == "4 .bmp, .tif", str(keys))
check("mixed: class names from the folder names", keys.get("names_from") == f"the folder names in {S}/mixed/train")
os.symlink("..", f"{S}/mixed/train/cls_b/deep/loop")   # a link back up: walked once, not for ever
r, keys = dump_args("image_folder", f"{S}/mixed", 0, 3)
check("mixed: a link to a parent folder is not followed twice", r.returncode == 0 and
      sum(1 for line in r.stdout.splitlines() if line.startswith("train ")) == 15, r.stdout[-300:] + r.stderr)

# Bad input: each a clear message naming the file.
bad = f"{S}/bad"
shutil.copytree(f"{S}/png", bad)
for split in ("train", "val", "test"):
    os.makedirs(f"{bad}/{split}/Empty")
fails("empty class folder", dump("image_folder", bad), f"{bad}/train/Empty: an empty class folder")
shutil.rmtree(bad)
shutil.copytree(f"{S}/png", bad)
shutil.copytree(f"{bad}/val/Bag", f"{bad}/val/Extra")
fails("class sets differ", dump("image_folder", bad), f"{bad}/val has class 'Extra' but {bad}/train has no folder")
shutil.rmtree(f"{bad}/val/Extra")
shutil.rmtree(f"{bad}/test/Coat")
fails("class missing from a split", dump("image_folder", bad), f"{bad}/train has class 'Coat' but {bad}/test has no")
fails("no such folder", dump("image_folder", f"{S}/nowhere"), f"{S}/nowhere: not a folder")

# Broken files are listed; decoding names the file and what is wrong.
shutil.rmtree(bad)
shutil.copytree(f"{S}/jpg", bad)
files = sorted(os.listdir(f"{bad}/Bag"))
with open(f"{bad}/Bag/{files[0]}", "rb") as f:
    data = f.read()
with open(f"{bad}/Bag/{files[0]}", "wb") as f:
    f.write(data[: len(data) // 2])
with open(f"{bad}/Bag/{files[1]}", "wb") as f:
    f.write(b"this is not an image")
os.remove(f"{bad}/Bag/{files[2]}")
os.symlink("/nonexistent/file.jpg", f"{bad}/Bag/{files[2]}")
got = dump("image_folder", bad, 0.25)
msgs = [x["error"] for s in ("train", "val") for x in got["splits"].get(s, []) if "error" in x]
check("truncated JPEG named", any(f"Bag/{files[0]}: not a readable JPEG: the file is truncated" in m for m in msgs), str(msgs))
check("garbage named", any(f"Bag/{files[1]}: neither a JPEG nor a PNG" in m for m in msgs), str(msgs))
check("unreadable file named", any(f"Bag/{files[2]}: cannot open: No such file" in m for m in msgs), str(msgs))

shutil.rmtree(bad)
shutil.copytree(f"{S}/cifar", bad)
with open(f"{bad}/data_batch_3.bin", "r+b") as f:
    f.truncate(3073 * 4 - 100)
fails("CIFAR file of the wrong size", dump("cifar10", bad), f"{bad}/data_batch_3.bin: 12192 bytes is not a whole number")
os.remove(f"{bad}/data_batch_3.bin")
fails("CIFAR file missing", dump("cifar10", bad), f"{bad}/data_batch_3.bin: cannot open")
shutil.copy(f"{S}/cifar/data_batch_3.bin", f"{bad}/data_batch_3.bin")
with open(f"{bad}/test_batch.bin", "r+b") as f:
    f.seek(3073)
    f.write(bytes([10]))
fails("CIFAR label out of range", dump("cifar10", bad), f"{bad}/test_batch.bin: record 1 has label 10, but there are 10 classes")
fails("CIFAR dev too large", dump("cifar10", f"{S}/cifar", 20), "a dev split of 20 leaves none")
# A class name longer than any line buffer stays one class; where names come from is said.
long_name = "a very long class name " * 13
with open(f"{bad}/batches.meta.txt", "w") as f:
    f.write("".join(c + "\n" for c in cifar_classes[:9]) + long_name + "\n\n")
with open(f"{bad}/test_batch.bin", "r+b") as f:
    f.seek(3073)
    f.write(bytes([9]))
got = dump("cifar10", bad, 3)
check("CIFAR: a 299-character class name is one class", got["rc"] == 0 and got["classes"] == cifar_classes[:9] + [long_name],
      str(got["classes"])[-200:] + got["text"][-200:])
r, keys = dump_args("cifar10", bad, 3, 0)
check("CIFAR: class names from batches.meta.txt", keys.get("names_from") == f"{bad}/batches.meta.txt", str(keys))
os.remove(f"{bad}/batches.meta.txt")
r, keys = dump_args("cifar10", bad, 3, 0)
check("CIFAR: class names from the published list", keys.get("names_from", "").startswith("CIFAR-10's published list"), str(keys))

shutil.rmtree(bad)
shutil.copytree(f"{S}/flowers", bad)
os.remove(f"{bad}/setid.mat")
fails("Flowers102 setid.mat missing", dump("flowers102", bad), f"{bad}/setid.mat: cannot open as a MAT file")
import scipy.io
scipy.io.savemat(f"{bad}/setid.mat", {"trnid": np.array([[1.0, 2.0]]), "valid": np.array([[3.0]])})
fails("Flowers102 variable missing", dump("flowers102", bad), f"{bad}/setid.mat: has no variable 'tstid'")
scipy.io.savemat(f"{bad}/setid.mat", {"trnid": np.array([[1.0, 13.0]]), "valid": np.array([[3.0]]), "tstid": np.array([[4.0]])})
fails("Flowers102 id out of range", dump("flowers102", bad), f"{bad}/setid.mat: trnid[1] is 13; expected a whole number from 1 to 12")
scipy.io.savemat(f"{bad}/imagelabels.mat", {"labels": np.array([[0.0, 2.5]])})
fails("Flowers102 label out of range", dump("flowers102", bad), f"{bad}/imagelabels.mat: labels[0] is 0")
# Compressed, a variable can claim far more than its file holds, and matio allocates the claim
# before reading: more values than the limit are refused first (docs/fuzzing.md).
scipy.io.savemat(f"{bad}/imagelabels.mat", {"labels": np.ones((1, 1000001))}, do_compression=True)
fails("Flowers102 too many labels", dump("flowers102", bad),
      f"{bad}/imagelabels.mat: variable 'labels' claims 1000001 values; Flowers102 has 8,189 images")
with open(f"{bad}/imagelabels.mat", "wb") as f:
    f.write(b"MATLAB 5.0 MAT-file" + bytes(200))
fails("Flowers102 corrupt .mat", dump("flowers102", bad), f"{bad}/imagelabels.mat")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
