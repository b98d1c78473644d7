#!/usr/bin/env bash
# The compiler's resource report for every model of graphs/ (tests/cuda/resources.py): per
# kernel, ptxas's registers, spills, stack and shared memory for sm_90, and whether each
# tensor-core kernel holds mma.sync and ldmatrix. CI runs it on cnn_bn and resnet18
# (cuda.resources); the large models take minutes of NVRTC and ptxas, so they run here.
#   bench/resources.sh [TLC] > resources.txt      (exit 1 if any model has a problem)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
tlc=${1:-$root/build/tlc}
status=0
for model in cnn_bn resnet18 resnet34 resnet50 mobilenet_v2 efficientnet_b0 efficientnet_b5; do
  echo "## $model"
  python3 "$root/tests/cuda/resources.py" "$tlc" "$root/graphs/$model.graph" || status=1
  echo
done
exit $status
