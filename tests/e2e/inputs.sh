#!/usr/bin/env bash
# inputs.sh TLC SCRATCH: errors before work, and a report that says what it does (issue 12,
# item 5). A missing or wrong --weights or --resume file is reported before the first image is
# decoded (no cache line, no warning about a broken image, no samples.png); a CIFAR-10 set
# without a dev split says so at the start and prints best_val_acc=none, not nan; the report
# says where the class names came from; a class name of 300 characters in batches.meta.txt is
# one class, not two.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
$py "$root/tests/data/make_data.py" folder_png png 12 && $py "$root/tests/data/make_data.py" cifar10 cifar 16 || exit 1

cat > folder.graph <<'G'
import "cnn_bn.graph"
experiment {
  model = cnn_bn(input = [1, 28, 28], hidden = 16)
  classes = 10
  data = image_folder("png")
  train_transform = [normalize()]
  eval_transform = [normalize()]
  optimizer = adam(lr = 0.002)
  epochs = 1
  batch = 16
}
G
check "build the ImageFolder trainer" "$tlc" folder.graph -o train
check "build another model" "$tlc" folder.graph --set 'model=cnn_bn(input = [1, 28, 28], hidden = 32)' -o other
check "a checkpoint of the other model" sh -c "./other --out o > /dev/null 2>&1"

# A broken image in the data: decoding it would print a warning, so none may appear.
cp -r png broken
echo "not an image" > "broken/train/Bag/$(ls broken/train/Bag | head -1)"
before_decoding() {   # before_decoding NAME TEXT ARGS...: status 1, TEXT, and nothing decoded
  local name=$1 text=$2; shift 2
  ./train --data broken --out run "$@" > out.txt 2> err.txt
  local rc=$?
  check "$name: status 1" test $rc -eq 1
  check "$name: the message" grep -qF -- "$text" err.txt
  check "$name: no image decoded" sh -c "! grep -q 'warning:' err.txt && ! grep -q 'cached\|decoding the image files\|samples' out.txt"
  cat out.txt err.txt
}
before_decoding "missing --weights" "error: nowhere.safetensors: cannot open" --weights nowhere.safetensors
before_decoding "--weights of another model" "o/last.ckpt: tensor 'classifier" --weights o/last.ckpt
before_decoding "missing --resume" "error: nowhere.ckpt: cannot open" --resume nowhere.ckpt
before_decoding "--resume of another model" "o/last.ckpt: tensor 'classifier.0.weight' has shape [32,3136] in the checkpoint" --resume o/last.ckpt

# CIFAR-10 without a dev split.
cat > cifar.graph <<'G'
import "cnn_bn.graph"
experiment {
  model = cnn_bn(input = [3, 32, 32], hidden = 16)
  classes = 10
  data = cifar10("cifar", dev = 0)
  train_transform = [normalize()]
  eval_transform = [normalize()]
  optimizer = sgd(lr = 0.01)
  epochs = 2
  batch = 16
}
G
check "build the CIFAR-10 trainer" "$tlc" cifar.graph -o train_cifar
check "no dev split: trains" sh -c "./train_cifar --out c > c.txt 2>&1"
cat c.txt
check "no dev split: said at the start" grep -qF "data: no validation split (cifar10's dev is 0): each epoch is tested on the test split instead (no held-out score), best.ckpt is not written (last.ckpt is), and the result line says best_val_acc=none" c.txt
check "no dev split: the result line says none" grep -qE "^result: .* best_val_acc=none " c.txt
check "no nan anywhere" sh -c "! grep -qi nan c.txt"
check "no dev split: no best.ckpt" test -s c/last.ckpt -a ! -e c/best.ckpt
check "no dev split: null in metrics.jsonl" grep -qF '"val_acc":null' c/metrics.jsonl
check "class names: from batches.meta.txt" grep -qF "data: class names from cifar/batches.meta.txt" c.txt
rm cifar/batches.meta.txt
check "no batches.meta.txt: trains" sh -c "./train_cifar --out c2 --epochs 1 > c2.txt 2>&1"
check "class names: the published list" grep -qF "data: class names from CIFAR-10's published list (no cifar/batches.meta.txt)" c2.txt
long=$($py -c "print('x' * 300)")
printf 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\n%s\n\n' "$long" > cifar/batches.meta.txt
check "a 300-character class name: trains" sh -c "./train_cifar --out c3 --epochs 1 > c3.txt 2>&1"
check "a 300-character class name: one class of ten" grep -qF "10 classes; the model takes 3x32x32" c3.txt
check "a 300-character class name: read whole" grep -qF "8 ship, 9 $long" c3.txt
check_report inputs
