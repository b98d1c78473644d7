#!/usr/bin/env bash
# run.sh [SEEDS]: the Fashion-MNIST transfer study. Pretrains the CNN on five classes (once;
# kept in runs/fashion_transfer/pretrain), then trains the other five classes from 10 images
# each in five ways, each with SEEDS seeds (default 3), and prints the comparison table:
#   scratch      no pretrained weights, everything trains
#   fixed        pretrained convolutions frozen (a fixed feature extractor), classifier trains
#   linear       everything frozen but the last layer (a linear probe of the features)
#   partial      the first conv block frozen, the second and the classifier train
#   finetune     pretrained weights, everything trains, a lower learning rate
# Test accuracy is on all 5,000 test images of the five classes. Then `tlc report` of the first
# seed's runs: runs/fashion_transfer/report/report.md, with the curves and a confusion matrix,
# and the fixed extractor's --predict-grid of ten test images (report/predictions.png).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seeds=${1:-3}
tlc=$root/build/tlc
[ -x "$tlc" ] || "$root/tools/build.sh" >/dev/null
work=$root/runs/fashion_transfer
mkdir -p "$work"
cd "$work"

if [ ! -s pretrain/best.ckpt ]; then
  "$tlc" "$here/pretrain.graph" -o pretrain.bin 2>/dev/null
  ./pretrain.bin --out pretrain > pretrain.txt
fi
weights=$work/pretrain/best.ckpt

approaches=(scratch fixed linear partial finetune)
declare -A sets=(
  [scratch]=""
  [fixed]='freeze=all_except(["classifier"])'
  [linear]='freeze=all_except(["classifier.3"])'
  [partial]='freeze=before("features.1")'
  [finetune]='optimizer.lr=0.0003'
)
declare -A frozen=(
  [scratch]="nothing" [fixed]="features (conv blocks)" [linear]="all but classifier.3"
  [partial]="features.0" [finetune]="nothing"
)

printf '| approach | frozen | trainable parameters | test accuracy (mean ± sd, %d seeds) | training time (s) |\n' "$seeds"
printf '|---|---|---|---|---|\n'
for a in "${approaches[@]}"; do
  args=()
  [ -n "${sets[$a]}" ] && args=(--set "${sets[$a]}")
  "$tlc" "$here/transfer.graph" "${args[@]}" -o "$a.bin" 2>/dev/null
  trainable=$("$tlc" "$here/transfer.graph" "${args[@]}" --stats | sed -n 's/.*(trainable \([0-9,]*\),.*/\1/p')
  from=(--weights "$weights")
  [ "$a" = scratch ] && from=(--weights none)
  : > "$a.results"
  for seed in $(seq 1 "$seeds"); do
    ./"$a.bin" "${from[@]}" --seed "$seed" --out "$a-$seed" > "$a-$seed.txt"
    grep '^result:' "$a-$seed.txt" >> "$a.results"
  done
  python3 - "$a" "${frozen[$a]}" "$trainable" "$a.results" <<'PY'
import re, statistics, sys
name, frozen, trainable, path = sys.argv[1:]
runs = [dict(re.findall(r'(\w+)=([0-9.]+)', line)) for line in open(path)]
acc = [100 * float(r['test_acc']) for r in runs]
secs = [float(r['train_time_s']) for r in runs]
sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
print(f"| {name} | {frozen} | {trainable} | {statistics.mean(acc):.2f}% ± {sd:.2f} | {statistics.mean(secs):.1f} |")
PY
done
echo
echo "pretraining (5 classes, $(grep -c . pretrain/metrics.jsonl) epochs): $(grep '^result:' pretrain.txt)"
# The first seed's runs as the write-ups show them: table, curves, the fixed extractor's
# confusion matrix (runs/fashion_transfer/report/report.md).
echo
"$tlc" report "${approaches[@]/%/-1}" --confusion fixed-1 -o report --force
# And the fixed extractor's predictions of the first two test images of each class, as PNG
# files in folders named by class, so that the grid shows the true class too.
rm -rf predict
python3 - <<'PY'
import gzip, os, struct, zlib
names = {5: "Sandal", 6: "Shirt", 7: "Sneaker", 8: "Bag", 9: "Ankle boot"}
d = "/usr/share/datasets/fashion-mnist"
pixels = gzip.open(f"{d}/t10k-images-idx3-ubyte.gz").read()[16:]
labels = gzip.open(f"{d}/t10k-labels-idx1-ubyte.gz").read()[8:]
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
def write_png(path, image):   # 28x28, 8-bit gray
    rows = b"".join(b"\0" + image[y * 28:(y + 1) * 28] for y in range(28))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
    open(path, "wb").write(png + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
taken = {c: 0 for c in names}
for i, c in enumerate(labels):
    if c in names and taken[c] < 2:
        taken[c] += 1
        os.makedirs(f"predict/{names[c]}", exist_ok=True)
        write_png(f"predict/{names[c]}/test_{i:04d}.png", pixels[i * 784:(i + 1) * 784])
PY
./fixed.bin --eval fixed-1/best.ckpt --predict predict/*/*.png --predict-grid report/predictions.png | grep '^predict:'
