#!/usr/bin/env bash
# freeze.sh TLC SCRATCH: frozen means frozen. The Fashion-MNIST CNN with everything before
# the classifier frozen trains one more epoch from a checkpoint; the official flatc decodes
# both checkpoints, and every frozen tensor (weights, batchnorm running statistics and
# counters) must be bit-identical while every trainable one has moved.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
"$tlc" "$root/examples/fashion_cnn.graph" --set batch=32 --set 'freeze=before("classifier")' -o train || exit 1
./train --limit 512 --epochs 1 --out a > /dev/null || exit 1
./train --limit 512 --epochs 2 --resume a/last.ckpt --out b > /dev/null || exit 1
for run in a b; do
  flatc --json --strict-json --raw-binary -o "$run" "$root/runtime/checkpoint.fbs" -- "$run/last.ckpt" || exit 1
done
python3 - a/last.json b/last.json <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
tensors = {t["name"]: t.get("data", []) for t in before["tensors"]}
passed = failed = 0
for t in after["tensors"]:
    name, data = t["name"], t.get("data", [])
    frozen = name.startswith("features.")
    same = tensors[name] == data
    if frozen:
        ok = same
    elif ".exp_avg" in name or "momentum" in name:
        ok = True   # optimizer state of a trainable tensor: allowed to move or not
    else:
        ok = not same
    passed += ok
    failed += not ok
    if not ok:
        print(f"FAIL: {name} {'changed although frozen' if frozen else 'did not move although trainable'}")
frozen = [n for n in tensors if n.startswith("features.")]
if not frozen or len(frozen) == len(tensors):
    failed += 1
    print("FAIL: expected both frozen and trainable tensors")
print(f"{passed} passed, {failed} failed")
sys.exit(failed != 0)
PY
