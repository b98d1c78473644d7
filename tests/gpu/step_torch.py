"""One training step of a tlc trainer against PyTorch on the same machine.

tests/gpu/step.sh runs it here on the CPU (ctest); tests/gpu/run.sh runs it on the GPU
machine with --device cuda: the trainer on the GPU, PyTorch on cuda.

  step_torch.py call MODEL
      the model call that builds MODEL's trainer: tlc step_zoo.graph --set "model=CALL"
  step_torch.py run MODEL TRAINER DATA WORK [--device cpu|cuda]
      PyTorch builds MODEL (cnn_bn, resnet18, mobilenet_v2, efficientnet_b5; 1 channel, 28x28,
      10 classes) with seeded weights, batchnorm affine parameters and running statistics,
      and saves them as WORK/before.safetensors. TRAINER (built from step_zoo.graph) loads
      them, trains one step on the first BATCH training images of the IDX files in DATA and
      exports WORK/after.safetensors. PyTorch trains the same step on the same images, in
      float32 and in float64. One line per model says PASS or FAIL, with the worst tensor;
      exit status 1 on a mismatch.

The recipe below must be step_zoo.graph's: a difference makes the comparison fail. Momentum
is not seen: SGD's first step takes the gradient as its momentum buffer.

Tolerances. tlc and PyTorch both compute in float32 but sum in different orders (tlc's
kernels; PyTorch's CPU convolutions or cuDNN's algorithms), so they differ by rounding. The
reference is PyTorch in float64 on the same device, where rounding is negligible:
  - loss: relative difference at most LOSS_TOL = 1e-4. Measured on the CPU: below 2e-6.
  - each parameter and each running statistic: the update (after - before), as
    max |update_tlc - update_float64| / max |update_float64|, after allowing one float32 ulp
    of the stored value per element (both sides round weight + update), at most UPDATE_TOL =
    1e-3, or NOISE_MULT = 10 times PyTorch float32's own error where that is larger. The
    second case is a gradient that sums large terms which cancel, such as the shift of a
    projection batchnorm whose output feeds another batchnorm: there PyTorch's float32 is
    itself 1e-3 to 1e-2 off. Measured on the CPU: at most 6e-5 (cnn_bn, resnet18), and 0.6 of
    the tolerance for mobilenet_v2 and efficientnet_b5. A 2% error in the learning rate, no
    weight decay or no label smoothing is 2e-2 to 1e-1.
  - num_batches_tracked: the value before plus one, on both sides.
A ReLU's gradient is discontinuous: an input within rounding of its kink (0, and 6 for
ReLU6) takes either branch, and on resnet18 one input 2.6e-6 from 0 moved one channel's update
by 20% and every update upstream by 3%. So, before saving the weights, clear_kinks shifts
batchnorm's (or a linear layer's) bias where needed to keep every such input at least MARGIN
= 1e-4 from a kink, in float64, for both sides alike.
"""
import argparse
import copy
import gzip
import json
import os
import subprocess
import sys

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS
import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "weights")]
import weights   # noqa: E402  (tests/weights/weights.py: safetensors save/load, torchvision models)

# step_zoo.graph's recipe.
BATCH = 16
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 0.001
LABEL_SMOOTHING = 0.1
MEAN, STD = 0.286, 0.353
CLASSES, CHANNELS, SIZE = 10, 1, 28
SEED = 1
CALLS = {
    "cnn_bn": "cnn_bn(input = [1, 28, 28], dropout = 0)",
    "resnet18": "resnet18(input = [1, 28, 28])",
    "mobilenet_v2": "mobilenet_v2(input = [1, 28, 28], dropout = 0)",
    "efficientnet_b5": "efficientnet_b5(input = [1, 28, 28], dropout = 0, drop_path = 0)",
}
LOSS_TOL, UPDATE_TOL, NOISE_MULT = 1e-4, 1e-3, 10
MARGIN = 1e-4
KINKS = {torch.nn.ReLU: (0.0,), torch.nn.ReLU6: (0.0, 6.0)}


