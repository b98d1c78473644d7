#!/usr/bin/env bash
# transfer.sh TLC SCRATCH: the transfer study's pipeline at small size. Pretrain on five
# Fashion-MNIST classes, then train the other five from 10 images each, starting from the
# pretrained checkpoint with the feature extractor frozen: the head is re-initialised (and the
# trainer says so), the subset is what the experiment names, and the result beats chance.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
study=$root/examples/fashion_transfer

check "build pretrain" "$tlc" "$study/pretrain.graph" --set epochs=1 -o pretrain
check "pretrain" sh -c "./pretrain --limit 3000 --out pre > pre.txt"
check "pretraining sees 5 classes" grep -q "^data: .* 10 classes\|classes: 5\|5 classes" pre.txt
check "build transfer" "$tlc" "$study/transfer.graph" --set 'freeze=all_except(["classifier"])' --set epochs=15 -o fixed
check "transfer from the checkpoint" sh -c "./fixed --weights pre/best.ckpt --out fixed_run > fixed.txt 2> fixed.err"
cat fixed.txt
check "50 training images of 5 classes" grep -q "train 50," fixed.txt
check "the subset's classes by the names idx(names) gives" grep -qx "data: classes: 0 Sandal, 1 Shirt, 2 Sneaker, 3 Bag, 4 Ankle boot" fixed.txt
check "confusion.tsv names them" grep -q "^true.predicted	Sandal	Shirt	Sneaker	Bag	Ankle boot$" fixed_run/confusion.tsv
check "the head is re-initialised" grep -q "classifier.3.weight \[10, 256\] in the file, \[5, 256\] here" fixed.txt fixed.err
acc=$(sed -n 's/^result: test_acc=\([0-9.]*\).*/\1/p' fixed.txt)
check "test accuracy $acc above 0.40 (chance 0.20)" awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.40) }'

check "random crops: no feature cache" sh -c "! grep -q '^features:' fixed.txt"

# Without random transforms the frozen prefix runs once per image and steps start from its
# cached output: the run is bit-identical to one that runs the prefix at every step.
check "build cached" "$tlc" "$study/transfer.graph" --set 'freeze=all_except(["classifier"])' --set epochs=3 \
  --set 'train_transform=[normalize(mean = [0.286], std = [0.353])]' --set 'subset=subset(classes = [5, 6, 7, 8, 9], per_class = 40)' \
  -o cached
check "cached run" sh -c "./cached --weights pre/best.ckpt --out c1 > c1.txt"
check "the cache is used" grep -q "^features: the frozen prefix runs once per training image" c1.txt
check "uncached run" sh -c "./cached --weights pre/best.ckpt --no-feature-cache --out c2 > c2.txt"
check "no cache when told" sh -c "! grep -q '^features:' c2.txt"
check "cached and uncached runs end in the same state" cmp c1/last.ckpt c2/last.ckpt

# A subset naming a class the data set does not have: a clear error at start (with the classes
# named by the experiment, already when it is compiled).
fails_with "bad subset of named classes" 1 "subset's class 12 is not one of the 10 classes idx's names lists (0 to 9)" \
  "$tlc" "$study/transfer.graph" --set 'subset=subset(classes = [5, 12])' --set classes=2 -o bad
check "build bad subset" "$tlc" "$study/transfer.graph" --set 'subset=subset(classes = [5, 12])' --set classes=2 \
  --set 'data=idx("/usr/share/datasets/fashion-mnist", val = 1000)' -o bad
./bad --out bad_run > bad.txt 2> bad.err
check "bad subset refused" grep -q "the experiment's subset names class 12, but the data set has classes 0 to 9" bad.err

check_report transfer
