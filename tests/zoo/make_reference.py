"""Regenerates the committed torchvision reference for the zoo tests (no network, no weights).

Run with the distribution's Python and python3-torchvision:  /usr/bin/python3 tests/zoo/make_reference.py

Writes, next to this file:
  MODEL.keys      every state_dict entry in order: "name d0xd1x..." ("name scalar" for 0-dim)
  reference.txt   "MODEL params=N macs=M" per model, where N sums numel over parameters()
                  and M counts forward multiply-accumulates of one image, from Conv2d
                  (output elements * in_channels/groups * kh * kw) and Linear (in * out) only.
"""
import os

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))

# (reference name, torchvision constructor, input side)
MODELS = [
    ("resnet18", "resnet18", 224),
    ("resnet34", "resnet34", 224),
    ("resnet50", "resnet50", 224),
    ("mobilenet_v2", "mobilenet_v2", 224),
    ("efficientnet_b0", "efficientnet_b0", 224),
    ("efficientnet_b5", "efficientnet_b5", 456),
    ("resnet18_32", "resnet18", 32),
    ("mobilenet_v2_32", "mobilenet_v2", 32),
    ("efficientnet_b0_64", "efficientnet_b0", 64),
]


def count_macs(model, side):
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, torch.nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    for h in handles:
        h.remove()
    return total


def main():
    lines = []
    for name, ctor, side in MODELS:
        model = getattr(torchvision.models, ctor)(weights=None, num_classes=1000)
        if name == ctor:
            with open(os.path.join(HERE, name + ".keys"), "w") as f:
                for key, t in model.state_dict().items():
                    shape = "x".join(str(d) for d in t.shape) if t.dim() else "scalar"
                    f.write(f"{key} {shape}\n")
        params = sum(p.numel() for p in model.parameters())
        lines.append(f"{name} params={params} macs={count_macs(model, side)}\n")
    with open(os.path.join(HERE, "reference.txt"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
