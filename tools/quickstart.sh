#!/usr/bin/env bash
# The main job on a fresh machine: install, build tlc, compile the Fashion-MNIST example
# into a trainer and train it on the CPU (15 epochs; about 17 minutes on 2 idle cores).
# Extra arguments go to the trainer (e.g. --epochs 2, --limit 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
build/tlc examples/fashion_cnn.graph --stats
build/tlc examples/fashion_cnn.graph -o build/train_fashion
build/train_fashion --out runs/fashion_cnn "$@"
