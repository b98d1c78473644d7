"""The PyTorch side of the converter's tests (tests/weights/convert.sh runs it).

  convert.py make MODEL NAMES OUT.pth [REF.npy N] [--wrap] [--legacy] [--no-counters] [--eps E]
      builds MODEL (1 input channel, 10 classes, 28x28) as the library NAMES names it, with
      seeded random weights and batchnorm statistics, saves its state_dict with torch.save
      (--wrap: as {"state_dict": ..., "epoch": 3} with DataParallel's "module." prefixes;
      --legacy: in the pre-1.6 pickle format; --no-counters: without num_batches_tracked, as
      old files are) and its eval-mode logits on the first N Fashion-MNIST test images.
  convert.py compare REF.npy GOT.npy       the trainer's logits against PyTorch's
  convert.py order OUT.safetensors PARAMS  names and order as `tlc --emit=params` prints them
  convert.py odd KIND OUT.pth              files that are not a plain state_dict

MODEL is cnn_bn, resnet18, mobilenet_v2, efficientnet_b0 or efficientnet_b5. NAMES is
torchvision (torchvision's own models, and step_torch.py's CnnBn), timm, timm_tf or
efficientnet_pytorch.

timm and EfficientNet-PyTorch cannot be installed here, so their models are re-created below
from their source: module names, the block structure, which convolution is which, where the
activations are, batchnorm's eps. These tests therefore check the converter against the names
as read from the libraries' source, not against the libraries themselves. The re-creations pad
symmetrically, as the zoo does; the libraries' TensorFlow ports (tf_efficientnet_b*,
EfficientNet-PyTorch) pad as TensorFlow does, which the converter says when it converts them.
timm's ResNets name their tensors as torchvision's do, so torchvision's resnet18 stands for them.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "gpu")]
import step_torch   # noqa: E402  (CnnBn, randomise)
import weights      # noqa: E402  (torchvision models with 1 channel, safetensors, test images)

CLASSES, CHANNELS, SIZE = 10, 1, 28
# EfficientNet-B0's stages as the paper gives them, which timm and EfficientNet-PyTorch both
# encode: expand ratio, kernel, stride, input and output channels, repeats.
B0_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
# timm's mobilenetv2_100 arch_def: ds_r1_k3_s1_c16, then ir_rN_k3_sS_e6_cC.
MOBILENET_V2_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 3, 2, 24, 32, 3), (6, 3, 2, 32, 64, 4),
                       (6, 3, 1, 64, 96, 3), (6, 3, 2, 96, 160, 3), (6, 3, 1, 160, 320, 1)]
SCALES = {"efficientnet_b0": (1.0, 1.0), "efficientnet_b5": (1.6, 2.2)}


def make_divisible(v, divisor=8):
    """Channels rounded to a multiple of 8, never below 90% of v: the rule of all three libraries."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv(cin, cout, k, stride=1, groups=1, bias=False):
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=bias)


def scaled_stages(stages, width, depth):
    """(expand, kernel, stride, in, out) per block, as both libraries expand a stage table."""
    blocks = []
    for expand, k, stride, cin, cout, repeats in stages:
        cin, cout = make_divisible(cin * width), make_divisible(cout * width)
        for i in range(math.ceil(repeats * depth)):
            blocks.append((expand, k, stride if i == 0 else 1, cin if i == 0 else cout, cout))
    return blocks


#
# timm: timm/models/efficientnet.py and _efficientnet_blocks.py
#

class TimmBatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d: a BatchNorm2d (the same tensors) with the activation after it."""

    def __init__(self, chs, eps, act=None):
        super().__init__(chs, eps=eps)
        self.act = act or nn.Identity()

    def forward(self, x):
        return self.act(super().forward(x))


class TimmSqueezeExcite(nn.Module):
    def __init__(self, chs, rd, act):
        super().__init__()
        self.conv_reduce, self.act1, self.conv_expand = conv(chs, rd, 1, bias=True), act, conv(rd, chs, 1, bias=True)

    def forward(self, x):
        return x * torch.sigmoid(self.conv_expand(self.act1(self.conv_reduce(x.mean((2, 3), keepdim=True)))))


class TimmDepthwiseSeparable(nn.Module):
    """A block without expansion: conv_dw, bn1, se, then conv_pw, the projection, and bn2."""

    def __init__(self, cin, cout, k, stride, se, act, eps):
        super().__init__()
        self.has_skip = stride == 1 and cin == cout
        self.conv_dw, self.bn1 = conv(cin, cin, k, stride, groups=cin), TimmBatchNormAct(cin, eps, act)
        self.se = TimmSqueezeExcite(cin, cin // 4, act) if se else nn.Identity()
        self.conv_pw, self.bn2 = conv(cin, cout, 1), TimmBatchNormAct(cout, eps)

    def forward(self, x):
        y = self.bn2(self.conv_pw(self.se(self.bn1(self.conv_dw(x)))))
        return x + y if self.has_skip else y


class TimmInvertedResidual(nn.Module):
    """conv_pw, the expansion, bn1, conv_dw, bn2, se, conv_pwl, the projection, bn3."""

    def __init__(self, cin, cout, k, stride, expand, se, act, eps):
        super().__init__()
        mid = cin * expand
        self.has_skip = stride == 1 and cin == cout
        self.conv_pw, self.bn1 = conv(cin, mid, 1), TimmBatchNormAct(mid, eps, act)
        self.conv_dw, self.bn2 = conv(mid, mid, k, stride, groups=mid), TimmBatchNormAct(mid, eps, act)
        self.se = TimmSqueezeExcite(mid, cin // 4, act) if se else nn.Identity()   # se_ratio 0.25 of the input
        self.conv_pwl, self.bn3 = conv(mid, cout, 1), TimmBatchNormAct(cout, eps)

    def forward(self, x):
        y = self.bn3(self.conv_pwl(self.se(self.bn2(self.conv_dw(self.bn1(self.conv_pw(x)))))))
        return x + y if self.has_skip else y


class TimmEfficientNet(nn.Module):
    """timm's EfficientNet class, which builds efficientnet_b*, tf_efficientnet_b* and mobilenetv2_*."""

    def __init__(self, stages, width, depth, se, act, eps, head):
        super().__init__()
        stem = make_divisible(32 * width)
        self.conv_stem, self.bn1 = conv(CHANNELS, stem, 3, 2), TimmBatchNormAct(stem, eps, act)
        self.blocks = nn.Sequential(*[nn.Sequential(*[   # blocks.STAGE.BLOCK
            TimmDepthwiseSeparable(cin, cout, k, stride, se, act, eps) if expand == 1 else
            TimmInvertedResidual(cin, cout, k, stride, expand, se, act, eps)
            for expand, k, stride, cin, cout in scaled_stages([stage], width, depth)]) for stage in stages])
        cin = self.blocks[-1][-1].bn3.num_features
        self.conv_head, self.bn2 = conv(cin, head, 1), TimmBatchNormAct(head, eps, act)
        self.classifier = nn.Linear(head, CLASSES)

    def forward(self, x):
        x = self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))
        return self.classifier(x.mean((2, 3)))


def timm_model(model, eps):
    if model == "mobilenet_v2":   # mobilenetv2_100: ReLU6, no squeeze-excitation, 1280 features
        return TimmEfficientNet(MOBILENET_V2_STAGES, 1.0, 1.0, False, nn.ReLU6(), eps, 1280)
    width, depth = SCALES[model]
    return TimmEfficientNet(B0_STAGES, width, depth, True, nn.SiLU(), eps, make_divisible(1280 * width))


#
# EfficientNet-PyTorch: efficientnet_pytorch/model.py
#

class LukemelasMBConvBlock(nn.Module):
    def __init__(self, cin, cout, k, stride, expand, eps):
        super().__init__()
        mid, self.expand = cin * expand, expand
        self.has_skip = stride == 1 and cin == cout   # id_skip
        if expand != 1:
            self._expand_conv, self._bn0 = conv(cin, mid, 1), nn.BatchNorm2d(mid, eps=eps, momentum=0.01)
        self._depthwise_conv = conv(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=eps, momentum=0.01)
        squeezed = max(1, int(cin * 0.25))
        self._se_reduce, self._se_expand = conv(mid, squeezed, 1, bias=True), conv(squeezed, mid, 1, bias=True)
        self._project_conv, self._bn2 = conv(mid, cout, 1), nn.BatchNorm2d(cout, eps=eps, momentum=0.01)

    def forward(self, inputs):
        swish = nn.functional.silu
        x = swish(self._bn0(self._expand_conv(inputs))) if self.expand != 1 else inputs
        x = swish(self._bn1(self._depthwise_conv(x)))
        x = x * torch.sigmoid(self._se_expand(swish(self._se_reduce(x.mean((2, 3), keepdim=True)))))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.has_skip else x


