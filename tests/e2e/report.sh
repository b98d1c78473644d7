#!/usr/bin/env bash
# report.sh TLC SCRATCH: `tlc report` and what trainers leave for it (issue 13, item 4). Two tiny
# Fashion-MNIST runs with a validation split (two seeds) and one without; then tlc report on
# them. Checks: report.csv and report.md hold each run's figures as its result line prints them
# and its parameters as tlc --stats counts them; curves.png and confusion.png are PNGs of the
# size tlc report states (the curves' by formula), with real content; each run's confusion.tsv
# sums to its test images and its diagonal over the total is the reported test accuracy, and
# --eval --out writes the same matrix for the same weights without touching the run's log; the
# trainer's --predict-grid is a PNG of the documented size whose every tile is framed as its
# predict: line and folder say (right, wrong, unknown), for named and numbered classes. Errors:
# a missing run directory, one without metrics, an empty, truncated or garbled metrics.jsonl,
# a run.json field of the wrong type, a confusion.tsv with a bad count or cut short, labels
# beyond the experiment's idx(names), an output that is not a directory, an earlier report (untouched without --force), a
# --confusion run without a matrix, --predict-grid misused: each fails naming what and where.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
example=$root/examples/fashion_cnn.graph

# The runs with a validation split name their classes (idx(names)), the one without numbers them.
names='["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]'
check "build" "$tlc" "$example" --set epochs=2 --set batch=64 --set "data=idx(val = 5000, names = $names)" -o train
check "build without validation" "$tlc" "$example" --set epochs=2 --set batch=64 --set 'data=idx(val = 0)' -o noval
check "train a" sh -c "./train --limit 512 --device cpu --out runs/a > a.txt"
check "train b" sh -c "./train --limit 512 --device cpu --seed 7 --out runs/b > b.txt"
check "train c (no validation split)" sh -c "./noval --limit 512 --device cpu --out runs/c > c.txt"
"$tlc" "$example" --set batch=64 --stats > stats.txt
check "report" sh -c "'$tlc' report runs/a runs/b runs/c -o rep > report.txt"
cat report.txt

check "the table: each run's result line, its parameters, its device" $py - <<'P'
import csv, re
stats = open('stats.txt').read()
total, trainable = (int(x.replace(',', '')) for x in re.search(r'parameters +([\d,]+) \(trainable ([\d,]+)', stats).groups())
rows = {r['experiment']: r for r in csv.DictReader(open('rep/report.csv'))}
md = open('rep/report.md').read()
assert sorted(rows) == ['a', 'b', 'c'], rows.keys()
for name in 'abc':
    result = dict(re.findall(r'(\w+)=(\S+)', [l for l in open(f'{name}.txt') if l.startswith('result:')][0]))
    row = rows[name]
    for key in ('test_acc', 'tested', 'train_time_s', 'images_per_s'):
        assert row[key] == result[key], (name, key, row[key], result[key])
    assert row['best_val_acc'] == ('' if result['best_val_acc'] == 'none' else result['best_val_acc']), (name, row)
    assert row['best_epoch'] == result.get('best_epoch', ''), (name, row)
    assert (int(row['parameters']), int(row['trainable_parameters'])) == (total, trainable), (row, total, trainable)
    assert row['model'] == 'cnn_bn' and row['device'].startswith('cpu') and row['epochs'] == '2', row
    cells = [l for l in md.splitlines() if l.startswith(f'| {name} |')][0].split(' | ')
    assert cells[4] == '%.2f%%' % (100 * float(result['test_acc'])), cells
    assert cells[2] == f'{trainable:,} / {total:,}', cells
assert rows['c']['tested'] == 'last' and 'no validation split' in md
assert '![training curves](curves.png)' in md and '![confusion matrix](confusion.png)' in md
P

check "confusion.tsv: counts sum to the test set, diagonal/total = the reported test accuracy" $py - <<'P'
import json, re
for name in 'abc':
    lines = [l.rstrip('\n').split('\t') for l in open(f'runs/{name}/confusion.tsv') if not l.startswith('#')]
    header, rows = lines[0], lines[1:]
    counts = [[int(x) for x in r[1:]] for r in rows]
    named = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
    assert header[1:] == (named if name != 'c' else [f'class {k}' for k in range(10)]), (name, header)
    assert [r[0] for r in rows] == header[1:], header
    total, right = sum(map(sum, counts)), sum(counts[k][k] for k in range(10))
    run = json.load(open(f'runs/{name}/run.json'))
    result = dict(re.findall(r'(\w+)=(\S+)', [l for l in open(f'{name}.txt') if l.startswith('result:')][0]))
    assert total == run['test_images'] == 512, (name, total)
    assert '%.4f' % (right / total) == result['test_acc'], (name, right / total, result['test_acc'])
P

