#!/usr/bin/python3
"""loader_torch.py DIR WORKERS EPOCHS: images/s of torchvision's ImageFolder + DataLoader (PIL
decoding) over DIR/train with ImageNet's pipeline at 224x224 (the one bench/loader_bench.c
runs), batches of 32, shuffled. WORKERS 0 decodes in this process (one core); N > 0 uses N
worker processes. The first epoch (worker start-up, page cache) is not timed."""
import sys
import time

import torch
from torchvision import datasets, transforms

root, workers, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
tf = transforms.Compose([
    transforms.Resize(256), transforms.CenterCrop(224), transforms.RandomHorizontalFlip(),
    transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
ds = datasets.ImageFolder(f"{root}/train", transform=tf)
loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers, drop_last=True,
                                     persistent_workers=workers > 0)
count = 0
for epoch in range(epochs + 1):
    if epoch == 1:
        start = time.perf_counter()
    for images, labels in loader:
        count += len(images) if epoch > 0 else 0
print(f"result: images_per_s={count / (time.perf_counter() - start):.1f} workers={workers} images={count}")