class LukemelasEfficientNet(nn.Module):
    def __init__(self, model, eps=1e-3):   # batch_norm_epsilon=1e-3 in efficientnet_pytorch/utils.py
        super().__init__()
        width, depth = SCALES[model]
        stem, head = make_divisible(32 * width), make_divisible(1280 * width)
        self._conv_stem, self._bn0 = conv(CHANNELS, stem, 3, 2), nn.BatchNorm2d(stem, eps=eps, momentum=0.01)
        self._blocks = nn.ModuleList([LukemelasMBConvBlock(cin, cout, k, stride, expand, eps)
                                      for expand, k, stride, cin, cout in scaled_stages(B0_STAGES, width, depth)])
        self._conv_head = conv(self._blocks[-1]._bn2.num_features, head, 1)
        self._bn1 = nn.BatchNorm2d(head, eps=eps, momentum=0.01)
        self._fc = nn.Linear(head, CLASSES)

    def forward(self, x):
        x = nn.functional.silu(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = nn.functional.silu(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


#
# Commands
#

def build(model, names, eps):
    torch.manual_seed(step_torch.SEED)
    if model == "cnn_bn":
        m = step_torch.CnnBn(CLASSES, CHANNELS, SIZE)
    elif names == "torchvision" or (names == "timm" and model.startswith("resnet")):
        m = weights.build(model, CLASSES, CHANNELS)
    elif names in ("timm", "timm_tf"):
        m = timm_model(model, eps or (1e-5 if names == "timm" else 1e-3))
    else:
        m = LukemelasEfficientNet(model, eps or 1e-3)
    step_torch.randomise(m)
    return m.eval()


def save(sd, out, wrap=False, legacy=False, counters=True):
    sd = {k: v for k, v in sd.items() if counters or not k.endswith("num_batches_tracked")}
    if wrap:
        sd = {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}
    torch.save(sd, out, _use_new_zipfile_serialization=not legacy)


def make(a):
    m = build(a.model, a.names, a.eps)
    save(m.state_dict(), a.out, a.wrap, a.legacy, not a.no_counters)
    if a.ref:
        with torch.no_grad():
            np.save(a.ref, m(weights.test_images(a.n)).numpy())
    print(f"{a.out}: {a.model} as {a.names} names it, {len(m.state_dict())} tensors")


def compare(ref, got):
    return weights.logits_agree(np.load(got), np.load(ref), "PyTorch")


def order(path, params):
    names = [line.split()[0] for line in open(params)]
    got = list(weights.load(path))
    print(f"{path}: {len(got)} tensors, {'the' if got == names else 'NOT the'} names and order of {params}")
    return got == names


def odd(kind, out):
    """Files a user may hold that are not a plain state_dict."""
    if kind == "whole_model":
        torch.save(weights.build("resnet18", CLASSES, CHANNELS), out)
    elif kind == "training_checkpoint":   # as timm's train.py saves: the arguments beside the weights
        torch.save({"state_dict": weights.build("resnet18", CLASSES, CHANNELS).state_dict(),
                    "args": argparse.Namespace(lr=0.1)}, out)
    elif kind == "no_state_dict":
        torch.save({"epoch": 3, "optimizer": {"lr": torch.tensor(0.1)}}, out)


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        p = argparse.ArgumentParser()
        p.add_argument("model"), p.add_argument("names"), p.add_argument("out")
        p.add_argument("ref", nargs="?"), p.add_argument("n", nargs="?", type=int, default=0)
        p.add_argument("--wrap", action="store_true"), p.add_argument("--legacy", action="store_true")
        p.add_argument("--no-counters", action="store_true"), p.add_argument("--eps", type=float)
        make(p.parse_args(sys.argv[2:]))
    elif cmd == "odd":
        odd(*sys.argv[2:])
    elif not {"compare": compare, "order": order}[cmd](*sys.argv[2:]):
        sys.exit(1)


if __name__ == "__main__":
    main()
