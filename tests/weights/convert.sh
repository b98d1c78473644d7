#!/usr/bin/env bash
# convert.sh TLC SCRATCH MODE: tools/convert_weights.py against PyTorch (convert.py).
#   MODE cnn_bn | resnet18 | mobilenet_v2 | efficientnet_b5: PyTorch builds the model (1
#     channel, 10 classes, 28x28, seeded random weights and batchnorm statistics) as each
#     library names it, saves it with torch.save and writes its eval-mode logits on 64
#     Fashion-MNIST test images; the converter turns each file into safetensors with the
#     model's names, in its order; a tlc trainer of the model loads it with --eval and its
#     --logits must match PyTorch's. timm's and EfficientNet-PyTorch's models are re-created
#     from their source in convert.py (those libraries cannot be installed here): this checks
#     the mappings against their names as read from that source, not against the libraries.
#   MODE errors: every refusal of the converter names the file, the tensor or the model, and
#     writes nothing; the zoo model is found from the file when --model is not given; a
#     trainer given a .pth (either torch.save format) says it is a PyTorch pickle and names
#     the converter, and reports that or a missing file before it reads any data.
set -u
tlc=$1 dir=$2 mode=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/check.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
export TLC=$tlc
export TLC_NVRTC=/nonexistent   # the trainers run on the CPU here: no GPU kernels to compile
N=64
py() { /usr/bin/python3 "$here/convert.py" "$@"; }
converter() { /usr/bin/python3 "$root/tools/convert_weights.py" "$@"; }   # not "convert": ImageMagick's
call="$mode(classes = 10, input = [1, 28, 28])"

# round_trip NAME NAMES [make flags] -- [converter flags]: file, conversion, logits.
round_trip() {
  local name=$1 names=$2; shift 2
  local make=() conv=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do make+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  conv=("$@")
  check "$name: PyTorch writes the file" py make "$mode" "$names" "$name.pth" "$name.npy" $N "${make[@]}"
  converter "$name.pth" "$name.safetensors" --model "$mode" --set "model=$call" "${conv[@]}" > "$name.txt" 2>&1
  check "$name: converted" test $? -eq 0
  cat "$name.txt"
  check "$name: the model's names in its order" py order "$name.safetensors" params.txt
  ./train --limit $N --eval "$name.safetensors" --logits "$name.got.npy" > "$name.eval.txt" 2>&1
  check "$name: the trainer loads it" grep -q "weights: $name.safetensors: .* tensors loaded (safetensors)" "$name.eval.txt"
  check "$name: logits as PyTorch's" py compare "$name.npy" "$name.got.npy"
}

if [ "$mode" != errors ]; then
  check "build the $mode trainer" "$tlc" "$here/convert.graph" --set "model=$call" -o train
  "$tlc" "$here/convert.graph" --set "model=$call" --emit=params > params.txt
  case $mode in
  cnn_bn)
    # A training script's checkpoint of a DataParallel model: {"state_dict": {"module.…"}}.
    round_trip wrapped torchvision --wrap --
    ;;
  resnet18)
    round_trip torchvision torchvision
    # Files as old as PyTorch 0.4 (the pickle format, no num_batches_tracked).
    round_trip legacy torchvision --legacy --no-counters
    check "legacy: the absent counters said" grep -q "20 num_batches_tracked absent, written as 0" legacy.txt
    # timm's ResNets: the same names as torchvision's (timm/models/resnet.py).
    round_trip timm timm -- --from timm
    ;;
  mobilenet_v2)
    round_trip torchvision torchvision
    round_trip timm timm   # mobilenetv2_100
    ;;
  efficientnet_b5)
    round_trip torchvision torchvision
    round_trip timm_tf timm_tf -- --from timm_tf   # tf_efficientnet_b5
    check "timm_tf: the padding said" grep -q "^note: .*pad as TensorFlow does" timm_tf.txt
    round_trip efficientnet_pytorch efficientnet_pytorch
    check "efficientnet_pytorch: the padding said" grep -q "^note: .*pad as TensorFlow does" efficientnet_pytorch.txt
    # timm's efficientnet_b5 (eps 1e-5) does not compute as the zoo's (torchvision's: 1e-3).
    py make efficientnet_b5 timm timm.pth > /dev/null
    fails_with "timm efficientnet_b5: refused for its eps" 1 "normalises with batchnorm eps 1e-3, timm's efficientnet_b* and mobilenetv2_* with 1e-5" \
      converter timm.pth timm.safetensors --model "$mode" --set "model=$call" --from timm
    fails_with "timm names without --from: which timm model" 1 "say which the file is with --from timm or --from timm_tf" \
      converter timm.pth timm.safetensors --model "$mode" --set "model=$call"
    check "nothing written when refused" test ! -e timm.safetensors
    ;;
  esac
  check_report "convert.$mode"
  exit
fi

# The errors. Each must leave no output file.
refused() {   # refused NAME TEXT ARGS...: status 1, TEXT on stderr, no out.safetensors
  fails_with "$1" 1 "$2" converter "${@:3}"
  check "$1: nothing written" test ! -e out.safetensors
  cat err.txt
}
py make resnet18 torchvision r18.pth > /dev/null
refused "missing file" "nope.pth: cannot read: No such file or directory" nope.pth out.safetensors --model resnet18
echo "not weights" > junk.pth
refused "neither format" "junk.pth: neither a PyTorch file" junk.pth out.safetensors --model resnet18
py odd whole_model whole.pth
refused "a whole pickled model" "whole.pth: a whole pickled model (torch.save(model)), not a state_dict" \
  whole.pth out.safetensors --model resnet18