class CnnBn(torch.nn.Module):
    """graphs/cnn_bn.graph with its state_dict names: two conv-bn-relu-maxpool blocks at 28x28."""

    def __init__(self, classes, channels, size, hidden=256, dropout=0.0):
        super().__init__()
        blocks, widths, c = (5 if size >= 112 else 2), [32, 64, 128, 256, 256], channels
        stages = []
        for w in widths[:blocks]:
            stages.append(torch.nn.Sequential(torch.nn.Conv2d(c, w, 3, padding=1, bias=False),
                                              torch.nn.BatchNorm2d(w), torch.nn.ReLU(), torch.nn.MaxPool2d(2)))
            c = w
        self.features = torch.nn.Sequential(*stages)
        side = size >> blocks
        self.classifier = torch.nn.Sequential(torch.nn.Linear(c * side * side, hidden), torch.nn.ReLU(),
                                              torch.nn.Dropout(dropout), torch.nn.Linear(hidden, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def build(model):
    """The model with PyTorch's initialisation, dropout and stochastic depth off."""
    torch.manual_seed(SEED)
    m = CnnBn(CLASSES, CHANNELS, SIZE) if model == "cnn_bn" else weights.build(model, CLASSES, CHANNELS)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
            mod.p = 0.0
    return m


def randomise(m):
    """Batchnorm's scale near 1, its shift and running statistics away from their defaults, so
    that the step uses and updates values that a wrong formula would get wrong; the other
    weights keep PyTorch's initialisation (seeded)."""
    g = torch.Generator().manual_seed(SEED)
    normal = lambda t, mean, std: t.copy_(mean + std * torch.randn(t.shape, generator=g))  # noqa: E731
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                normal(mod.weight, 1, 0.2)
                normal(mod.bias, 0, 0.1)
                normal(mod.running_mean, 0, 0.1)
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
                mod.num_batches_tracked.fill_(int(torch.randint(0, 1 << 20, (), generator=g)))


def kink_distance(act, v):
    """Each element's distance to the nearest kink of activation module act."""
    return torch.stack([(v - k).abs() for k in KINKS[type(act)]]).amin(0)


def shift_off_kinks(values, kinks):
    """A shift that puts every value of one channel at least MARGIN from every kink."""
    for k in range(1, 100):
        s = (k + 1) // 2 * (1 if k % 2 else -1) * 2.5 * MARGIN
        if min((values + s - kink).abs().min().item() for kink in kinks) >= MARGIN:
            return s
    raise RuntimeError("no shift clears the kinks")


def clear_kinks(m, x):
    """Moves every input of a ReLU or ReLU6 at least MARGIN away from its kinks by shifting the
    bias of the layer that produced it: batchnorm's shift or a linear layer's bias, which the
    activation's input is, plus a shortcut at ResNet's second ReLU. One forward pass in
    float64; each shift is applied to the activation's input too, so later layers see it.
    Returns the number of channels shifted."""
    m64 = copy.deepcopy(m).double().train()
    names = {mod: n for n, mod in m64.named_modules()}
    owner, shifts = [None], {}

    def produced(mod, inputs, output):
        owner[0] = mod

    def activation(mod, inputs):
        v, kinks = inputs[0], KINKS[type(mod)]
        s = torch.zeros(v.shape[1], dtype=v.dtype)
        for c in torch.nonzero(kink_distance(mod, v).transpose(0, 1).flatten(1).amin(1) < MARGIN).flatten().tolist():
            s[c] = shift_off_kinks(v[:, c], kinks)
        if s.any():
            name = names[owner[0]]
            shifts[name] = shifts.get(name, 0) + s
        return (v + s.view(1, -1, *[1] * (v.dim() - 2)),)

    hooks = [mod.register_forward_hook(produced) for mod in m64.modules() if biased(mod)]
    hooks += [mod.register_forward_pre_hook(activation) for mod in m64.modules() if type(mod) in KINKS]
    with torch.no_grad():
        m64(x.double())
        for h in hooks:
            h.remove()
        for name, s in shifts.items():
            m.get_submodule(name).bias.add_(s.float())
    return sum(int((s != 0).sum()) for s in shifts.values())


def biased(mod):
    return isinstance(mod, torch.nn.BatchNorm2d) or (isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d))
                                                     and mod.bias is not None)


def nearest_kink(m, x):
    """The smallest distance of any ReLU or ReLU6 input to a kink, in float64 (inf if none)."""
    m64, nearest = copy.deepcopy(m).double().train(), [float("inf")]

    def look(mod, inputs):
        nearest[0] = min(nearest[0], kink_distance(mod, inputs[0]).min().item())

    for mod in m64.modules():
        if type(mod) in KINKS:
            mod.register_forward_pre_hook(look)
    with torch.no_grad():
        m64(x.double())
    return nearest[0]


def idx(data, name):
    """DATA/NAME.gz, else DATA/NAME, as the trainer chooses; the bytes after the header."""
    header = 16 if "images" in name else 8
    path = os.path.join(data, name)
    raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
    return np.frombuffer(raw, np.uint8, offset=header)


def first_batch(data):
    """The trainer's first BATCH training images (val = 0: nothing held out), normalised as
    step_zoo.graph's normalize: (pixel / 255 - mean) / std in float32."""
    pixels = idx(data, "train-images-idx3-ubyte")[:BATCH * SIZE * SIZE]
    labels = idx(data, "train-labels-idx1-ubyte")[:BATCH]
    x = (pixels.astype(np.float32) / np.float32(255) - np.float32(MEAN)) / np.float32(STD)
    return (torch.from_numpy(x.reshape(BATCH, CHANNELS, SIZE, SIZE)),
            torch.from_numpy(labels.astype(np.int64)))


