"""The CPU time of one PyTorch training step, to set beside bench/step_profile's total for the
same model and batch (both CPU time, so that a machine shared with other work counts less).

    /usr/bin/python3 bench/cpu_step_torch.py MODEL SIZE THREADS BATCH
e.g. resnet18 224 1 8: torchvision's model with 10 classes, random weights and images, SGD
with momentum 0.9; two warm-up steps, then the mean of three.
"""
import sys
import time

import torch
import torchvision

name, size, threads, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(1)
model = getattr(torchvision.models, name)(num_classes=10)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))


def step():
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


step()
step()
cpu = time.process_time()
for _ in range(3):
    step()
print(f"{name} {size}x{size} batch {batch}, {threads} threads: {(time.process_time() - cpu) / 3 * 1e3:.0f} ms of CPU time a step")
