"""The weights round trip against torchvision (tests/weights/weights.sh runs it).

safetensors is written and read here with struct, json and numpy (Debian has no safetensors
package for Python); the layout is the format's: an 8-byte little-endian header length, the
JSON header, the data.

  weights.py make MODEL CLASSES OUT [CHANNELS]   torchvision model, seeded random weights and
                                                 batchnorm statistics, saved as safetensors
  weights.py same MODEL IN EXPORTED              every tensor but the head bit-identical
  weights.py logits EXPORTED LOGITS N            torchvision's logits on the first N test images
                                                 against tlc's
  weights.py extra IN OUT                        IN with one more tensor, "extra.weight"
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch
import torchvision

DTYPES = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}
NUMPY = {"F32": np.float32, "I64": np.int64, "F16": np.float16, "F64": np.float64}
MEAN, STD = 0.286, 0.353   # weights.graph's normalize
HEADS = {"resnet18": "fc.", "mobilenet_v2": "classifier.1.", "efficientnet_b5": "classifier.1."}


def save(path, tensors):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    arrays = [(name, t.contiguous().numpy()) for name, t in tensors.items()]
    for name, a in arrays:
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, a in arrays:
            f.write(a.tobytes())


def load(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], NUMPY[t["dtype"]]).reshape(t["shape"])
    return out


def build(model, classes, channels):
    m = getattr(torchvision.models, model)(num_classes=classes)
    # The first convolution takes the data's channels (1 for Fashion-MNIST).
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            parent = m.get_submodule(name.rsplit(".", 1)[0]) if "." in name else m
            setattr(parent, name.rsplit(".", 1)[-1],
                    torch.nn.Conv2d(channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding,
                                    bias=mod.bias is not None))
            break
    return m


def make(model, classes, out, channels=1):
    torch.manual_seed(1234)
    sd = build(model, int(classes), int(channels)).state_dict()
    g = torch.Generator().manual_seed(5678)
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            sd[name] = torch.randint(0, 1 << 40, (), generator=g, dtype=torch.int64)
        elif name.endswith("running_var"):
            sd[name] = torch.rand(t.shape, generator=g) + 0.5
        else:
            sd[name] = torch.randn(t.shape, generator=g) * 0.1
    save(out, sd)
    print(f"{out}: {len(sd)} tensors, {classes} classes")


def same(model, given, exported):
    a, b = load(given), load(exported)
    failed = 0
    if list(a) != list(b):
        print(f"FAIL: names or order differ: {sorted(set(a) ^ set(b))[:5]}")
        failed += 1
    head = HEADS[model]
    for name in a:
        if name not in b:
            continue
        x, y = a[name], b[name]
        if name.startswith(head):
            ok = x.shape[0] != y.shape[0] and x.shape[1:] == y.shape[1:]
        else:
            ok = x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        if not ok:
            print(f"FAIL: {name}: {x.dtype}{list(x.shape)} given, {y.dtype}{list(y.shape)} exported")
        failed += not ok
    print(f"{model}: {len(a) - failed} of {len(a)} tensors as expected (head {head}* re-initialised)")
    return failed == 0


def test_images(n):
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        pixels = np.frombuffer(f.read(), np.uint8, offset=16)[:n * 784]
    x = (pixels.astype(np.float32) / np.float32(255) - np.float32(MEAN)) / np.float32(STD)
    return torch.from_numpy(x.reshape(n, 1, 28, 28))


def logits_agree(got, want, who):
    """tlc's logits against the oracle's, within 1e-4 of the largest logit: tlc folds batchnorm
    into the convolutions for evaluation and sums in another order, so the last bits differ."""
    scale = max(float(np.abs(want).max()), 1e-30)
    err = np.abs(got - want).max() / scale if got.shape == want.shape else np.inf
    agree = f"{(got.argmax(1) == want.argmax(1)).mean():.0%}" if got.shape == want.shape else "-"
    print(f"logits {got.shape} vs {who}'s {want.shape}: max |diff| / max |logit| = {err:.2e} (tolerance 1e-4); "
          f"largest logit {scale:.3g}; predictions agree on {agree}")
    return err < 1e-4


def logits(exported, logits_file, n):
    n = int(n)
    m = build("resnet18", 10, 1)
    m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in load(exported).items()})
    m.eval()
    with torch.no_grad():
        want = m(test_images(n)).numpy()
    return logits_agree(np.load(logits_file), want, "torchvision")


def extra(given, out):
    tensors = {k: torch.from_numpy(v.copy()) for k, v in load(given).items()}
    tensors["extra.weight"] = torch.zeros(3, 5)
    save(out, tensors)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(*args)
    elif cmd == "extra":
        extra(*args)
    elif not {"same": same, "logits": logits}[cmd](*args):
        sys.exit(1)