def run_trainer(trainer, data, work, device):
    """One step: BATCH images, batch BATCH, one epoch. Returns (loss, after's tensors)."""
    out = os.path.join(work, "run")
    cmd = [trainer, "--device", device, "--data", data, "--limit", str(BATCH), "--epochs", "1", "--seed", str(SEED),
           "--out", out, "--weights", os.path.join(work, "before.safetensors"),
           "--export", os.path.join(work, "after.safetensors")]
    with open(os.path.join(work, "trainer.txt"), "w") as log:
        status = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    if status != 0:
        sys.exit(f"the trainer failed with status {status}:\n" + open(os.path.join(work, "trainer.txt")).read())
    epochs = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    if len(epochs) != 1:
        sys.exit(f"expected one epoch in metrics.jsonl, found {len(epochs)}")
    return epochs[0]["loss"], weights.load(os.path.join(work, "after.safetensors"))


def torch_step(m, x, y, device):
    """PyTorch's step: batchnorm in training mode, the mean cross-entropy, SGD."""
    m = m.to(device).train()
    opt = torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    loss = F.cross_entropy(m(x.to(device)), y.to(device), label_smoothing=LABEL_SMOOTHING)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item(), {k: v.detach().cpu().numpy() for k, v in m.state_dict().items()}


def update_error(before, got, want):
    """max |update_got - update_want| / max |update_want|, allowing one float32 ulp of the
    stored result per element."""
    b, g, w = (a.astype(np.float64) for a in (before, got, want))
    slack = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    excess = np.maximum(np.abs((g - b) - (w - b)) - slack, 0).max()
    scale = np.abs(w - b).max()
    return excess / scale if scale > 0 else (0.0 if excess == 0 else np.inf)


def compare(before, got, exact, single):
    """tlc's tensors (got) against PyTorch's in float64 (exact), each within its tolerance:
    UPDATE_TOL, or NOISE_MULT times PyTorch's own float32 error (single) where that is larger.
    Returns (failures, [(error / tolerance, error, tolerance, name)])."""
    failures, rows = [], []
    if list(got) != list(exact):
        failures.append(f"names differ: {sorted(set(got) ^ set(exact))[:5]} (order or set)")
    for name in exact:
        if name not in got:
            continue
        if got[name].shape != exact[name].shape:
            failures.append(f"{name}: shape {list(got[name].shape)} from tlc, {list(exact[name].shape)} from PyTorch")
        elif name.endswith("num_batches_tracked"):
            if not got[name] == single[name] == before[name] + 1:
                failures.append(f"{name}: {got[name]} from tlc, {single[name]} from PyTorch, {before[name]} before")
        else:
            err = update_error(before[name], got[name], exact[name])
            tol = max(UPDATE_TOL, NOISE_MULT * update_error(before[name], single[name], exact[name]))
            rows.append((err / tol, err, tol, name))
            if not err <= tol:
                failures.append(f"{name}: update error {err:.2e}, tolerance {tol:.1e}")
    return failures, rows


def deterministic(device):
    if device == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


def run(model, trainer, data, work, device):
    deterministic(device)
    os.makedirs(work, exist_ok=True)
    x, y = first_batch(data)
    m = build(model)
    randomise(m)
    shifted = clear_kinks(m, x)
    nearest = nearest_kink(m, x)
    state = {k: v.detach().clone() for k, v in m.state_dict().items()}
    weights.save(os.path.join(work, "before.safetensors"), state)
    before = {k: v.numpy() for k, v in state.items()}
    tlc_loss, got = run_trainer(trainer, data, work, device)
    exact_loss, exact = torch_step(copy.deepcopy(m).double(), x.double(), y, device)
    single_loss, single = torch_step(m, x, y, device)
    failures, rows = compare(before, got, exact, single)
    if nearest < MARGIN / 2:
        failures.append(f"an activation's input is {nearest:.1e} from a kink after the shifts")
    loss_err = abs(tlc_loss - exact_loss) / abs(exact_loss)
    if not loss_err <= LOSS_TOL:
        failures.append(f"loss {tlc_loss:.7f} from tlc, {exact_loss:.7f} from PyTorch (float64)")
    _, err, tol, name = max(rows) if rows else (0, np.nan, np.nan, "none")
    print(f"{'FAIL' if failures else 'PASS'} {model} ({device}, torch {torch.__version__}): loss {tlc_loss:.6f}, "
          f"PyTorch {single_loss:.6f} (float64 {exact_loss:.6f}; relative {loss_err:.1e}, tolerance {LOSS_TOL:.0e}); "
          f"{len(exact)} tensors, worst update {name} {err:.2e} (tolerance {tol:.1e}); "
          f"{shifted} channels shifted off ReLU kinks, nearest input {nearest:.1e} from one")
    for f in failures[:20]:
        print(f"  FAIL: {f}")
    return not failures


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("call")
    c.add_argument("model", choices=CALLS)
    r = sub.add_parser("run")
    r.add_argument("model", choices=CALLS)
    r.add_argument("trainer")
    r.add_argument("data")
    r.add_argument("work")
    r.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = p.parse_args()
    if a.cmd == "call":
        print(CALLS[a.model])
        return
    sys.exit(0 if run(a.model, os.path.abspath(a.trainer), a.data, a.work, a.device) else 1)


if __name__ == "__main__":
    main()
