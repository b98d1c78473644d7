#!/usr/bin/env bash
# stop.sh TLC SCRATCH: a clean stop, end to end (issue 12, item 6). The Fashion-MNIST trainer,
# 3 epochs, gets SIGINT (what Ctrl-C sends) early in its second epoch, and another run
# gets SIGTERM: each finishes its step, writes last.ckpt, exits with 128 + the signal and
# prints the command that resumes it; that command, run as printed, ends with a checkpoint
# identical byte for byte to the one of a run that was never stopped, and the same result.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"

check "build" "$tlc" "$root/examples/fashion_cnn.graph" --set batch=32 --set epochs=3 -o train
check "the run that is not stopped" sh -c "./train --limit 3072 --out straight > straight.txt 2>&1"

# stopped NAME SIGNAL: runs the trainer, sends SIGNAL half a second into its second epoch
# (3.5 s long here; a faster machine may be in its third, which the checks allow).
stopped() {
  local name=$1 sig=$2
  set -m   # job control: a background job does not ignore SIGINT
  ./train --limit 3072 --out "$name" > "$name.txt" 2>&1 &
  local pid=$! tries=0
  set +m
  until grep -q "^epoch 1/3" "$name.txt" 2> /dev/null || [ $tries -ge 600 ]; do sleep 0.1; tries=$((tries + 1)); done
  sleep 0.5
  kill -s "$sig" $pid
  wait $pid
  echo $? > "$name.status"
  cat "$name.txt"
}

for sig in INT TERM; do
  name=$(echo "stop_$sig" | tr 'A-Z' 'a-z')
  stopped "$name" $sig
  want=$([ $sig = INT ] && echo 130 || echo 143)
  check "SIG$sig: exit status $want" test "$(cat $name.status)" -eq $want
  check "SIG$sig: said as asked" grep -qF "stop requested: finishing the step under way, then saving last.ckpt" $name.txt
  check "SIG$sig: stopped inside an epoch" grep -qE "^stopped: SIG$sig in epoch [23] of 3, after [0-9]+ of 96 batches \(step [0-9]+\); $name/last.ckpt holds the run so far" $name.txt
  check "SIG$sig: no result line" sh -c "! grep -q '^result:' $name.txt"
  check "SIG$sig: last.ckpt written, no temporary left" sh -c "test -s $name/last.ckpt && ! ls $name | grep -q tmp"
  check "SIG$sig: the epochs before logged" test "$(wc -l < $name/metrics.jsonl)" -eq "$(($(sed -n 's/^stopped: SIG[A-Z]* in epoch \([23]\).*/\1/p' $name.txt) - 1))"
  resume=$(sed -n 's/^stopped: continue with: //p' $name.txt)
  check "SIG$sig: the resume command" test "$resume" = "./train --limit 3072 --out $name --resume $name/last.ckpt"
  check "SIG$sig: resumed as printed" sh -c "$resume > $name.resumed.txt 2>&1"
  check "SIG$sig: resumed inside the epoch" grep -qE "^resume: $name/last.ckpt: stopped in epoch [23] after [0-9]+ training images" $name.resumed.txt
  check "SIG$sig: the same checkpoint as never stopped" cmp straight/last.ckpt $name/last.ckpt
  check "SIG$sig: the same best checkpoint" cmp straight/best.ckpt $name/best.ckpt
  check "SIG$sig: the same result" test "$(grep '^result' $name.resumed.txt | cut -d' ' -f2-4)" = "$(grep '^result' straight.txt | cut -d' ' -f2-4)"
  grep '^epoch' straight.txt | sed 's/  [0-9]* img.*//' > straight.epochs
  grep '^epoch' $name.resumed.txt | sed 's/  [0-9]* img.*//' > $name.epochs
  check "SIG$sig: the resumed epochs' lines as the run not stopped printed them" sh -c "test -s $name.epochs && ! grep -vxFf straight.epochs $name.epochs"
  check "SIG$sig: three epochs logged" test "$(wc -l < $name/metrics.jsonl)" -eq 3
done
check_report stop
