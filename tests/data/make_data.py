#!/usr/bin/python3
"""make_data.py KIND OUT [N]: writes a small data set in a real on-disk format, made from
Fashion-MNIST images, for the loader tests. The writers are the formats' usual tools (PIL for
JPEG and PNG, scipy.io.savemat for MAT v5) or the published byte layout (CIFAR-10), never tlc.

KIND is one of:
  folder_png OUT N   OUT/{train,val,test}/<class>/*.png, N training images per class
  folder_jpg OUT N   OUT/<class>/*.jpg (one folder, split by val_split), N per class
  png_kinds  OUT     OUT/{train,val}/<class>/*.png in every PNG colour type and depth
  hymenoptera OUT N  OUT/{train,val}/{ants,bees}/*.jpg (the hymenoptera_data layout): RGB JPEGs
                     of varied sizes, N training images per class (Sandal as ants, Bag as bees)
  hotdog     OUT N   OUT/{train,test}/{hotdog,not-hotdog}/*.jpg: the same, without a validation split
  cifar10    OUT N   OUT/data_batch_{1..5}.bin (N records each), test_batch.bin, batches.meta.txt
  flowers102 OUT N   OUT/jpg/image_%05d.jpg (N images), imagelabels.mat, setid.mat
  mixed      OUT     OUT/{train,test}/<class>/...: images of every PIL mode torchvision's loader
                     converts (L, LA, P with transparency, RGBA, CMYK and gray JPEG), in nested
                     folders whose sorted(os.walk()) order differs from a depth-first walk, beside
                     .bmp/.tif files torchvision reads and tlc does not, and other files; no
                     expected.json (check_data.py asks torchvision and PIL directly)
Each writes OUT/expected.json: for every split, the samples as (label, the source image's
index) and, where the pixels are known exactly, the HWC bytes the loader must produce.
"""
import gzip
import json
import os
import sys

import numpy as np
from PIL import Image

