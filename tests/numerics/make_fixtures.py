"""Writes the PyTorch reference tensors the parity test compares tlc's kernels with.

Run with the distribution's Python and python3-torch / python3-torchvision (CPU):
    /usr/bin/python3 tests/numerics/make_fixtures.py

No weights are downloaded or committed: every parameter, buffer and input comes from the
deterministic generator below, which tests/numerics/parity.c implements identically.
    u(name, i)  = a uniform number in [-1, 1) from splitmix64(fnv1a64(name) ^ i)
    conv/linear weight and bias:  u * 1/sqrt(fan_in)
    batchnorm weight 1 + 0.1 u, bias 0.1 u, running_mean 0.1 u, running_var 1 + 0.5 |u|
    input x[i] = u("input", i); label of sample n = (3 n + 1) mod classes
One training-mode forward and backward (batch statistics, dropout and stochastic depth
off) give the fixture, a text file of lines: "batch B", "side S", "classes C", "loss L",
"logits v...", "eval_logits v..." (evaluation mode, running statistics, before the
training step), and per parameter "grad NAME SUM ABS_SUM i0 g0 i1 g1 i2 g2 i3 g3": the sum
and the sum of absolute values of its gradient, and four sampled elements. The optimizer fixtures hold every parameter of a small linear
model after three SGD (momentum, Nesterov, weight decay), Adam or AdamW steps.
"""
import collections
import os

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return h


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def uniform(name, count):
    base = fnv1a64(name)
    return torch.tensor([(splitmix64(base ^ i) >> 40) / float(1 << 23) - 1.0 for i in range(count)],
                        dtype=torch.float64).float()


def fill(model):
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, t in model.state_dict().items():
            owner, leaf = name.rsplit(".", 1)
            m = modules[owner]
            if leaf == "num_batches_tracked":
                continue
            u = uniform(name, t.numel()).reshape(t.shape)
            if isinstance(m, torch.nn.BatchNorm2d):
                value = {"weight": 1 + 0.1 * u, "bias": 0.1 * u, "running_mean": 0.1 * u,
                         "running_var": 1 + 0.5 * u.abs()}[leaf]
            else:
                fan_in = m.weight[0].numel()
                value = u / fan_in ** 0.5
            t.copy_(value)


def sample_indices(name, count):
    base = fnv1a64(name + "#sample")
    return [splitmix64(base ^ i) % count for i in range(4)]


def fixture(model, batch, side, classes):
    fill(model)
    for m in model.modules():   # randomness off: the test compares one deterministic step
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if type(m).__name__ == "StochasticDepth":
            m.p = 0.0
    x = uniform("input", batch * 3 * side * side).reshape(batch, 3, side, side)
    model.eval()   # first, before training mode moves the running statistics
    with torch.no_grad():
        eval_logits = model(x)
    model.train()
    labels = torch.tensor([(3 * n + 1) % classes for n in range(batch)])
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        g = p.grad.flatten().double()
        idx = sample_indices(name, g.numel())
        grads[name] = {"sum": g.sum().item(), "abs_sum": g.abs().sum().item(),
                       "samples": [[i, g[i].item()] for i in idx]}
    lines = [f"batch {batch}", f"side {side}", f"classes {classes}", f"loss {loss.item()!r}",
             "logits " + " ".join(repr(v) for v in logits.detach().flatten().tolist()),
             "eval_logits " + " ".join(repr(v) for v in eval_logits.flatten().tolist())]
    for name, g in grads.items():
        samples = " ".join(f"{i} {v!r}" for i, v in g["samples"])
        lines.append(f"grad {name} {g['sum']!r} {g['abs_sum']!r} {samples}")
    return "\n".join(lines) + "\n"


OPTIMIZERS = {   # the same settings as tests/numerics/optim_*.graph
    "sgd": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda params: torch.optim.Adam(params, lr=0.01, weight_decay=0.05),
    "adamw": lambda params: torch.optim.AdamW(params, lr=0.01, weight_decay=0.1),
}


