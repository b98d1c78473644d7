#!/usr/bin/env bash
# weights.sh TLC SCRATCH MODE: weights in and out against torchvision (weights.py).
#   MODE resnet18 | mobilenet_v2 | efficientnet_b5: torchvision builds the model (1 input
#     channel, 7 classes) with seeded random weights and batchnorm statistics and saves it as
#     safetensors; a tlc trainer of the same model with 10 classes loads it with --eval,
#     says it re-initialises the head, and exports; every other tensor must come back
#     bit-identical, names and order as torchvision's.
#   MODE logits: resnet18 trains one epoch on 256 images and writes --export and --logits;
#     torchvision, given the export, must produce the same test logits; then the clear
#     errors of --weights (another model, a mis-shaped or extra tensor, truncated, missing
#     and foreign files), and the experiment's `weights` setting resolved at compile time.
set -u
tlc=$1 dir=$2 mode=$3
here=$(cd "$(dirname "$0")" && pwd)
py() { /usr/bin/python3 "$here/weights.py" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2

build() {  # build MODEL BATCH
  "$tlc" "$here/weights.graph" --set "model=$1(classes = 10, input = [1, 28, 28])" --set "batch=$2" -o train \
    || fail "tlc could not build the $1 trainer"
}

# expect_error WHAT PATTERN ARGS...: the trainer fails with status 1, PATTERN on stderr, no export.
expect_error() {
  local what=$1 pattern=$2
  shift 2
  ./train --limit 64 --out err "$@" --export never.safetensors > out.txt 2> err.txt
  local rc=$?
  [ $rc -eq 1 ] || fail "$what: exit status $rc, expected 1"
  grep -qF -- "$pattern" err.txt || fail "$what: expected '$pattern' in: $(cat err.txt)"
  [ ! -e never.safetensors ] || fail "$what: an export was written"
  echo "ok: $what: $(cat err.txt)"
}

if [ "$mode" != logits ]; then
  build "$mode" 8
  py make "$mode" 7 given.safetensors || fail "torchvision could not write the weights"
  ./train --limit 8 --eval given.safetensors --export exported.safetensors > out.txt || fail "$(cat out.txt)"
  cat out.txt
  grep -q "classification head is re-initialised.*\[7, .*\] in the file, \[10, .*\] here" out.txt \
    || fail "no line about the re-initialised head"
  py same "$mode" given.safetensors exported.safetensors || exit 1
  exit 0
fi

build resnet18 32
extra=$(ldd train | grep -v -E 'linux-vdso|libc\.so|libm\.so|ld-linux' || true)
[ -z "$extra" ] || fail "the trainer needs more than the C library: $extra"
./train --limit 256 --epochs 1 --out run --export exported.safetensors --logits logits.npy > out.txt \
  || fail "$(cat out.txt)"
cat out.txt
py logits exported.safetensors logits.npy 256 || exit 1
# The same logits from the checkpoint and from the export, read back by the trainer.
./train --limit 256 --eval run/last.ckpt --logits ckpt.npy > /dev/null || fail "--eval of the checkpoint"
./train --limit 256 --eval exported.safetensors --logits back.npy > /dev/null || fail "--eval of the export"
cmp -s logits.npy ckpt.npy || fail "--eval of last.ckpt gives other logits"
cmp -s logits.npy back.npy || fail "--eval of the exported safetensors gives other logits"
./train --limit 64 --epochs 1 --out again --weights run/last.ckpt > out.txt || fail "--weights of a checkpoint"
grep -q "weights: run/last.ckpt: 122 tensors loaded (tlc checkpoint)" out.txt || fail "$(cat out.txt)"

py make mobilenet_v2 10 mobilenet.safetensors > /dev/null
py make resnet18 10 rgb.safetensors 3 > /dev/null
py extra exported.safetensors extra.safetensors
head -c 100000 exported.safetensors > truncated.safetensors
head -c 50 exported.safetensors > header_cut.safetensors
echo "not weights" > junk.bin
expect_error "another model" "mobilenet.safetensors: tensor 'conv1.weight' [64, 1, 7, 7] of this model is not in the file" \
  --weights mobilenet.safetensors
expect_error "mis-shaped" "rgb.safetensors: tensor 'conv1.weight' has shape [64, 3, 7, 7] in the file, [64, 1, 7, 7] in this model" \
  --weights rgb.safetensors
expect_error "extra tensor" "extra.safetensors: tensor 'extra.weight' [3, 5] of the file is not in model 'resnet18'" \
  --weights extra.safetensors
expect_error "truncated data" "truncated.safetensors: tensor '" --weights truncated.safetensors
grep -q "beyond the .*-byte data area (truncated file?)" err.txt || fail "truncation not named"
expect_error "truncated header" "header_cut.safetensors: header length" --weights header_cut.safetensors
expect_error "missing file" "nope.safetensors: cannot open: No such file" --weights nope.safetensors
expect_error "neither format" "junk.bin: not a tlc checkpoint" --weights junk.bin
./train --weights exported.safetensors --resume run/last.ckpt > /dev/null 2>&1
[ $? -eq 2 ] || fail "--weights with --resume is not a usage error"

# `weights = "w.safetensors"` is relative to the .graph file that says it; with --set, to
# the current directory. It becomes the trainer's default for --weights.
mkdir -p sub
sed 's/^  seed = 1$/  seed = 1\n  weights = "w.safetensors"/' "$here/weights.graph" > sub/exp.graph
"$tlc" sub/exp.graph --emit=c | grep -qF ".weights = \"$PWD/sub/w.safetensors\"" || fail "weights not resolved against sub/"
"$tlc" sub/exp.graph --set 'weights="x.safetensors"' --emit=c | grep -qF ".weights = \"$PWD/x.safetensors\"" \
  || fail "--set weights not resolved against the current directory"
"$tlc" "$here/weights.graph" --emit=c | grep -qF ".weights = NULL" || fail "no weights setting, yet a default"
echo "all weights checks passed"
