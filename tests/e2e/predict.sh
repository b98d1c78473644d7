#!/usr/bin/env bash
# predict.sh TLC SCRATCH: --predict end to end. A small CNN trains on an ImageFolder tree of
# Fashion-MNIST PNG files (written by tests/data/make_data.py with PIL); --predict on 40 of its
# test files (two batches, the second padded) must name the right class for most of them, with
# the data set's class names, and its probabilities must be the softmax (computed here in
# NumPy) of the logits the same trainer writes with --eval --logits for the whole test split.
# Without the data the classes are "class K" with the same numbers; --weights gives the same
# lines as --eval; a missing, corrupt or too-small image is an error naming it.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
$py "$root/tests/data/make_data.py" folder_png png 100 || exit 1

cat > predict.graph <<'G'
import "cnn_bn.graph"
experiment {
  model = cnn_bn(input = [1, 28, 28], hidden = 64)
  classes = 10
  data = image_folder("png")
  train_transform = [hflip(0.5), normalize(mean = [0.286], std = [0.353])]
  eval_transform = [normalize(mean = [0.286], std = [0.353])]
  optimizer = adam(lr = 0.002)
  epochs = 3
  batch = 32
  seed = 5
}
G
check "build" "$tlc" predict.graph -o train
check "train" sh -c "./train --out run > train.txt"
tail -1 train.txt

# The first 4 test files of each class, in the test split's order (class, then file name).
mapfile -t images < <($py -c "
import json
e = json.load(open('png/expected.json')); seen = {}
for s in e['test']:
    c = e['classes'][s['label']]
    if seen.get(c, 0) < 4:
        seen[c] = seen.get(c, 0) + 1; print(f'png/test/{c}/{s[\"file\"]}')
")
check "40 images chosen" test ${#images[@]} -eq 40
./train --eval run/best.ckpt --predict "${images[@]}" > pred.txt
check "--eval --predict" test $? -eq 0
check "--eval --logits of the whole test split" sh -c "./train --eval run/best.ckpt --logits test.npy > eval.txt"
check "no result line, one predict line per image" sh -c "! grep -q '^result:' pred.txt && test \$(grep -c '^predict: png/test/' pred.txt) -eq 40"
check "nothing trained, nothing written" test ! -e runs
check "predictions: class names, right for most, softmax of --logits" $py - <<'P'
import json, re
import numpy as np
e = json.load(open('png/expected.json'))
rows = {f"png/test/{e['classes'][s['label']]}/{s['file']}": (k, s['label']) for k, s in enumerate(e['test'])}
logits = np.load('test.npy').astype(np.float64)
assert logits.shape == (len(e['test']), 10), logits.shape
right = 0
lines = [l for l in open('pred.txt') if l.startswith('predict: ')]
for line in lines:
    path, rest = line[len('predict: '):].rstrip('\n').split(' -> ')
    top = re.findall(r' ?(.+?) \((\d+)\) ([01]\.\d{6})(?:,|$)', rest)
    assert len(top) == 5, line
    row, label = rows[path]
    p = np.exp(logits[row] - logits[row].max()); p /= p.sum()
    want = np.argsort(-p, kind='stable')[:5]
    for (name, k, prob), w in zip(top, want):
        assert int(k) == w and name == e['classes'][w], (line, w)
        assert abs(float(prob) - p[w]) < 2e-6, (line, p[w])
    right += int(top[0][1]) == label
print(f"predict: {right} of {len(lines)} right")
assert len(lines) == 40 and right >= 24, right
P

# Without the data: numbered classes, the same numbers.
first=${images[0]}
./train --eval run/best.ckpt --data missing --predict "$first" > nodata.txt
check "no data: runs" test $? -eq 0
check "no data: said why" grep -qF "data: classes are numbered: the data set did not load for their names" nodata.txt
check "no data: class K, same probabilities" $py -c "
import re
a = [l for l in open('pred.txt') if l.startswith('predict: $first ->')][0]
b = [l for l in open('nodata.txt') if l.startswith('predict: ')][0]
strip = lambda l: re.findall(r'\((\d+)\) ([0-9.]+)', l)
assert strip(a) == strip(b) and ' class ' in b, (a, b)
"
# --weights loads the same state as --eval.
./train --weights run/best.ckpt --predict "$first" > weights.txt
check "--weights: same lines" cmp <(grep '^predict:' weights.txt) <(grep -F "predict: $first ->" pred.txt)

# Bad images: errors naming the file; bad use: usage errors.
echo "not an image" > junk.png
head -c 200 "$first" > cut.png
$py -c "from PIL import Image; Image.new('L', (20, 20), 128).save('small.png')"
fails_with "missing image" 1 "nothere.png: cannot open" ./train --eval run/best.ckpt --predict "$first" nothere.png
fails_with "not an image" 1 "junk.png: neither a JPEG nor a PNG file" ./train --eval run/best.ckpt --predict junk.png
fails_with "truncated image" 1 "cut.png: not a readable PNG" ./train --eval run/best.ckpt --predict cut.png
fails_with "too small" 1 "small.png: " ./train --eval run/best.ckpt --predict "$first" small.png
fails_with "no weights" 2 "--predict needs trained weights" ./train --predict "$first"
fails_with "no image" 2 "--predict needs at least one image file" ./train --predict --eval run/best.ckpt

check_report predict
