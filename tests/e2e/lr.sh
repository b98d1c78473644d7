#!/usr/bin/env bash
# lr.sh TLC SCRATCH: the trainer's --lr changes the learning rate without a rebuild. The kernels
# hold the recipe's rate (times each layer's multiplier) and --lr scales them all, so a trainer
# built for lr 0.05 run with --lr 0.1 must end with the very weights of one built for 0.1
# (a factor of 2 is exact in floating point), schedule and multiplier included.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
example=$root/examples/fashion_cnn.graph
recipe=(--set epochs=2 --set batch=64 --set 'schedule=step(step_size = 1, gamma = 0.5)'
        --set 'lr_mult=[mult("classifier.3", 10)]')
run() { ./"$1" --limit 256 --device cpu --out "run_$2" --export "$2.safetensors" "${@:3}" > "$2.txt"; }

check "build for lr 0.05" "$tlc" "$example" "${recipe[@]}" --set 'optimizer=sgd(lr = 0.05, momentum = 0.9)' -o train_05
check "build for lr 0.1" "$tlc" "$example" "${recipe[@]}" --set 'optimizer=sgd(lr = 0.1, momentum = 0.9)' -o train_10
check "0.05 as built" run train_05 built_05
check "0.1 as built" run train_10 built_10
check "0.05 with --lr 0.1" run train_05 scaled --lr 0.1
check "0.05 with --lr 0.05" run train_05 same --lr=0.05
check "--lr 0.1 gives the weights of a trainer built for 0.1" cmp scaled.safetensors built_10.safetensors
check "--lr at the recipe's rate changes nothing" cmp same.safetensors built_05.safetensors
check "the runs differ" sh -c "! cmp -s built_05.safetensors built_10.safetensors"
check "the run says its rate" grep -qxF "lr: 0.1 (--lr; the recipe's is 0.05): every parameter group's rate is scaled by 2" scaled.txt
check "metrics.jsonl: the schedule applied to --lr" /usr/bin/python3 -c "
import json
m = [json.loads(l) for l in open('run_scaled/metrics.jsonl')]
assert [round(e['lr'], 6) for e in m] == [0.1, 0.05], m"
check "the help says it" sh -c "./train_05 --help | grep -qF -- '--lr LR         learning rate (default 0.05)'"

fails_with "--lr 0" 2 "--lr expects a positive number, got '0'" ./train_05 --lr 0
fails_with "--lr -1" 2 "--lr expects a positive number, got '-1'" ./train_05 --lr -1
fails_with "--lr abc" 2 "--lr expects a positive number, got 'abc'" ./train_05 --lr abc
fails_with "--lr inf" 2 "--lr expects a positive number, got 'inf'" ./train_05 --lr inf
check "build for lr 0" "$tlc" "$example" "${recipe[@]}" --set 'optimizer=sgd(lr = 0)' -o train_0
fails_with "--lr on a recipe of rate 0" 2 "the recipe's learning rate is 0, so there is none to scale; rebuild with --set optimizer.lr=0.1" \
  ./train_0 --lr 0.1
check_report e2e.lr
