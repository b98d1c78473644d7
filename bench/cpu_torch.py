"""PyTorch eager training step for the CPU benchmarks (cpu_models.sh): the same model, batch,
optimizer (SGD, momentum 0.9), augmentation (horizontal flip) and normalisation as the tlc
trainer it is compared with, on the same image folder, decoded once into memory as the tlc
trainer's cache does, so that the comparison is of the training step.

    /usr/bin/python3 bench/cpu_torch.py --model resnet18 --images DIR --batch 32 --threads 2 --steps 5
prints "result: images_per_s=N peak_rss_mb=M loss=L" for the second of two epochs of `steps`
steps (the first warms up), and the process's peak resident memory.
"""
import argparse
import os
import resource
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn


def vgg11_bn(classes):
    # torchvision's vgg11_bn features with the CIFAR classifier (graphs/vgg.graph)
    layers, c = [], 3
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(nn.Sequential(*layers), nn.Flatten(), nn.Linear(512, classes))


def model_of(name, classes):
    if name == "vgg11_bn":
        return vgg11_bn(classes)
    return getattr(torchvision.models, name)(num_classes=classes)


def load(folder):
    classes = sorted(os.listdir(folder))
    images, labels = [], []
    for k, c in enumerate(classes):
        for f in sorted(os.listdir(f"{folder}/{c}")):
            images.append(np.asarray(Image.open(f"{folder}/{c}/{f}").convert("RGB")).transpose(2, 0, 1).copy())
            labels.append(k)
    return torch.from_numpy(np.stack(images)), torch.tensor(labels), len(classes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--frozen", action="store_true", help="only the last layer trains (fixed feature extractor)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    images, labels, classes = load(f"{args.images}/train")
    model = model_of(args.model, classes)
    model.train()
    params = list(model.parameters())
    if args.frozen:
        for q in params[:-2]:
            q.requires_grad = False
        params = params[-2:]
    opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    g = torch.Generator().manual_seed(1)
    for epoch in range(2):
        order = torch.randperm(len(images), generator=g)
        start = time.perf_counter()
        total = 0.0
        for s in range(args.steps):
            idx = order[(s * args.batch) % len(images):][:args.batch]
            x = images[idx].float() / 255.0
            flip = torch.rand(len(idx), generator=g) < 0.5
            x[flip] = x[flip].flip(3)
            x = (x - mean) / std
            loss = nn.functional.cross_entropy(model(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"result: images_per_s={args.steps * args.batch / seconds:.2f} peak_rss_mb={rss:.0f} loss={total / args.steps:.4f}")


if __name__ == "__main__":
    main()