def optimizer_fixture(make_optimizer, steps=3):
    """Flatten and linear on 3x4x4 images, three steps on one batch: every parameter after."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))
    fill(model)
    x = uniform("input", 4 * 48).reshape(4, 3, 4, 4)
    labels = torch.tensor([(3 * n + 1) % 5 for n in range(4)])
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        optimizer.step()
    return "".join(f"param {name} " + " ".join(repr(v) for v in p.detach().flatten().tolist()) + "\n"
                   for name, p in model.named_parameters())


def conv_forms(classes=5):
    """tests/numerics/parity_convs.graph: every form of convolution, names as there."""
    nn = torch.nn
    layers = [("pre", nn.Conv2d(3, 6, 1)), ("stem", nn.Conv2d(6, 16, 7, stride=2, padding=3, bias=False)), ("bn1", nn.BatchNorm2d(16)),
              ("r1", nn.ReLU()), ("c3", nn.Conv2d(16, 20, 3, padding=1)), ("r2", nn.ReLU()),
              ("dil", nn.Conv2d(20, 16, 3, padding=2, dilation=2, bias=False)), ("bn2", nn.BatchNorm2d(16)),
              ("r3", nn.ReLU()), ("c3s2", nn.Conv2d(16, 66, 3, stride=2, padding=1, bias=False)),
              ("bn3", nn.BatchNorm2d(66)), ("r4", nn.ReLU()), ("pw", nn.Conv2d(66, 70, 1)), ("r5", nn.ReLU()),
              ("ds", nn.Conv2d(70, 32, 1, stride=2, bias=False)),
              ("dw", nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)), ("r6", nn.ReLU()),
              ("g", nn.Conv2d(32, 24, 3, padding=1, groups=2)), ("small", nn.Conv2d(24, 40, 3, padding=1, bias=False)),
              ("bn4", nn.BatchNorm2d(40)), ("r7", nn.ReLU()), ("odd", nn.Conv2d(40, 21, 3, padding=1)),
              ("r8", nn.ReLU()), ("small2", nn.Conv2d(21, 48, 3, stride=2, padding=1)), ("r9", nn.ReLU()),
              ("tiny", nn.Conv2d(48, 24, 3, padding=1, bias=False)), ("bn5", nn.BatchNorm2d(24)), ("r10", nn.ReLU()),
              ("one", nn.Conv2d(24, 16, 3, stride=2, padding=1)), ("r11", nn.ReLU()),
              ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(16, classes))]
    return nn.Sequential(collections.OrderedDict(layers))


def depthwise_forms(classes=4):
    """tests/numerics/parity_depthwise.graph: every form of depthwise convolution, names as there."""
    nn = torch.nn
    layers = [("pre", nn.Conv2d(3, 12, 1)), ("a", nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=12)), ("r1", nn.ReLU()),
              ("b", nn.Conv2d(12, 12, 5, padding=2, groups=12, bias=False)), ("bn", nn.BatchNorm2d(12)), ("r2", nn.ReLU()),
              ("c", nn.Conv2d(12, 12, 5, stride=2, padding=2, groups=12, bias=False)),
              ("d", nn.Conv2d(12, 12, 3, padding=2, dilation=2, groups=12)), ("r3", nn.ReLU()),
              ("e", nn.Conv2d(12, 12, 7, stride=2, padding=3, groups=12)),
              ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(12, classes))]
    return nn.Sequential(collections.OrderedDict(layers))


def main():
    torch.manual_seed(0)
    cases = {
        # Batches large enough that the last batchnorms (1x1 and 2x2 maps) are well conditioned.
        "resnet18_32": (torchvision.models.resnet18(num_classes=10), 8, 32, 10),
        "efficientnet_b0_64": (torchvision.models.efficientnet_b0(num_classes=5), 4, 64, 5),
        "convs": (conv_forms(), 5, 25, 5),
        "depthwise": (depthwise_forms(), 3, 57, 4),
    }
    for name, (model, batch, side, classes) in cases.items():
        with open(os.path.join(HERE, "fixtures", name + ".txt"), "w") as f:
            f.write(fixture(model, batch, side, classes))
    for name, make_optimizer in OPTIMIZERS.items():
        with open(os.path.join(HERE, "fixtures", f"optim_{name}.txt"), "w") as f:
            f.write(optimizer_fixture(make_optimizer))


if __name__ == "__main__":
    main()
