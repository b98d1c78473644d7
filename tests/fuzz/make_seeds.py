#!/usr/bin/python3
"""make_seeds.py [READER...]: writes the seed inputs of the fuzzing harnesses into
tests/fuzz/<reader>/ (docs/fuzzing.md): valid files of every kind each reader takes, made with
the formats' own tools (PIL, scipy.io.savemat, matio, flatc, the C compiler) or their published
byte layouts, and one reproducer for each hostile input of issue 12 that a reader saw
(`bug-*`). The committed corpora are these after AFL++ ran on them and afl-cmin kept what
covers something new; the reproducers are always kept.

Readers: graph checkpoint safetensors bundle inspect image idx cifar10 flowers102 (all when
none is named). Needs flatc, cc, python3-pil, python3-numpy, python3-scipy and libmatio.
"""
import ctypes
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import scipy.io
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
M64 = (1 << 64) - 1


def put(reader, name, data):
    os.makedirs(f"{HERE}/{reader}", exist_ok=True)
    with open(f"{HERE}/{reader}/{name}", "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def two_files(first, second):
    """The two-file input of fuzz_split (fuzz.h): the first file's length, it, the second."""
    return struct.pack("<I", len(first)) + first + second


#
# .graph files
#

def inlined(path, seen=None):
    """A .graph file with its imports replaced by their text (each file once), so that the
    fuzzer mutates the models themselves, not only the line that imports them."""
    seen = set() if seen is None else seen
    out = []
    for line in open(path).read().splitlines():
        if line.startswith("import "):
            name = line.split('"')[1]
            found = [p for p in (os.path.join(os.path.dirname(path), name), f"{ROOT}/graphs/{name}") if os.path.exists(p)]
            if found and name not in seen:
                seen.add(name)
                out.append(inlined(found[0], seen))
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def graph():
    tail = "model m(input = [1, 8, 8]) {\n  flatten\n  linear(2)\n}\n"
    for name in ("cnn_bn", "resnet18", "mobilenet_v2", "efficientnet_b0"):
        put("graph", f"seed-{name}.graph", inlined(f"{ROOT}/graphs/{name}.graph"))
    for name in ("fashion_cnn", "ants_bees_rn18", "hotdog_rn18", "mobilenet_v2_partial", "cifar10_rn18"):
        put("graph", f"seed-{name}.graph", open(f"{ROOT}/examples/{name}.graph").read())
    for name in ("language", "recipe_resolved", "freeze_list", "freeze_marks"):
        put("graph", f"seed-golden-{name}.graph", open(f"{ROOT}/tests/golden/{name}.graph").read())
    diagnostics = f"{ROOT}/tests/diagnostics"
    for name in sorted(os.listdir(diagnostics)):
        if name.endswith(".graph"):
            put("graph", f"seed-diagnostic-{name}", open(f"{diagnostics}/{name}", "rb").read())
    # Issue 12, item 1: files that took unbounded time or memory before the limits.
    put("graph", "bug-let-chain.graph", "\n".join(["let a0 = 1"] + [f"let a{i} = a{i-1} + a{i-1} - a{i-1}" for i in range(1, 30)]) + "\n" + tail)
    put("graph", "bug-list-chain.graph", "\n".join(["let a0 = [1]"] + [f"let a{i} = [a{i-1}, a{i-1}]" for i in range(1, 60)]) + "\n" + tail)
    put("graph", "bug-comprehension.graph", "\n".join(["let l0 = [0, 0, 0, 0, 0]"] + [f"let l{i} = l{i-1} + l{i-1}" for i in range(1, 11)] +
                                                      ["let ys = [len(l10) + len(l10) for x in l10]"]) + "\n" + tail)
    put("graph", "bug-nested-repeats.graph",
        "model m(input = [1, 8, 8]) {\n  repeat 100000 { repeat 100000 { repeat 100000 { } } }\n  flatten\n  linear(2)\n}\n")
    put("graph", "bug-nested-repeats-if.graph",
        "model m(input = [1, 8, 8]) {\n  repeat 100000 { repeat 100000 { repeat 100000 { if false { relu } } } }\n"
        "  flatten\n  linear(2)\n}\n")
    put("graph", "bug-equal-chain.graph", "\n".join(["let a0 = [1]"] + [f"let a{i} = [a{i-1}, a{i-1}]" for i in range(1, 60)]) +
        "\n" + tail.replace("linear(2)", "linear(a59 == a59 ? 2 : 3)"))


#
# Checkpoints and kernel bundles (FlatBuffers, through flatc from JSON)
#

def flatc(schema, doc):
    with tempfile.TemporaryDirectory() as tmp:
        with open(f"{tmp}/doc.json", "w") as f:
            json.dump(doc, f)
        subprocess.run(["flatc", "-b", "-o", tmp, f"{ROOT}/runtime/{schema}.fbs", f"{tmp}/doc.json"], check=True)
        return open(f"{tmp}/doc.bin", "rb").read()


def fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def mix64(x):
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def graph_hash(tensors):
    """tlc_checkpoint_graph_hash (checkpoint.cc) of (name, shape) pairs."""
    total = len(tensors)
    for name, shape in tensors:
        h = fnv1a(0xcbf29ce484222325, name.encode() + b"\0")
        for v in [len(shape)] + list(shape):
            h = fnv1a(h, (v & M64).to_bytes(8, "little"))
        total += mix64(h)
    return mix64(total & M64)


def checkpoint_doc(tensors, **fields):
    doc = {"version": 1, "graph": "fuzz", "epoch": 2, "step": 40, "rng": [0x0123456789abcdef, 0xfedcba9876543210],
           "best_metric": 0.75, "graph_hash": graph_hash([(n, s) for n, s, _ in tensors]),
           "tensors": [{"name": n, "shape": s, "data": d} for n, s, d in tensors]}
    doc.update(fields)
    return doc


def misaligned_checkpoint(values, rng):
    """test_misaligned.c's file: one tensor "w" [2, 3] whose shape and the rng vector lie at
    addresses that are 4 mod 8, which the FlatBuffers Verifier accepts (issue 12, item 3)."""
    b = bytearray(512)
    n = 0

    def at(pos, v, size):
        nonlocal n
        b[pos:pos + size] = (v & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        n = max(n, pos + size)

    def vector64(pos, items):
        pos = (pos + 3) & ~3
        if (pos + 4) % 8 != 4:
            pos += 4
        at(pos, len(items), 4)
        for i, v in enumerate(items):
            at(pos + 4 + 8 * i, v, 8)
        return pos, pos + 4 + 8 * len(items)

    at(0, 32, 4)
    b[4:8] = b"TLCK"
    for i, v in enumerate([20, 40, 4, 0, 8, 24, 32, 16, 0, 20]):
        at(8 + 2 * i, v, 2)
    at(32, 24, 4)
    at(36, 1, 4)
    at(40, graph_hash([("w", [2, 3])]), 8)
    at(56, 3, 4)
    at(64, 77, 8)
    rng_at, end = vector64(72, rng)
    at(48, rng_at - 48, 4)
    lst = (end + 3) & ~3
    tvt, table = lst + 8, lst + 20
    at(52, lst - 52, 4)
    at(lst, 1, 4)
    at(lst + 4, table - (lst + 4), 4)
    for i, v in enumerate([10, 16, 4, 8, 12]):
        at(tvt + 2 * i, v, 2)
    at(table, table - tvt, 4)
    name = table + 16
    at(table + 4, name - (table + 4), 4)
    at(name, 1, 4)
    b[name + 4:name + 6] = b"w\0"
    shape_at, end = vector64(name + 6, [2, 3])
    at(table + 8, shape_at - (table + 8), 4)
    data = (end + 3) & ~3
    at(table + 12, data - (table + 12), 4)
    at(data, 6, 4)
    b[data + 4:data + 28] = struct.pack("<6f", *values)
    return bytes(b[:data + 28])


def checkpoint():
    tensors = [("conv.weight", [2, 1, 2, 2], [0.5, -1.25, 2.0, 0.0, 1e-30, -0.0, 3.5, 7.0]),
               ("conv.bias", [2], [0.1, -0.2]),
               ("bn.num_batches_tracked", [], [12.0]),
               ("fc.weight.momentum_buffer", [1, 0], [])]
    put("checkpoint", "seed-v1.ckpt", flatc("checkpoint", checkpoint_doc(tensors)))
    put("checkpoint", "seed-v2-in-epoch.ckpt", flatc("checkpoint", checkpoint_doc(
        tensors[:2], version=2, images_done=256, loss_sum=301.5, correct_sum=97.0)))
    put("checkpoint", "seed-no-tensors.ckpt", flatc("checkpoint", checkpoint_doc([])))
    # Issue 12, item 3: 8-byte vectors off their alignment.
    put("checkpoint", "bug-misaligned-vectors.ckpt",
        misaligned_checkpoint([1.5, -2, 3.25, 0, 1e-30, 7], [0x0123456789abcdef, 0xfedcba9876543210]))
    # Found by AFL++: names holding a NUL byte, which read as one name twice.
    put("checkpoint", "found-nul-in-name.ckpt", flatc("checkpoint", checkpoint_doc(
        [("fc.weight", [1], [1.0]), ("fc.weight\0copy", [1], [2.0])])))


PTX = (".version 8.0\n.target sm_90\n.address_size 64\n\n.visible .entry k0(\n\t.param .u64 a\n)\n{\n\tret;\n}\n\n"
       ".visible .entry k1_relu(\n\t.param .u64 a\n)\n{\n\tret;\n}\n")


def bundle_doc(version=2):
    launch_block = 0 if version == 1 else 128
    return {"version": version, "arch": "sm_90", "nvrtc": "12.4", "block": 256 if version == 1 else 0,
            "prelude": "typedef float f32;\n",
            "functions": [{"name": "k0", "source": 'extern "C" __global__ void k0(float *a) { a[0] = 1; }\n'},
                          {"name": "k1_relu", "source": 'extern "C" __global__ void k1_relu(float *a) { a[0] = a[0] > 0 ? a[0] : 0; }\n'}],
            "launches": [{"kernel": "k0", "comment": "fc: linear, [4,8] -> [4,2]", "function": 0, "grid": 4,
                          "block": launch_block, "shared": 0},
                         {"kernel": "k1_relu", "comment": "relu: relu, [4,2]", "function": 1, "grid": 1,
                          "block": launch_block, "shared": 4096},
                         {"kernel": "k2", "comment": "shares k0's function", "function": 0, "grid": 2147483647,
                          "block": launch_block, "shared": 0}],
            "ptx": PTX, "cubin": list(b"\x7fELF\x02\x01\x01" + bytes(9))}


def bundle():
    put("bundle", "seed-v2.bundle", flatc("bundle", bundle_doc(2)))
    put("bundle", "seed-v1.bundle", flatc("bundle", bundle_doc(1)))
    put("bundle", "seed-empty.bundle", flatc("bundle", {"version": 2, "arch": "sm_80"}))


def elf_with(section, misaligned=False):
    """An object file holding `section` as .tlc_bundle, as a trainer carries it (host_c.c's
    asm), at an offset that is 4 mod 8 when misaligned (a preceding 4-byte section, alignment 1)."""
    with tempfile.TemporaryDirectory() as tmp:
        open(f"{tmp}/bundle.bin", "wb").write(section)
        pad = '.section .tlc_pad,\\"a\\",@progbits\\n.byte 1,2,3,4\\n' if misaligned else ""
        align = ".p2align 0" if misaligned else ".balign 16"
        open(f"{tmp}/t.c", "w").write(
            f'__asm__("{pad}.section .tlc_bundle,\\"a\\",@progbits\\n{align}\\n.incbin \\"{tmp}/bundle.bin\\"\\n.previous\\n");\n')
        subprocess.run(["cc", "-c", f"{tmp}/t.c", "-o", f"{tmp}/t.o"], check=True)
        subprocess.run(["objcopy", "-R", ".comment", "-R", ".note.GNU-stack", "--strip-all", f"{tmp}/t.o"], check=True)
        return open(f"{tmp}/t.o", "rb").read()


def inspect():
    put("inspect", "seed-v2.elf", elf_with(flatc("bundle", bundle_doc(2))))
    put("inspect", "seed-v1.elf", elf_with(flatc("bundle", bundle_doc(1))))
    put("inspect", "seed-no-bundle.elf", elf_with(b"", False).replace(b".tlc_bundle", b".tlc_bundlx"))
    # Issue 12, item 3: the bundle read from an address that is not 8-byte aligned.
    put("inspect", "bug-misaligned-section.elf", elf_with(flatc("bundle", bundle_doc(2)), misaligned=True))


#
# safetensors
#

def safetensors_file(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def safetensors():
    f32 = np.array([[0.5, -1.5], [2.0, 1e-20]], np.float32)
    put("safetensors", "seed-torchvision.safetensors", safetensors_file([
        ("conv1.weight", "F32", [2, 1, 1, 2], f32.tobytes()),
        ("bn1.running_mean", "F32", [2], np.array([0.1, 0.2], np.float32).tobytes()),
        ("bn1.num_batches_tracked", "I64", [], np.array([7], np.int64).tobytes()),
        ("fc.bias", "F32", [0], b"")], {"format": "pt"}))
    put("safetensors", "seed-dtypes.safetensors", safetensors_file([
        ("half", "F16", [3], np.array([1.0, -65504.0, 6e-8], np.float16).tobytes()),
        ("bf16", "BF16", [2], (np.array([1.5, -3.0], np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()),
        ("double", "F64", [1, 1, 1, 2], np.array([1e300, -2.5], np.float64).tobytes()),
        ("int", "I64", [2], np.array([-1, 1 << 40], np.int64).tobytes())]))
    put("safetensors", "seed-empty.safetensors", safetensors_file([], {}))


#
# Images
#

def jpeg(img, **options):
    out = io.BytesIO()
    img.save(out, "JPEG", **options)
    return out.getvalue()


def png_chunk(kind, data, bad_crc=False):
    crc = zlib.crc32(kind + data) ^ (1 if bad_crc else 0)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width, height, color_type, depth, rows, palette=None, trns=None, interlace=False, extra=b"",
        end=True, bad_text_crc=False, header=None):
    """A PNG written chunk by chunk: rows is a function (x, y) -> samples of a pixel; interlaced
    files carry Adam7's seven passes, each row with filter byte 0."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]

    def scanline(xs, y):
        bits = "".join(format(s, f"0{depth}b") for x in xs for s in rows(x, y))
        bits += "0" * (-len(bits) % 8)
        return b"\0" + int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b"\0"

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(scanline(range(x0, width, dx), y) for x0, y0, dx, dy in passes if x0 < width
                       for y in range(y0, height, dy))
    else:
        raw = b"".join(scanline(range(width), y) for y in range(height))
    raw += extra
    ihdr = header or struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if palette:
        out += png_chunk(b"PLTE", bytes(palette))
    if trns:
        out += png_chunk(b"tRNS", bytes(trns))
    out += png_chunk(b"tEXt", b"Comment\0fuzz seed", bad_crc=bad_text_crc)
    out += png_chunk(b"IDAT", zlib.compress(raw))
    return out + (png_chunk(b"IEND", b"") if end else b"")


def image():
    pixels = np.array([[[(x * 37 + y * 11) % 256, (x * 5 + 80) % 256, (y * 29) % 256] for x in range(11)]
                       for y in range(7)], np.uint8)
    rgb = Image.fromarray(pixels)
    put("image", "seed-rgb.jpg", jpeg(rgb, quality=80))
    put("image", "seed-rgb-444.jpg", jpeg(rgb, quality=90, subsampling=0))
    put("image", "seed-progressive.jpg", jpeg(rgb, quality=70, progressive=True))
    put("image", "seed-gray.jpg", jpeg(rgb.convert("L"), quality=80))
    put("image", "seed-optimized.jpg", jpeg(rgb, quality=60, optimize=True))
    # Issue 12, item 4: what torchvision's loader converts to RGB.
    put("image", "bug-cmyk.jpg", jpeg(rgb.convert("CMYK"), quality=80))
    # Issue 12, item 2: a 16x16 JPEG whose frame header claims 13000x13000.
    bomb = bytearray(jpeg(Image.fromarray(np.resize(pixels, (16, 16, 3))), quality=50))
    sof = bomb.index(b"\xff\xc0")
    bomb[sof + 5:sof + 9] = struct.pack(">HH", 13000, 13000)
    put("image", "bug-bomb-13000x13000.jpg", bytes(bomb))
    damaged = bytearray(jpeg(rgb, quality=80))
    sos = damaged.index(b"\xff\xda")
    mid = sos + (len(damaged) - sos) // 2
    damaged[mid:mid + 4] = bytes(b ^ 0x55 for b in damaged[mid:mid + 4])
    put("image", "bug-damaged-entropy.jpg", bytes(damaged))
    cut = jpeg(rgb, quality=80, progressive=True)
    put("image", "bug-truncated.jpg", cut[:len(cut) * 2 // 3])

    w, h = 5, 3
    put("image", "seed-rgb8.png", png(w, h, 2, 8, lambda x, y: [x * 50, y * 80, 200]))
    put("image", "seed-rgb16.png", png(w, h, 2, 16, lambda x, y: [x * 13000, y * 20000, 65535]))
    put("image", "seed-gray1.png", png(w, h, 0, 1, lambda x, y: [(x + y) % 2]))
    put("image", "seed-gray4.png", png(w, h, 0, 4, lambda x, y: [x + y * 5]))
    put("image", "seed-gray16.png", png(w, h, 0, 16, lambda x, y: [x * 9000 + y]))
    put("image", "seed-interlaced.png", png(9, 9, 2, 8, lambda x, y: [x * 28, y * 28, 99], interlace=True))
    put("image", "bug-gray8.png", png(w, h, 0, 8, lambda x, y: [x * 60 + y]))
    put("image", "bug-gray-alpha.png", png(w, h, 4, 8, lambda x, y: [x * 60, y * 100]))
    put("image", "bug-rgba.png", png(w, h, 6, 8, lambda x, y: [x * 50, y * 80, 7, 128]))
    put("image", "bug-rgba16.png", png(w, h, 6, 16, lambda x, y: [x * 5000, y * 8000, 7, 65535]))
    put("image", "bug-palette.png", png(w, h, 3, 2, lambda x, y: [(x + y) % 3], palette=[255, 0, 0, 0, 255, 0, 0, 0, 255],
                                        trns=[0, 128]))
    put("image", "bug-palette8.png", png(w, h, 3, 8, lambda x, y: [x], palette=list(range(15))))
    # Issue 12, item 2: libpng's warnings about damaged data are errors.
    put("image", "bug-text-crc.png", png(w, h, 2, 8, lambda x, y: [1, 2, 3], bad_text_crc=True))
    put("image", "bug-too-much-data.png", png(w, h, 2, 8, lambda x, y: [1, 2, 3], extra=b"\0" + bytes(3 * w)))
    put("image", "bug-no-end.png", png(w, h, 2, 8, lambda x, y: [1, 2, 3], end=False))
    put("image", "bug-claims-20000x20000.png",
        png(w, h, 2, 8, lambda x, y: [1, 2, 3], header=struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)))
    # Found by AFL++: a tEXt chunk whose length claims 2 GiB in a file that ends inside it;
    # libpng allocated and filled the 2 GiB before finding the file truncated.
    head = png(w, h, 2, 8, lambda x, y: [1, 2, 3]).split(b"tEXt")[0][:-4]
    put("image", "found-text-chunk-claims-2gib.png", head + struct.pack(">I", 0x7fff0011) + b"tEXtComment\0fuzz seed")


#
# Data sets
#

def idx_images(images):
    n, rows, cols = images.shape
    return struct.pack(">IIII", 0x803, n, rows, cols) + images.tobytes()


def idx_labels(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


def idx():
    fashion = "/usr/share/datasets/fashion-mnist"
    with gzip.open(f"{fashion}/t10k-images-idx3-ubyte.gz") as f:
        real = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:2]
    with gzip.open(f"{fashion}/t10k-labels-idx1-ubyte.gz") as f:
        real_labels = list(np.frombuffer(f.read(), np.uint8, offset=8)[:2])
    small = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    put("idx", "seed-raw.idx2", two_files(idx_images(small), idx_labels([0, 9, 3])))
    put("idx", "seed-gzip.idx2", two_files(gzip.compress(idx_images(small), mtime=0), gzip.compress(idx_labels([1, 1, 254]), mtime=0)))
    put("idx", "seed-fashion-mnist.idx2", two_files(gzip.compress(idx_images(real), mtime=0),
                                                    gzip.compress(idx_labels(real_labels), mtime=0)))
    put("idx", "seed-trailing.idx2", two_files(idx_images(small) + b"x", idx_labels([0, 1, 2])))
    put("idx", "seed-cut-gzip.idx2", two_files(gzip.compress(idx_images(small), mtime=0)[:-6], idx_labels([0, 1, 2])))


def cifar_batch(labels):
    records = b""
    for k, label in enumerate(labels):
        records += bytes([label]) + bytes((k * 7 + i * 3) % 256 for i in range(3072))
    return records


def cifar10():
    meta = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
    put("cifar10", "seed-two-records.cifar2", two_files(meta, cifar_batch([3, 9])))
    put("cifar10", "seed-no-meta.cifar2", two_files(b"", cifar_batch([0, 1])))
    put("cifar10", "seed-crlf-meta.cifar2", two_files(b"a\r\nb\r\n\r\nc", cifar_batch([2, 0])))
    # Issue 12, item 5: a class name over 255 characters is one class, not two.
    long_meta = meta.replace(b"truck", b"x" * 300)
    put("cifar10", "bug-long-meta-line.cifar2", two_files(long_meta, cifar_batch([9, 8])))


def mat(variables, **options):
    out = io.BytesIO()
    scipy.io.savemat(out, variables, **options)
    return out.getvalue()


def mat73(variables):
    """A MAT v7.3 file (HDF5) written by matio, as MATLAB's -v7.3 writes them."""
    lib = ctypes.CDLL("libmatio.so.11")
    lib.Mat_CreateVer.restype = ctypes.c_void_p
    lib.Mat_CreateVer.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.Mat_VarCreate.restype = ctypes.c_void_p
    lib.Mat_VarCreate.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p, ctypes.c_int]
    lib.Mat_VarWrite.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.Mat_VarFree.argtypes = [ctypes.c_void_p]
    lib.Mat_Close.argtypes = [ctypes.c_void_p]
    MAT_FT_MAT73, MAT_C_DOUBLE, MAT_T_DOUBLE = 0x0200, 6, 9
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/v73.mat".encode()
        m = lib.Mat_CreateVer(path, None, MAT_FT_MAT73)
        if not m:
            raise SystemExit("make_seeds.py: this matio cannot write MAT v7.3 files")
        keep = []
        for name, values in variables.items():
            data = np.ascontiguousarray(values, np.float64)
            keep.append(data)
            dims = (ctypes.c_size_t * 2)(1, len(data))
            v = lib.Mat_VarCreate(name.encode(), MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, data.ctypes.data, 0)
            lib.Mat_VarWrite(m, v, 0)
            lib.Mat_VarFree(v)
        lib.Mat_Close(m)
        return open(path, "rb").read()


def flowers102():
    labels = np.array([[1, 2, 102, 5, 5, 1]], np.uint8)
    setid = {"trnid": np.array([[1, 2]], np.float64), "valid": np.array([[3, 4]], np.uint16),
             "tstid": np.array([[5, 6]], np.float64)}
    put("flowers102", "seed-v5.mat2", two_files(mat({"labels": labels}, do_compression=True), mat(setid)))
    put("flowers102", "seed-v5-uncompressed.mat2", two_files(mat({"labels": labels.astype(np.float64)}),
                                                             mat(setid, do_compression=True)))
    put("flowers102", "seed-v4.mat2", two_files(mat({"labels": labels.astype(np.float64)}, format="4"),
                                                mat({k: v.astype(np.float64) for k, v in setid.items()}, format="4")))
    put("flowers102", "seed-v73.mat2", two_files(mat73({"labels": labels[0]}), mat73({k: v[0] for k, v in setid.items()})))
    # Found by AFL++: MAT v4 headers claiming what the file does not hold, which matio
    # allocates before reading: 1677721606 values of labels (13 GB), a 1.6 GB variable name.
    v4_labels = mat({"labels": labels.astype(np.float64)}, format="4")
    v4_setid = mat({k: v.astype(np.float64) for k, v in setid.items()}, format="4")
    for name, field, value in (("found-v4-values-claim-13gb.mat2", 8, 0x64000006),
                               ("found-v4-name-claims-1600mb.mat2", 16, 0x64000007)):
        claims = bytearray(v4_labels)
        struct.pack_into("<I", claims, field, value)
        put("flowers102", name, two_files(bytes(claims), v4_setid))


READERS = {"graph": graph, "checkpoint": checkpoint, "safetensors": safetensors, "bundle": bundle, "inspect": inspect,
           "image": image, "idx": idx, "cifar10": cifar10, "flowers102": flowers102}

if __name__ == "__main__":
    for reader in sys.argv[1:] or READERS:
        READERS[reader]()