# --eval --out: the matrix of the evaluated weights, nothing else of the run touched.
sums=$(md5sum runs/a/metrics.jsonl runs/a/run.json)
check "--eval --out into another directory" sh -c "./train --limit 512 --device cpu --eval runs/a/best.ckpt --out evald > e.txt"
check "--eval: the same matrix as the run's (best.ckpt)" cmp <(grep -v '^#' evald/confusion.tsv) <(grep -v '^#' runs/a/confusion.tsv)
check "--eval: says what it tested" grep -q '^# tested=checkpoint weights=runs/a/best.ckpt' evald/confusion.tsv
check "--eval: no log, no run.json" test ! -e evald/metrics.jsonl -a ! -e evald/run.json
check "--eval --out the run's own directory" sh -c "./train --limit 512 --device cpu --eval runs/a/best.ckpt --out runs/a > /dev/null"
check "--eval: the run's log and summary untouched" test "$(md5sum runs/a/metrics.jsonl runs/a/run.json)" = "$sums"

check "pictures: PNGs of the stated sizes with real content" $py - <<'P'
import re
from PIL import Image
said = dict(re.findall(r'report: rep/(\w+)\.png: .*?(\d+x\d+) pixels', open('report.txt').read()))
assert set(said) == {'curves', 'confusion'}, said
which = re.search(r'confusion matrix of (\w+),', open('report.txt').read()).group(1)
runs = 3
expected = {'curves': (2 * 520 + 300, max(440, 44 + 22 * (runs + 5)))}   # report_curves_size
for name, size in said.items():
    im = Image.open(f'rep/{name}.png')
    im.verify()
    im = Image.open(f'rep/{name}.png').convert('RGB')
    assert '%dx%d' % im.size == size, (name, im.size, size)
    assert name not in expected or im.size == expected[name], (name, im.size)
    colours = im.getcolors(1 << 20)
    assert len(colours) > 50, (name, len(colours))
    drawn = sum(n for n, c in colours if c != (255, 255, 255)) / (im.size[0] * im.size[1])
    assert drawn > (0.03 if name == 'curves' else 0.3), (name, 'mostly background', drawn)
    if name == 'curves':   # each run's colour (tab10) in both panels, loss and accuracy
        for x0 in (0, 520):
            present = {c for _, c in im.crop((x0, 0, x0 + 520, im.size[1])).getcolors(1 << 20)}
            for c in [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C)]:
                assert c in present, (x0, c)
    else:                  # ten 64-pixel cells a side, each in the shade of its share of its row
        assert im.size[0] > 640 and im.size[1] > 640, im.size
        rows = [l.rstrip('\n').split('\t')[1:] for l in open(f'runs/{which}/confusion.tsv') if not l.startswith('#')][1:]
        present = {c for _, c in colours}
        for row in rows:
            counts = [int(x) for x in row]
            for n in counts:   # report_confusion.c's shade: white (F7FBFF) to dark blue (08306B)
                f = n / sum(counts)
                shade = tuple(int(lo + (hi - lo) * f + 0.5) for lo, hi in ((0xF7, 0x08), (0xFB, 0x30), (0xFF, 0x6B)))
                assert shade in present, (row, n, shade)
P

# --predict-grid: Fashion-MNIST test images in folders named by class (by class number for
# the trainer whose classes have no names), and one outside any class folder.
$py - <<'P'
import gzip, os
import numpy as np
from PIL import Image
d = '/usr/share/datasets/fashion-mnist'
names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
images = np.frombuffer(gzip.open(f'{d}/t10k-images-idx3-ubyte.gz').read(), np.uint8, offset=16).reshape(-1, 28, 28)
labels = np.frombuffer(gzip.open(f'{d}/t10k-labels-idx1-ubyte.gz').read(), np.uint8, offset=8)
for i in range(6):
    for folder in (f'named/{names[labels[i]]}', f'numbered/{labels[i]}'):
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(images[i]).save(f'{folder}/test_{i}.png')
for folder in ('named', 'numbered'):
    Image.fromarray(images[6]).save(f'{folder}/loose.png')