py odd training_checkpoint ckpt.pth
refused "Python objects beside the tensors" "ckpt.pth: holds Python objects besides tensors (Unsupported class argparse.Namespace)" \
  ckpt.pth out.safetensors --model resnet18
py odd no_state_dict nostate.pth
refused "no state_dict in it" "nostate.pth: no state_dict found" nostate.pth out.safetensors --model resnet18
refused "--key naming nothing" "r18.pth: no entry 'ema' (--key)" r18.pth out.safetensors --model resnet18 --key ema

# Keys and shapes against the model (1 channel in the file, 3 in the zoo's resnet18).
refused "mis-shaped" "'conv1.weight' has shape [64, 1, 7, 7] in the file, [64, 3, 7, 7] in the model" \
  r18.pth out.safetensors --model resnet18
grep -q "does not fit resnet18 (.*graphs/resnet18.graph): 1 problem" err.txt || { echo "FAIL: the count"; failed=$((failed + 1)); }
r18="model=resnet18(classes = 10, input = [1, 28, 28])"
/usr/bin/python3 - <<'PY'
import torch
sd = torch.load("r18.pth")
extra = dict(sd, **{"extra.weight": torch.zeros(3)})
missing = {k: v for k, v in sd.items() if k != "layer1.0.bn1.running_mean"}
torch.save(extra, "extra.pth")
torch.save(missing, "missing.pth")
PY
refused "an extra tensor" "'extra.weight' [3]: the model has no such tensor" extra.pth out.safetensors --model resnet18 --set "$r18"
refused "a missing tensor" "the model's 'layer1.0.bn1.running_mean' [64] is not in the file" \
  missing.pth out.safetensors --model resnet18 --set "$r18"
refused "--from that the names deny" "r18.pth: --from efficientnet_pytorch, but its names are torchvision's" \
  r18.pth out.safetensors --model resnet18 --set "$r18" --from efficientnet_pytorch
py make mobilenet_v2 timm mv2_timm.pth > /dev/null
refused "timm's names on a ResNet" "timm's names are known for efficientnet, mobilenet_v2 models; this model is a resnet" \
  mv2_timm.pth out.safetensors --model resnet18
py make efficientnet_b0 efficientnet_pytorch ep_b0.pth > /dev/null
refused "EfficientNet-PyTorch's eps against efficientnet_b0's" \
  "efficientnet_b0 (" ep_b0.pth out.safetensors --model efficientnet_b0 \
  --set "model=efficientnet_b0(classes = 10, input = [1, 28, 28])"
grep -qF "normalises with batchnorm eps 1e-5, EfficientNet-PyTorch's models with 1e-3" err.txt \
  || { echo "FAIL: the eps message"; failed=$((failed + 1)); }
refused "--set without --model" "--set needs --model" r18.pth out.safetensors --set "$r18"
refused "no zoo model fits" "no zoo model fits the file (name one with --model); the nearest:" r18.pth out.safetensors
grep -q "does not fit resnet18 .*: 1 problem" err.txt || { echo "FAIL: the nearest is not resnet18"; failed=$((failed + 1)); }

# Found without --model, and a head of another class count kept for the trainer to replace.
/usr/bin/python3 -c "
import torch, torchvision
torch.manual_seed(1)
torch.save(torchvision.models.mobilenet_v2(num_classes=7).state_dict(), 'mobilenet.pth')"
converter mobilenet.pth out.safetensors > found.txt 2>&1
check "the model found from the file" test $? -eq 0
cat found.txt
check "found: mobilenet_v2" grep -q "^model: mobilenet_v2 (the zoo model whose names and shapes the file fits)" found.txt
"$tlc" "$root/graphs/mobilenet_v2.graph" --emit=params > params.txt
check "found: the model's names in its order" py order out.safetensors params.txt
head=$(/usr/bin/python3 -c "import sys; sys.path[:0] = ['$here']; import weights
print(list(weights.load('out.safetensors')['classifier.1.weight'].shape))")
check "found: the 7-class head kept ($head)" test "$head" = "[7, 1280]"

# A .pth handed to a trainer: named as PyTorch's, the converter with it, before any data is read.
check "build a trainer" "$tlc" "$here/convert.graph" --set "model=cnn_bn(classes = 10, input = [1, 28, 28])" -o train
py make resnet18 torchvision legacy.pth --legacy > /dev/null
unread() {   # unread NAME TEXT ARGS...: status 1, TEXT on stderr, no data read, nothing written
  fails_with "$1" 1 "$2" ./train --out run "${@:3}"
  check "$1: no data read" sh -c "! grep -q '^data:' out.txt"
  check "$1: nothing written" test ! -e run/last.ckpt
  cat err.txt
}
for flag in --weights --eval --resume; do
  unread "$flag r18.pth" "r18.pth: a PyTorch pickle (torch.save's format: a zip archive), which tlc does not read; convert it to safetensors with tools/convert_weights.py r18.pth OUT.safetensors" \
    $flag r18.pth
done
unread "--weights legacy.pth" "legacy.pth: a PyTorch pickle (torch.save's format: a pickle), which tlc does not read; convert it to safetensors with tools/convert_weights.py legacy.pth" \
  --weights legacy.pth
unread "--weights missing" "nowhere.safetensors: cannot open: No such file or directory" --weights nowhere.safetensors
check_report convert.errors
