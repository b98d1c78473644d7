#!/usr/bin/env bash
# evaluation.sh TLC SCRATCH: which evaluation passes a run makes, and which weights its test
# figure is of. With a validation split, the test figure is best.ckpt's (the write-ups report
# that one): the same as --eval best.ckpt gives, with the last weights' figure beside it;
# test_every = N adds the test split every N epochs; without a validation split, every epoch
# is tested on the test split, said not to be a held-out score, and no nan is printed.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
example=$root/examples/fashion_cnn.graph
field() { sed -n "s/^result: .*\\b$1=\\([^ ]*\\).*/\\1/p" "$2"; }   # field NAME FILE: from the result line

# A learning rate far too high: the validation accuracy goes up and down, so the best epoch is
# rarely the last; whichever it is, the reported figure must be that checkpoint's.
check "build" "$tlc" "$example" --set epochs=4 --set test_every=2 --set 'optimizer=sgd(lr = 0.6)' --set batch=64 -o train
check "train" sh -c "./train --limit 512 --out run --device cpu > train.txt"
check "the result says which weights were tested" grep -qE '^result: test_acc=[0-9.]+ test_loss=[0-9.]+ tested=best best_epoch=[1-4] last_test_acc=[0-9.]+ best_val_acc=' train.txt
check "--eval best.ckpt" sh -c "./train --limit 512 --eval run/best.ckpt --device cpu > best.txt"
check "the reported test figure is best.ckpt's" test "$(field test_acc train.txt) $(field test_loss train.txt)" = "$(field test_acc best.txt) $(field test_loss best.txt)"
check "--eval names what it tested" test "$(field tested best.txt)" = checkpoint
best=$(field best_epoch train.txt)
val_best=$(python3 -c "import json, sys; m = [json.loads(l) for l in open('run/metrics.jsonl')]; print(max(m, key=lambda e: (e['val_acc'], -e['epoch']))['epoch'])")
check "best_epoch is the epoch of the best validation accuracy ($best, $val_best)" test "$best" = "$val_best"
check "test_every = 2: epochs 2 and 4 tested" python3 -c "
import json
m = [json.loads(l) for l in open('run/metrics.jsonl')]
assert [e['epoch'] for e in m if e['test_acc'] is not None] == [2, 4], m"
check "the last weights' figure is epoch 4's test" test "$(field last_test_acc train.txt)" = "$(python3 -c "import json; print('%.4f' % [json.loads(l) for l in open('run/metrics.jsonl')][-1]['test_acc'])")"

# No validation split: every epoch on the test split, said so; no best.ckpt, no nan.
check "build without validation" "$tlc" "$example" --set epochs=2 --set 'data=idx(val = 0)' --set batch=64 -o noval
check "train without validation" sh -c "./noval --limit 512 --out noval_run --device cpu > noval.txt"
check "each epoch tested, said not held out" test "$(grep -c 'test_acc [0-9.]*% (test split, no validation split)' noval.txt)" -eq 2
check "no nan" sh -c "! grep -qi nan noval.txt"
check "the last weights tested" grep -qE '^result: test_acc=[0-9.]+ test_loss=[0-9.]+ tested=last best_val_acc=none' noval.txt
check "no best.ckpt" test ! -e noval_run/best.ckpt
check_report e2e.evaluation