P
check "--predict-grid, named classes" sh -c "./train --eval runs/a/best.ckpt --predict named/*/*.png named/loose.png --predict-grid grid.png > grid.txt"
check "--predict-grid, numbered classes" sh -c "./noval --eval runs/c/last.ckpt --predict numbered/*/*.png numbered/loose.png --predict-grid grid_numbered.png > grid_numbered.txt"
check "--predict-grid: said" grep -q '^predict: grid.png: 7 images with their predicted classes, 1072x550 pixels' grid.txt
check "--predict-grid: the documented size, each tile's frame its verdict" $py - <<'P'
import re
from PIL import Image
right, wrong, white = (0x1A, 0x7F, 0x37), (0xC6, 0x28, 0x28), (255, 255, 255)
for png, txt in (('grid.png', 'grid.txt'), ('grid_numbered.png', 'grid_numbered.txt')):
    im = Image.open(png)
    im.verify()
    im = Image.open(png).convert('RGB')
    # tlc_predict_grid_size: tiles of 200x257, 5 a row, 12 apart: 7 images make 2 rows.
    assert im.size == (5 * 200 + 6 * 12, 2 * 257 + 3 * 12), (png, im.size)
    assert len(im.getcolors(1 << 20)) > 50, png
    lines = [l for l in open(txt) if re.match(r'predict: .+ -> ', l)]
    assert len(lines) == 7, lines
    verdicts = set()
    for i, line in enumerate(lines):
        path, top = re.match(r'predict: (.+?) -> (.+?) \(\d+\) ', line).groups()
        folder = path.split('/')[-2] if path.count('/') == 2 else None
        truth = folder if folder is None or png == 'grid.png' else f'class {folder}'
        x0, y0 = 12 + (i % 5) * 212, 12 + (i // 5) * 269
        frame = im.getpixel((x0 - 2, y0 + 100))   # the frame left of the image
        expected = white if truth is None else right if top == truth else wrong
        assert frame == expected, (png, i, path, top, truth, frame)
        verdicts.add(expected)
        # the image itself: a Fashion-MNIST picture has dark background and bright garment
        box = im.crop((x0, y0, x0 + 200, y0 + 200)).convert('L')
        assert box.getextrema()[0] < 30 and box.getextrema()[1] > 150, (png, i, box.getextrema())
    assert white in verdicts and verdicts - {white}, (png, verdicts)
P
fails_with "--predict-grid without --predict" 2 "--predict-grid draws the images of --predict" ./train --eval runs/a/best.ckpt --predict-grid g.png
fails_with "--predict-grid into a missing directory" 1 "--predict-grid nodir/g.png: cannot write into nodir" ./train --eval runs/a/best.ckpt --predict named/loose.png --predict-grid nodir/g.png

# Errors, each naming what and where.
check "build with fewer names than the files' labels" "$tlc" "$example" --set classes=5 --set batch=64 \
  --set 'data=idx(val = 5000, names = ["a", "b", "c", "d", "e"])' -o five
fails_with "labels beyond idx's names" 1 "the files hold labels 0 to 9, but the experiment's idx(names = [...]) names 5 classes" \
  ./five --limit 64 --device cpu --out five_run
fails_with "a missing run directory" 1 "nothere: No such file or directory" "$tlc" report nothere -o e1
mkdir -p empty bad/trunc bad/garbled bad/none
fails_with "a directory without metrics" 1 "empty/metrics.jsonl: No such file or directory (is it a trainer's --out directory?)" "$tlc" report empty -o e1
: > bad/none/metrics.jsonl
fails_with "an empty metrics.jsonl" 1 "bad/none/metrics.jsonl holds no epoch" "$tlc" report bad/none -o e1
head -c -20 runs/a/metrics.jsonl > bad/trunc/metrics.jsonl
fails_with "a truncated line" 1 "bad/trunc/metrics.jsonl:2:" "$tlc" report bad/trunc -o e1
check "a truncated line: said to be cut short" grep -q "the line is cut short" err.txt
sed '1s/"loss":[^,]*/"loss":"low"/' runs/a/metrics.jsonl > bad/garbled/metrics.jsonl
fails_with "a garbled line" 1 'bad/garbled/metrics.jsonl:1: "loss" is a string; a number was expected' "$tlc" report bad/garbled -o e1
mkdir -p bad/summary bad/matrix bad/cutmatrix
cp runs/a/metrics.jsonl bad/summary/ && sed 's/"trainable_parameters": [0-9]*/"trainable_parameters": "many"/' runs/a/run.json > bad/summary/run.json
fails_with "run.json of the wrong type" 1 'bad/summary/run.json: "trainable_parameters" is not a whole number' "$tlc" report bad/summary -o e1
cp runs/a/metrics.jsonl runs/a/run.json bad/matrix/ && sed '4s/\t[0-9]*/\t-3/' runs/a/confusion.tsv > bad/matrix/confusion.tsv
fails_with "a count that is not one" 1 "bad/matrix/confusion.tsv:4: '-3' is not a count" "$tlc" report bad/matrix -o e1
cp runs/a/metrics.jsonl runs/a/run.json bad/cutmatrix/ && head -n 8 runs/a/confusion.tsv > bad/cutmatrix/confusion.tsv
fails_with "a matrix cut short" 1 "bad/cutmatrix/confusion.tsv:9: the file ends after 5 of its 10 rows" "$tlc" report bad/cutmatrix -o e1
check "nothing written on errors" test ! -e e1
fails_with "an output that is a file" 1 "report: -o runs/a/run.json is not a directory" "$tlc" report runs/a -o runs/a/run.json
fails_with "an output under a file" 1 "report: cannot create -o runs/a/run.json/x: Not a directory" "$tlc" report runs/a -o runs/a/run.json/x
before=$(md5sum rep/*)
fails_with "an earlier report is kept" 1 "rep/report.md exists; --force replaces" "$tlc" report runs/a -o rep
check "an earlier report is untouched" test "$(md5sum rep/*)" = "$before"
check "--force replaces it" sh -c "'$tlc' report runs/a runs/b --confusion runs/b -o rep --force > force.txt"
check "--confusion picks the run" grep -q "confusion.png: the confusion matrix of b," force.txt
mkdir -p bad/nomatrix && cp runs/a/metrics.jsonl runs/a/run.json bad/nomatrix/
fails_with "--confusion of a run without a matrix" 1 "--confusion bad/nomatrix: the run has no confusion.tsv" "$tlc" report runs/a bad/nomatrix --confusion bad/nomatrix -o e2

check_report e2e.report
