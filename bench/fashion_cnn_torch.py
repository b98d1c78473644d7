"""PyTorch eager version of examples/fashion_cnn.graph, for the CPU benchmark.

The same model (cnn_bn at 1x28x28: two conv-BN-ReLU-maxpool blocks, linear 3136->256,
ReLU, dropout 0.5, linear 256->10), batch, optimizer (Adam, lr 1e-3), augmentation
(random crop 28 with 2 pixels of padding, horizontal flip) and normalisation, on the same
Fashion-MNIST files. The images are decoded once into memory, as tlc's trainer does, so
the comparison is of the training step, not of a data loader.

    /usr/bin/python3 bench/fashion_cnn_torch.py --limit 20000 --threads 2
prints "result: images_per_s=N train_time_s=T loss=L".
"""
import argparse
import gzip
import time

import numpy as np
import torch
from torch import nn


def load_images(path):
    with gzip.open(path) as f:
        data = f.read()
    count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, 1, rows, cols)


def load_labels(path):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)


def cnn_bn():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(nn.Sequential(*block(1, 32), *block(32, 64)), nn.Flatten(),
                         nn.Sequential(nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10)))


def augment(x, generator):
    n = x.shape[0]
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=generator)
    dx = torch.randint(0, 5, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(28)[None, :])[:, None, :, None].expand(n, 1, 28, 32)
    crop = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(28)[None, :])[:, None, None, :].expand(n, 1, 28, 28)
    crop = crop.gather(3, cols)
    flip = torch.rand(n, generator=generator) < 0.5
    crop[flip] = crop[flip].flip(3)
    return crop


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    images = torch.from_numpy(load_images(f"{args.data}/train-images-idx3-ubyte.gz")[:args.limit].copy())
    labels = torch.from_numpy(load_labels(f"{args.data}/train-labels-idx1-ubyte.gz")[:args.limit].copy())
    model = cnn_bn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    order = torch.randperm(len(images), generator=generator)
    model.train()
    steps = len(images) // args.batch
    start = time.perf_counter()
    total = 0.0
    for s in range(steps):
        idx = order[s * args.batch:(s + 1) * args.batch]
        x = augment(images[idx].float() / 255.0, generator)
        x = (x - 0.286) / 0.353
        loss = nn.functional.cross_entropy(model(x), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    seconds = time.perf_counter() - start
    print(f"result: images_per_s={steps * args.batch / seconds:.0f} train_time_s={seconds:.1f} loss={total / steps:.4f}")


if __name__ == "__main__":
    main()
