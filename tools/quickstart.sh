#!/usr/bin/env bash
# The main job on a fresh machine: install, build, compile the Fashion-MNIST example.
# Until the CPU backend lands (issue 3) the example stops after the front end: its
# elaborated graph summary and statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
build/tlc examples/fashion_cnn.graph --stats "$@"