FASHION = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def fashion(split):
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(f"{FASHION}/{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(f"{FASHION}/{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def per_class(images, labels, n, skip=0):
    """The first n images of each class after `skip` of them, as (class, image) pairs."""
    out = []
    for c in range(10):
        idx = np.nonzero(labels == c)[0][skip:skip + n]
        out += [(c, images[i]) for i in idx]
    return out


def write_folder(root, samples, ext, quality=95):
    names = []
    for k, (c, img) in enumerate(samples):
        d = os.path.join(root, CLASSES[c])
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"img{k:05d}.{ext}")
        if ext == "png":
            Image.fromarray(img).save(path)
        else:
            Image.fromarray(img).save(path, quality=quality)
        names.append((CLASSES[c], os.path.basename(path), c, img))
    return names


def sorted_split(names):
    """The order torchvision's ImageFolder (and tlc) list a split in: class, then file name."""
    names = sorted(names, key=lambda t: (t[0].encode(), t[1].encode()))
    order = sorted(CLASSES, key=str.encode)
    return [{"label": order.index(cls), "file": f, "pixels": img.tobytes().hex()} for (cls, f, _, img) in names]


def folder_png(out, n):
    train_i, train_l = fashion("train")
    test_i, test_l = fashion("test")
    exp = {"classes": sorted(CLASSES, key=str.encode)}
    exp["train"] = sorted_split(write_folder(f"{out}/train", per_class(train_i, train_l, n), "png"))
    exp["val"] = sorted_split(write_folder(f"{out}/val", per_class(train_i, train_l, max(n // 5, 2), skip=n), "png"))
    exp["test"] = sorted_split(write_folder(f"{out}/test", per_class(test_i, test_l, max(n // 5, 2)), "png"))
    return exp


def folder_jpg(out, n):
    train_i, train_l = fashion("train")
    names = write_folder(out, per_class(train_i, train_l, n), "jpg")
    return {"classes": sorted(CLASSES, key=str.encode), "all": sorted_split(names)}


def png_kinds(out):
    """One image per PNG colour type and depth; the expected bytes are computed here."""
    train_i, _ = fashion("train")
    g = train_i[0]
    rgb = np.stack([g, 255 - g, g // 2], axis=-1)
    cases = []
    # 8-bit gray and RGB: the bytes themselves.
    cases.append(("gray8", Image.fromarray(g), g))
    cases.append(("rgb8", Image.fromarray(rgb), rgb))
    # Palette: 16 colours; the loader expands it to RGB.
    pal_img = Image.fromarray(rgb).quantize(16)
    cases.append(("palette", pal_img, np.asarray(pal_img.convert("RGB"))))
    # 16-bit gray: v * 257 reduces back to v.
    g16 = (g.astype(np.uint16) * 257)
    cases.append(("gray16", Image.fromarray(g16), g))
    # RGBA, opaque: alpha is dropped.
    rgba = np.concatenate([rgb, np.full((28, 28, 1), 255, np.uint8)], axis=-1)
    cases.append(("rgba_opaque", Image.fromarray(rgba, "RGBA"), rgb))
    # Gray + alpha, opaque.
    la = Image.fromarray(np.stack([g, np.full_like(g, 255)], axis=-1), "LA")
    cases.append(("gray_alpha", la, g))
    exp = {"classes": ["kinds"], "train": [], "val": []}
    for name, img, want in cases:
        for split in ("train", "val"):
            d = f"{out}/{split}/kinds"
            os.makedirs(d, exist_ok=True)
            img.save(f"{d}/{name}.png")
    for split in ("train", "val"):
        exp[split] = [{"label": 0, "file": f"{name}.png", "pixels": np.ascontiguousarray(want).tobytes().hex()}
                      for name, _, want in sorted(cases, key=lambda c: c[0] + ".png")]
    exp["test"] = exp["val"]
    return exp


def hotdog(out, n):
    """The hot dog layout: train/ and test/ only, so no validation split."""
    return hymenoptera(out, n, (("hotdog", 9), ("not-hotdog", 0)), held_out="test")


def hymenoptera(out, n, classes=(("ants", 5), ("bees", 8)), held_out="val"):
    """Two classes of RGB photographs of varied sizes, as the real set has; no expected pixels
    (JPEG is lossy), only the files in ImageFolder's order."""
    train_i, train_l = fashion("train")
    exp = {"classes": [cls for cls, _ in classes]}
    for split, count, skip in (("train", n, 0), (held_out, max(n // 2, 2), n)):
        names = []
        for label, (cls, source) in enumerate(classes):
            d = f"{out}/{split}/{cls}"
            os.makedirs(d, exist_ok=True)
            for k, i in enumerate(np.nonzero(train_l == source)[0][skip:skip + count]):
                g = train_i[i]
                img = Image.fromarray(np.stack([g, g // 2 + 40, 255 - g], axis=-1))
                img = img.resize((72 + (k % 3) * 12, 64 + (k % 2) * 16), Image.BILINEAR)
                name = f"{cls}{k:04d}.jpg"
                img.save(f"{d}/{name}", quality=90)
                names.append({"label": label, "file": name})
        exp[split] = names
    if held_out == "val":   # the tutorial's layout has no test/: ImageFolder tests on val/
        exp["test"] = exp["val"]
    return exp


def cifar_record(label, img):
    """The published layout: a label byte, then the red, green and blue planes."""
    return bytes([label]) + img[:, :, 0].tobytes() + img[:, :, 1].tobytes() + img[:, :, 2].tobytes()


def cifar_image(g, k):
    padded = np.zeros((32, 32), np.uint8)
    padded[2:30, 2:30] = g
    return np.stack([padded, np.roll(padded, k % 7, axis=1), 255 - padded], axis=-1)


def cifar10(out, n):
    os.makedirs(out, exist_ok=True)
    train_i, train_l = fashion("train")
    test_i, test_l = fashion("test")
    exp = {"classes": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
           "train": [], "test": []}
    with open(f"{out}/batches.meta.txt", "w") as f:
        f.write("".join(c + "\n" for c in exp["classes"]) + "\n")
    k = 0
    for b in range(1, 6):
        with open(f"{out}/data_batch_{b}.bin", "wb") as f:
            for _ in range(n):
                img = cifar_image(train_i[k], k)
                f.write(cifar_record(int(train_l[k]), img))
                exp["train"].append({"label": int(train_l[k]), "pixels": img.tobytes().hex()})
                k += 1
    with open(f"{out}/test_batch.bin", "wb") as f:
        for k in range(n):
            img = cifar_image(test_i[k], k)
            f.write(cifar_record(int(test_l[k]), img))
            exp["test"].append({"label": int(test_l[k]), "pixels": img.tobytes().hex()})
    return exp


def flowers102(out, n):
    import scipy.io
    os.makedirs(f"{out}/jpg", exist_ok=True)
    train_i, train_l = fashion("train")
    labels = np.zeros(n, np.float64)
    for k in range(n):
        g = train_i[k]
        # Sizes vary as in the real set; colour from the gray image.
        img = np.stack([g, g // 2, 255 - g], axis=-1)
        img = np.asarray(Image.fromarray(img).resize((28 + (k % 3) * 6, 28 + (k % 2) * 10)))
        Image.fromarray(img).save(f"{out}/jpg/image_{k + 1:05d}.jpg", quality=95)
        labels[k] = 1 + int(train_l[k]) * 10 + k % 10  # spread over 1..100
    # MATLAB writes these as 1xN doubles; the labels file compressed, setid not (both occur).
    scipy.io.savemat(f"{out}/imagelabels.mat", {"labels": labels.reshape(1, -1)}, do_compression=True)
    ids = np.arange(1, n + 1)
    trn, val, tst = ids[0::3], ids[1::3], ids[2::3]
    scipy.io.savemat(f"{out}/setid.mat", {"trnid": trn.reshape(1, -1).astype(np.float64),
                                          "valid": val.reshape(1, -1).astype(np.uint16),
                                          "tstid": tst.reshape(1, -1).astype(np.float64)})
    exp = {"classes": None}
    for split, part in (("train", trn), ("val", val), ("test", tst)):
        exp[split] = [{"label": int(labels[i - 1]) - 1, "file": f"image_{i:05d}.jpg"} for i in part]
    return exp


def mixed(out, _):
    """Every conversion torchvision's pil_loader (convert("RGB")) makes, in nested folders."""
    train_i, _ = fashion("train")
    g = [train_i[k] for k in range(40)]
    rgb = lambda k: np.stack([g[k], 255 - g[k], g[(k + 1) % 40] // 2 + 60], axis=-1)
    alpha = lambda k: (np.arange(28 * 28, dtype=np.uint8).reshape(28, 28) * 3 + k)  # partly transparent
    def save(path, img, **kw):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        img.save(path, **kw)
    for split, base in (("train", 0), ("test", 20)):
        a, b = f"{out}/{split}/cls_a", f"{out}/{split}/cls_b"
        save(f"{a}/gray.png", Image.fromarray(g[base]))
        save(f"{a}/gray_alpha.png", Image.fromarray(np.stack([g[base + 1], alpha(1)], axis=-1), "LA"))
        pal = Image.fromarray(rgb(base + 2)).quantize(24)
        save(f"{a}/palette.png", pal, transparency=3)
        save(f"{a}/rgba.png", Image.fromarray(np.concatenate([rgb(base + 3), alpha(3)[..., None]], axis=-1), "RGBA"))
        save(f"{a}/cmyk.jpg", Image.fromarray(rgb(base + 4)).convert("CMYK"), quality=95)
        save(f"{a}/grayj.JPG", Image.fromarray(g[base + 5]), quality=95)
        save(f"{a}/rgb.png", Image.fromarray(rgb(base + 6)))
        # Nested: sorted(os.walk()) visits cls_a/sub, cls_a/sub.d, then cls_a/sub/deeper.
        save(f"{a}/sub/x.png", Image.fromarray(rgb(base + 7)))
        save(f"{a}/sub/deeper/z.png", Image.fromarray(rgb(base + 8)))
        save(f"{a}/sub.d/y.jpeg", Image.fromarray(rgb(base + 9)), quality=95)
        save(f"{a}/sub/deeper/more/w.png", Image.fromarray(g[base + 10]))
        # Read by torchvision, not by tlc; and files nobody reads.
        save(f"{a}/other.bmp", Image.fromarray(rgb(base + 11)))
        save(f"{a}/sub/other.TIF", Image.fromarray(rgb(base + 12)))
        with open(f"{a}/notes.txt", "w") as f:
            f.write("not an image\n")
        for k in range(3):
            save(f"{b}/img{k}.png", Image.fromarray(rgb(base + 13 + k)))
        save(f"{b}/deep/er/est/img.png", Image.fromarray(rgb(base + 16)))
    return None


def main():
    kind, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    exp = {"folder_png": folder_png, "folder_jpg": folder_jpg, "cifar10": cifar10, "flowers102": flowers102,
           "hymenoptera": hymenoptera, "hotdog": hotdog, "mixed": mixed,
           "png_kinds": lambda o, _: png_kinds(o)}[kind](out, n)
    if exp is not None:
        with open(f"{out}/expected.json", "w") as f:
            json.dump(exp, f)


if __name__ == "__main__":
    main()
