#!/usr/bin/env bash
# step.sh TLC SCRATCH MODE: one training step of a trainer built from step_zoo.graph against
# PyTorch on this machine's CPU (step_torch.py; its header states the tolerances and why).
#   MODE cnn_bn | resnet18 | mobilenet_v2 | efficientnet_b5: from the same weights and the same
#     16 Fashion-MNIST images, the loss and every tensor after the step must agree.
#   MODE wrong_lr: cnn_bn's trainer built with a learning rate 2% too high: the comparison must
#     fail on the updates (not on the loss, which comes before them), or it could not fail.
# Skipped (status 77) when /usr/bin/python3 has no torch and torchvision.
set -u
tlc=$1 dir=$2 mode=$3
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
data=/usr/share/datasets/fashion-mnist
if ! "$py" -c 'import torch, torchvision' 2> /dev/null; then
  echo "SKIP: $py cannot import torch and torchvision (Debian: python3-torch python3-torchvision)"
  exit 77
fi
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2

model=$mode extra=()
[ "$mode" = wrong_lr ] && model=cnn_bn extra=(--set optimizer.lr=0.102)
call=$("$py" "$here/step_torch.py" call "$model") || exit 2
if ! "$tlc" "$here/step_zoo.graph" --set "model=$call" "${extra[@]}" -o train > build.txt 2>&1; then
  cat build.txt
  echo "FAIL: tlc could not build the $model trainer"
  exit 1
fi
"$py" "$here/step_torch.py" run "$model" train "$data" work > out.txt 2>&1
rc=$?
cat out.txt
[ "$mode" = wrong_lr ] || exit $rc
if [ $rc -eq 1 ] && grep -q '^  FAIL: .*update error' out.txt && ! grep -q 'FAIL: loss' out.txt; then
  echo "ok: a learning rate 2% off fails the comparison"
  exit 0
fi
echo "FAIL: a learning rate 2% off went unnoticed (status $rc)"
exit 1
