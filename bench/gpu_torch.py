"""PyTorch's side of bench/gpu.sh: the same experiment as a tlc benchmark trainer, trained on
the same ImageFolder with torchvision's DataLoader, timed the same way (the second epoch).

    python3 bench/gpu_torch.py --model resnet18 --image 224 --batch 128 --data DIR --mode eager
--mode eager: channels_last, bf16 autocast, cuDNN autotuning; --mode compile: the same under
torch.compile. --fixed freezes everything but the head (a fixed feature extractor).
--batch-on-device trains every step on the loader's first batch, kept on the device: PyTorch's
training speed without its loader (which decodes and crops JPEG files on --workers CPU
processes, and can be what an epoch waits for on a fast GPU), where tlc builds its batches on
the GPU. Prints "result: images_per_s=N peak_mem_mb=M".
"""
import argparse
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms


def cnn_bn(classes, image, blocks=5, widths=(32, 64, 128, 256, 256)):
    layers, c = [], 3
    for i in range(blocks):
        layers += [nn.Conv2d(c, widths[i], 3, padding=1, bias=False), nn.BatchNorm2d(widths[i]), nn.ReLU(), nn.MaxPool2d(2)]
        c = widths[i]
    return nn.Sequential(nn.Sequential(*layers), nn.Flatten(), nn.Linear(c * (image >> blocks) ** 2, 256), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(256, classes))


def build(name, classes, image, fixed):
    if name == "cnn_bn":
        return cnn_bn(classes, image), "adam"
    model = getattr(torchvision.models, name)(num_classes=classes)
    if fixed:
        head = model.fc if hasattr(model, "fc") else model.classifier
        for p in model.parameters():
            p.requires_grad = False
        for p in head.parameters():
            p.requires_grad = True
    return model, "sgd"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", type=int, default=224)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--data", required=True)
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--fixed", action="store_true")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-on-device", action="store_true")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    tf = transforms.Compose([transforms.RandomResizedCrop(args.image), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    data = torchvision.datasets.ImageFolder(f"{args.data}/train", tf)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, drop_last=True,
                                         num_workers=args.workers, pin_memory=dev.type == "cuda",
                                         persistent_workers=args.workers > 0)
    model, opt_name = build(args.model, args.classes, args.image, args.fixed)
    model = model.to(dev, memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, 1e-3) if opt_name == "adam" else torch.optim.SGD(params, 1e-3, momentum=0.9)
    step_model = torch.compile(model) if args.mode == "compile" else model
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = images = 0
    if args.batch_on_device:
        x, y = next(iter(loader))
        fixed = [(x.to(dev, memory_format=torch.channels_last), y.to(dev))] * len(loader)
    for epoch in range(2):   # the first epoch warms up (cuDNN autotuning, compilation); the second is timed
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        seen = 0
        for x, y in fixed if args.batch_on_device else loader:
            x = x.to(dev, non_blocking=True, memory_format=torch.channels_last)
            y = y.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                loss = loss_fn(step_model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += x.shape[0]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds, images = time.perf_counter() - start, seen
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else 0
    print(f"result: images_per_s={images / seconds:.1f} peak_mem_mb={peak:.0f} loss={loss.item():.4f}")


if __name__ == "__main__":
    main()
