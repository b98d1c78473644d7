#!/usr/bin/python3
"""convert_weights.py: a PyTorch state_dict into the safetensors file a tlc trainer reads.

    tools/convert_weights.py IN OUT.safetensors [--model NAME|FILE.graph] [--set NAME=VALUE]...
                             [--from NAMES] [--key KEY] [--tlc PATH]

IN is a .pth/.pt/.bin file written by torch.save (read with weights_only=True: tensors only,
no code runs) or a safetensors file; a state_dict wrapped as {"state_dict": ...} or
{"model": ...} (or under --key) and DataParallel's "module." prefixes are taken as they come.
OUT gets the zoo's names (torchvision's state_dict keys) in the model's order, floats as F32.

The model is a zoo name (graphs/NAME.graph) or a .graph file, with --set as tlc takes it;
without --model, every zoo model is tried and the one the file fits is taken. tlc itself says
what the model holds (`tlc GRAPH --emit=params`, and `--emit=ir` for batchnorm's eps), so every
tensor of the file must become one of the model's with its shape, and every one of the
model's must be produced; `num_batches_tracked` may be absent (PyTorch's BatchNorm loads such
files with 0, and so does this). A classification head whose class count differs is kept as
the file has it: the trainer re-initialises it and says so.

NAMES (detected from the keys; --from only settles what keys cannot tell):
  torchvision           the zoo's own names; timm's ResNets use the same names
  timm                  timm's mobilenetv2_* and efficientnet_b* (conv_stem, bn1,
                        blocks.STAGE.BLOCK.*, conv_head, bn2, classifier): batchnorm eps 1e-5
  timm_tf               timm's tf_efficientnet_b*: the same names, ported from TensorFlow:
                        eps 1e-3 and TensorFlow's "same" padding
  efficientnet_pytorch  lukemelas/EfficientNet-PyTorch (_conv_stem, _bn0, _blocks.N.*,
                        _conv_head, _bn1, _fc), ported from TensorFlow like timm_tf
The mappings were written from the libraries' module names as their source defines them.

Exit status 0 with OUT written whole, or 1 with every problem named and nothing written.
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys

try:
    import numpy as np
    import torch
except ImportError as missing:   # e.g. a virtual environment's python3 ahead of the distribution's
    sys.exit(f"convert_weights: error: {sys.executable} cannot import {missing.name}; run it with the "
             "distribution's Python (/usr/bin/python3, packages python3-torch and python3-numpy)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMINGS = ("torchvision", "timm", "timm_tf", "efficientnet_pytorch")
# The batchnorm eps each library's models were trained with; torchvision's is the zoo's own.
EPS = {"timm": 1e-5, "timm_tf": 1e-3, "efficientnet_pytorch": 1e-3}
LABELS = {"timm": "timm's efficientnet_b* and mobilenetv2_*", "timm_tf": "timm's tf_efficientnet_b*",
          "efficientnet_pytorch": "EfficientNet-PyTorch's models"}
# Keys under which training scripts keep the state_dict.
WRAPPERS = ("state_dict", "model", "model_state_dict")
SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
MAX_LISTED = 12


class Refused(Exception):
    """What is wrong with the input, said to the user as is. score ranks a model's refusals
    when every zoo model is tried: the number of tensors that do not fit, 0 for a file that
    fits but must not be converted."""

    def __init__(self, message, score=1 << 30):
        super().__init__(message)
        self.score = score


#
# Reading the file
#

def safetensors_tensor(raw, dtype, shape):
    if dtype == "BF16":   # numpy has no bfloat16: its 16 bits are a float32's top half
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(raw, SAFETENSORS_DTYPES[dtype]).reshape(shape)


def read_safetensors(path, data):
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        header.pop("__metadata__", None)
        out = {}
        for name, t in header.items():
            begin, end = t["data_offsets"]
            a = safetensors_tensor(data[8 + n + begin:8 + n + end], t["dtype"], t["shape"])
            out[name] = torch.from_numpy(a.astype(a.dtype.newbyteorder("=")))
        return out
    except (ValueError, KeyError, TypeError, struct.error) as e:
        raise Refused(f"{path}: a damaged safetensors file ({type(e).__name__}: {e})")


def torch_load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # weights_only's refusal is an UnpicklingError; a damaged zip, a RuntimeError
        why = str(e).split("WeightsUnpickler error: ")[-1].strip()
        if "Unsupported class torch.nn" in why or "Unsupported class torchvision" in why:
            raise Refused(f"{path}: a whole pickled model (torch.save(model)), not a state_dict; on the machine "
                          f"it comes from, save model.state_dict() instead ({why})")
        if "Unsupported class" in why:
            raise Refused(f"{path}: holds Python objects besides tensors ({why}), which weights_only=True does "
                          "not run; on a machine you trust, save the state_dict alone: "
                          "torch.save(torch.load(IN)['state_dict'], 'weights.pth')")
        raise Refused(f"{path}: PyTorch cannot read it ({type(e).__name__}: {why})")


def read_file(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Refused(f"{path}: cannot read: {e.strerror}")
    if len(data) > 9 and data[8:9] == b"{" and data[5:8] == b"\0\0\0":
        return read_safetensors(path, data)
    zip_archive = data[:4] == b"PK\x03\x04"   # torch.save's format since PyTorch 1.6
    legacy_pickle = len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5   # a pickle's protocol 2 to 5
    if zip_archive or legacy_pickle:
        return torch_load(path)
    raise Refused(f"{path}: neither a PyTorch file (torch.save writes a zip archive or a pickle) nor safetensors")


def is_state_dict(obj):
    return isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values())


def unwrap(obj, key, path):
    """The state_dict inside a training script's checkpoint, its "module." prefixes removed."""
    if key:
        if not isinstance(obj, dict) or key not in obj:
            raise Refused(f"{path}: no entry '{key}' (--key) in it; it has: {', '.join(map(str, obj))[:300]}")
        obj = obj[key]
    while isinstance(obj, dict) and not is_state_dict(obj):
        inner = [k for k in WRAPPERS if isinstance(obj.get(k), dict)]
        if not inner:
            keys = ", ".join(map(str, obj))[:300] if isinstance(obj, dict) else type(obj).__name__
            raise Refused(f"{path}: no state_dict found (a dict of tensors, or one under {', '.join(WRAPPERS)}); "
                          f"it has: {keys}; name the entry with --key")
        obj = obj[inner[0]]
    if not is_state_dict(obj):
        raise Refused(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    # DataParallel and DistributedDataParallel save their wrapped model under "module.".
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


#
# What the model holds, from tlc
#

def tlc_output(args, graph, emit):
    cmd = [args.tlc, graph, f"--emit={emit}"] + [a for s in args.set for a in ("--set", s)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise Refused(f"cannot run tlc ({args.tlc}): {e.strerror}; build it (tools/build.sh) or name it with --tlc")
    if r.returncode != 0:
        raise Refused(f"tlc could not read {graph}:\n{r.stderr.strip()}")
    return r.stdout


def model_params(args, graph):
    """[(name, shape)] in state_dict order: `tlc --emit=params` prints `name 64x3x7x7` or `name scalar`."""
    out = []
    for line in tlc_output(args, graph, "params").splitlines():
        name, dims = line.split()
        out.append((name, () if dims == "scalar" else tuple(int(d) for d in dims.split("x"))))
    return out


def batchnorm_eps(args, graph):
    return {float(m.group(1)) for m in re.finditer(r" batchnorm eps=(\S+)", tlc_output(args, graph, "ir"))}


def graph_path(model):
    if model.endswith(".graph"):
        return model
    path = os.path.relpath(os.path.join(ROOT, "graphs", model + ".graph"))
    if path.startswith(".."):
        path = os.path.join(ROOT, "graphs", model + ".graph")
    if not os.path.exists(path):
        raise Refused(f"--model {model}: no {path}; give the .graph file that defines the model")
    return path


def zoo_graphs():
    names = sorted(f[:-len(".graph")] for f in os.listdir(os.path.join(ROOT, "graphs")) if f.endswith(".graph"))
    return [n for n in names if "model " + n in open(os.path.join(ROOT, "graphs", n + ".graph")).read()]


#
# The mappings: each library's module names for the zoo's
#

def detect_naming(keys):
    if "_conv_stem.weight" in keys:
        return "efficientnet_pytorch"
    if "conv_stem.weight" in keys:
        return "timm"
    return "torchvision"


def zoo_family(names):
    if "layer1.0.conv1.weight" in names:
        return "resnet"
    if any(re.match(r"features\.\d+\.conv\.", n) for n in names):
        return "mobilenet_v2"
    if any(re.match(r"features\.\d+\.\d+\.block\.", n) for n in names):
        return "efficientnet"
    return "other"


# The zoo's blocks, each a prefix its tensors' names start with, in order.
ZOO_BLOCKS = {"efficientnet": r"(features\.(\d+)\.(\d+)\.block\.)", "mobilenet_v2": r"(features\.(\d+)\.conv\.)"}
# A library's blocks: the name's prefix up to the block, its index, the rest.
SOURCE_BLOCKS = {"timm": r"(blocks\.(\d+)\.(\d+)\.)(.+)", "efficientnet_pytorch": r"(_blocks\.(\d+)\.)(.+)"}
SOURCE_BLOCKS["timm_tf"] = SOURCE_BLOCKS["timm"]

# Stem, last convolution and classifier; "last" is the zoo's final features index.
ENDS = {
    "timm": {"conv_stem": "features.0.0", "bn1": "features.0.1", "conv_head": "features.{last}.0",
             "bn2": "features.{last}.1", "classifier": "classifier.1"},
    "efficientnet_pytorch": {"_conv_stem": "features.0.0", "_bn0": "features.0.1", "_conv_head": "features.{last}.0",
                             "_bn1": "features.{last}.1", "_fc": "classifier.1"},
}
ENDS["timm_tf"] = ENDS["timm"]

# Inside a block, by the block's kind: the library's module for the zoo's (after the block's
# prefix). timm's DepthwiseSeparableConv (no expansion) and InvertedResidual both call a
# convolution conv_pw, the projection in one and the expansion in the other.
ROLES = {
    ("timm", "efficientnet", "ds"): {"conv_dw": "0.0", "bn1": "0.1", "se.conv_reduce": "1.fc1",
                                     "se.conv_expand": "1.fc2", "conv_pw": "2.0", "bn2": "2.1"},
    ("timm", "efficientnet", "ir"): {"conv_pw": "0.0", "bn1": "0.1", "conv_dw": "1.0", "bn2": "1.1",
                                     "se.conv_reduce": "2.fc1", "se.conv_expand": "2.fc2", "conv_pwl": "3.0",
                                     "bn3": "3.1"},
    ("timm", "mobilenet_v2", "ds"): {"conv_dw": "0.0", "bn1": "0.1", "conv_pw": "1", "bn2": "2"},
    ("timm", "mobilenet_v2", "ir"): {"conv_pw": "0.0", "bn1": "0.1", "conv_dw": "1.0", "bn2": "1.1",
                                     "conv_pwl": "2", "bn3": "3"},
    ("efficientnet_pytorch", "efficientnet", "ds"): {"_depthwise_conv": "0.0", "_bn1": "0.1", "_se_reduce": "1.fc1",
                                                     "_se_expand": "1.fc2", "_project_conv": "2.0", "_bn2": "2.1"},
    ("efficientnet_pytorch", "efficientnet", "ir"): {"_expand_conv": "0.0", "_bn0": "0.1", "_depthwise_conv": "1.0",
                                                     "_bn1": "1.1", "_se_reduce": "2.fc1", "_se_expand": "2.fc2",
                                                     "_project_conv": "3.0", "_bn2": "3.1"},
}


def block_kind(naming, members):
    """"ir" for a block that expands its channels first, "ds" for one that does not."""
    expands = "conv_pwl" if naming.startswith("timm") else "_expand_conv"
    return "ir" if any(m.startswith(expands + ".") for m in members) else "ds"


def numbered(regex, names):
    """The distinct prefixes that regex's group 1 catches in names, in numeric order."""
    found = {}
    for n in names:
        m = re.match(regex, n)
        if m:
            found[m.group(1)] = tuple(int(g) for g in m.groups()[1:] if g.isdigit())
    return sorted(found, key=found.get)


def rename_blocks(naming, family, keys, names):
    """{source key: zoo name} for a library whose blocks pair with the zoo's in order."""
    source_re = SOURCE_BLOCKS[naming]
    theirs, ours = numbered(source_re, keys), numbered(ZOO_BLOCKS[family], names)
    if len(theirs) != len(ours):
        raise Refused(f"the file has {len(theirs)} blocks ({theirs[0] if theirs else '-'}...), the model "
                      f"{len(ours)} ({ours[0] if ours else '-'}...): another depth of the network")
    last = max(int(m.group(1)) for m in (re.match(r"features\.(\d+)\.", n) for n in names) if m)
    pairs, mapping, members = dict(zip(theirs, ours)), {}, {}
    for key in keys:
        m = re.match(source_re, key)
        if m:
            members.setdefault(m.group(1), []).append(m.groups()[-1])
    for key in keys:
        m = re.match(source_re, key)
        if m:
            roles = ROLES.get((naming.replace("_tf", ""), family, block_kind(naming, members[m.group(1)])), {})
            module, param = m.groups()[-1].rsplit(".", 1)
            if module in roles:
                mapping[key] = f"{pairs[m.group(1)]}{roles[module]}.{param}"
        elif "." in key:
            module, param = key.rsplit(".", 1)
            if module in ENDS[naming]:
                mapping[key] = ENDS[naming][module].format(last=last) + "." + param
    return mapping


def rename(naming, keys, names):
    """{source key: zoo name}; a key absent from it has no counterpart."""
    if naming == "torchvision":
        return {k: k for k in keys}
    family = zoo_family(names)
    if (naming.replace("_tf", ""), family, "ir") not in ROLES:
        raise Refused(f"{naming}'s names are known for " +
                      ", ".join(sorted({f for n, f, _ in ROLES if n == naming.replace('_tf', '')})) +
                      f" models; this model is a {family} (its names begin {names[0]})")
    return rename_blocks(naming, family, keys, names)


#
# Checking and writing
#

def shape_str(shape):
    return "[" + ", ".join(map(str, shape)) + "]"


def head_names(params):
    """The classification head: the last 2-D weight and its bias, as the trainer defines it."""
    for name, shape in reversed(params):
        if name.endswith(".weight") and len(shape) == 2:
            return {name, name[:-len("weight")] + "bias"}
    return set()


def check(sd, mapping, params, naming):
    """The tensors to write, in the model's order, and the problems (empty when all is well)."""
    shapes, head = dict(params), head_names(params)
    problems, out, source_of = [], {}, {}
    for key, t in sd.items():
        name = mapping.get(key)
        shape = tuple(t.shape)
        if name is None:
            problems.append(f"'{key}' {shape_str(shape)}: no tensor of the model corresponds to it in {naming}'s names")
            continue
        as_name = "" if key == name else f" (as '{name}')"
        if name in source_of:
            problems.append(f"'{key}' and '{source_of[name]}' both become '{name}'")
        elif name not in shapes:
            problems.append(f"'{key}' {shape_str(shape)}{as_name}: the model has no such tensor")
        elif shape != shapes[name] and not (name in head and shape[1:] == shapes[name][1:]):
            problems.append(f"'{key}'{as_name} has shape {shape_str(shape)} in the file, "
                            f"{shape_str(shapes[name])} in the model")
        else:
            out[name] = t
        source_of[name] = key
    filled = 0
    for name, shape in params:
        if name in source_of:
            continue
        if name.endswith(".num_batches_tracked"):
            out[name], filled = torch.zeros((), dtype=torch.int64), filled + 1
        else:
            problems.append(f"the model's '{name}' {shape_str(shape)} is not in the file")
    return {name: out[name] for name, _ in params if name in out}, problems, filled


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        is_int = not t.is_floating_point()
        a = t.detach().cpu().numpy().astype("<i8" if is_int else "<f4")
        header[name] = {"dtype": "I64" if is_int else "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)   # the data starts 8-byte aligned, as the format's writer keeps it
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise Refused(f"{path}: cannot write: {e.strerror}")


#
# The steps
#

def settle_naming(args, keys, family):
    """The file's naming: detected, or --from where it agrees with the keys."""
    found = detect_naming(keys)
    if args.source == "timm" and found == "torchvision" and family == "resnet":
        return found   # timm's ResNets name their tensors as torchvision's do
    if not args.source or args.source == found:
        return found
    if args.source == "timm_tf" and found == "timm":
        return args.source
    raise Refused(f"{args.input}: --from {args.source}, but its names are {found}'s "
                  f"(its first key is '{next(iter(keys))}')")


def check_variant(args, naming, family):
    """What the names cannot tell: which of timm's two EfficientNets the file is."""
    if naming == "timm" and family == "efficientnet" and args.source != "timm":
        raise Refused(f"{args.input}: timm's EfficientNet names. timm's efficientnet_b* (PyTorch's padding, "
                      "batchnorm eps 1e-5) and tf_efficientnet_b* (ported from TensorFlow: its \"same\" padding, "
                      "eps 1e-3) name their tensors alike; say which the file is with --from timm or --from timm_tf",
                      score=0)


def eps_str(eps):
    return f"{eps:.0e}".replace("e-0", "e-")


def check_eps(args, naming, graph, model):
    """A library's batchnorm eps against the model's: weights trained with one compute other
    values with the other, so a difference is refused rather than converted."""
    if naming not in EPS:
        return
    theirs, ours = EPS[naming], batchnorm_eps(args, graph)
    if ours and ours != {theirs}:
        raise Refused(f"{model} ({graph}) normalises with batchnorm eps {', '.join(map(eps_str, sorted(ours)))}, "
                      f"{LABELS[naming]} with {eps_str(theirs)}: these weights would compute other values in it. "
                      f"Use a model whose batchnorm eps is {eps_str(theirs)} (efficientnet(width, depth, dropout, "
                      "classes, eps, momentum) in graphs/efficientnet.graph takes it) with --model FILE.graph",
                      score=0)


def padding_note(naming):
    if naming in ("timm_tf", "efficientnet_pytorch"):
        print(f"note: {LABELS[naming]} pad as TensorFlow does (\"same\": a stride-2 convolution pads more "
              "at the bottom and right); the zoo pads symmetrically, as torchvision does, so its logits differ "
              "from the library's own. torchvision's efficientnet_b5..b7 ImageNet weights are "
              "EfficientNet-PyTorch's, used with symmetric padding in the same way.")


def plan(args, sd, model):
    """(tensors to write, naming, filled) for one model, or Refused naming every problem."""
    graph = graph_path(model)
    params = model_params(args, graph)
    family = zoo_family({n for n, _ in params})
    naming = settle_naming(args, list(sd), family)
    mapping = rename(naming, list(sd), [n for n, _ in params])
    tensors, problems, filled = check(sd, mapping, params, naming)
    if problems:
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise Refused(f"{args.input} ({naming} names) does not fit {model} ({graph}): {len(problems)} "
                      "problem(s):\n  " + "\n  ".join(problems[:MAX_LISTED]) + more, score=len(problems))
    check_variant(args, naming, family)
    check_eps(args, naming, graph, model)
    return tensors, naming, filled, graph


def find_model(args, sd):
    """The zoo model the file fits, trying each; the nearest one's problems when none fits."""
    failures = []
    for model in zoo_graphs():
        try:
            return model, plan(args, sd, model)
        except Refused as e:
            failures.append(e)
    nearest = min(failures, key=lambda e: e.score)
    if nearest.score == 0:
        raise nearest
    raise Refused(f"no zoo model fits the file (name one with --model); the nearest:\n{nearest}")


def convert(args):
    sd = unwrap(read_file(args.input), args.key, args.input)
    if args.model:
        model, (tensors, naming, filled, graph) = args.model, plan(args, sd, args.model)
    else:
        if args.set:
            raise Refused("--set needs --model")
        model, (tensors, naming, filled, graph) = find_model(args, sd)
        print(f"model: {model} (the zoo model whose names and shapes the file fits)")
    padding_note(naming)
    write_safetensors(args.output, tensors, {"format": "pt", "producer": "tools/convert_weights.py",
                                             "source": naming, "model": model})
    filled_note = f"; {filled} num_batches_tracked absent, written as 0" if filled else ""
    print(f"{args.input}: {len(sd)} tensors, {naming} names -> {args.output}: {len(tensors)} tensors of "
          f"{model} ({graph}){filled_note}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="See the docstring of this file.")
    p.add_argument("input", help=".pth/.pt/.bin (torch.save) or .safetensors")
    p.add_argument("output", help="the .safetensors file to write")
    p.add_argument("--model", help="a zoo model (graphs/NAME.graph) or a .graph file; default: the one the file fits")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="as tlc's --set")
    p.add_argument("--from", dest="source", choices=NAMINGS, help="the file's names; default: detected")
    p.add_argument("--key", help="the entry of a checkpoint dict that holds the state_dict")
    p.add_argument("--tlc", default=os.environ.get("TLC", os.path.join(ROOT, "build", "tlc")),
                   help="the tlc command (default: $TLC, else build/tlc)")
    args = p.parse_args()
    try:
        convert(args)
    except Refused as e:
        print(f"convert_weights: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
