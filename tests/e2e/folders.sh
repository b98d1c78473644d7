#!/usr/bin/env bash
# folders.sh TLC SCRATCH: ImageFolder trees as users have them, end to end (issue 12, items 2
# and 4). An RGB data set with grayscale, gray+alpha, palette, RGBA and CMYK files in nested
# folders trains (torchvision converts each to RGB and reads sub-folders; so does tlc) and says
# what it converted and found, by counts; the same tree trains a 1-channel model. A JPEG bomb
# (a 700-byte file whose header claims 13000x13000), a JPEG with damaged data and a PNG with a
# CRC error are skipped and counted, not decoded into a gigabyte of gray. Ten 100-megapixel
# images on eight loader threads stay within the loader's decoding budget (max RSS under
# 1.5 GB, where one image per thread would take 2.4 GB). --limit decodes only what it uses, and
# a test split that is the validation folder is decoded once (issue 14, item 5).
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
$py "$root/tests/data/make_data.py" mixed mixed || exit 1

graph() {   # graph NAME CHANNELS DATA: a small CNN on 32x32 images of the folder DATA
  cat > "$1.graph" <<G
import "cnn_bn.graph"
experiment {
  model = cnn_bn(input = [$2, 32, 32], hidden = 16)
  classes = 2
  data = image_folder("$3")
  train_transform = [resize(32), center_crop(32), hflip(0.5), normalize()]
  eval_transform = [resize(32), center_crop(32), normalize()]
  optimizer = sgd(lr = 0.01)
  epochs = 1
  batch = 4
}
G
  "$tlc" "$1.graph" -o "$1"
}
check "build the RGB trainer" graph rgb 3 mixed
check "build the gray trainer" graph gray 1 mixed

# Every colour type, nested folders, formats tlc does not decode.
check "RGB model on a mixed tree: trains" sh -c "./rgb --out r1 > r1.txt 2> r1.err"
cat r1.txt r1.err
check "report: 15 training images, sub-folders included" grep -qF "data: mixed (image_folder): train 15, val 0, test 15 images" r1.txt
check "report: sub-folders counted" grep -qF "data: 10 images are in sub-folders of class folders; they belong to their class, as in torchvision's ImageFolder" r1.txt
check "report: other formats counted" grep -qF "data: 4 files (.bmp, .tif) are not used: tlc decodes JPEG and PNG only" r1.txt
check "report: conversions counted once, at the start (cached)" grep -qF "data: 14 image files converted to RGB (PIL's convert(\"RGB\")) as torchvision's loader does: 6 grayscale, 2 gray+alpha, 2 palette, 2 RGBA, 2 CMYK" r1.txt
check "report: no line per file" test "$(grep -c mixed/ r1.err)" -eq 0
check "nothing skipped" grep -qF "skipped_images=0" r1.txt
check "RGB model, decoding every epoch: trains" sh -c "./rgb --out r2 --cache-mb 0 > r2.txt 2> r2.err"
check "report: conversions counted at the end without the cache" grep -qF "data: 14 image files converted to RGB" r2.txt
check "cache or not: the same checkpoint" cmp r1/last.ckpt r2/last.ckpt
check "gray model on the same tree: trains" sh -c "./gray --out g1 > g1.txt 2> g1.err"
check "report: converted to grayscale" grep -qF "data: 24 image files converted to grayscale (RGB, then PIL's convert(\"L\")) as torchvision's loader does: 2 gray+alpha, 2 palette, 16 RGB, 2 RGBA, 2 CMYK" g1.txt

# Corrupt files are skipped and counted: the bomb, damaged JPEG data, an ancillary chunk's CRC;
# among RGB photographs (the hymenoptera layout), so that nothing else differs.
$py "$root/tests/data/make_data.py" hymenoptera hostile 8 || exit 1
$py - <<'P' || exit 1
import io, struct
import numpy as np
from PIL import Image, PngImagePlugin
noise = lambda n: Image.fromarray(np.random.default_rng(n).integers(0, 255, (16 * n, 16 * n, 3)).astype(np.uint8))
b = io.BytesIO(); noise(1).save(b, "JPEG", quality=50); d = bytearray(b.getvalue())
sof = d.find(b"\xff\xc0"); struct.pack_into(">HH", d, sof + 5, 13000, 13000)
assert len(d) < 1024
open("hostile/train/bees/bomb.jpg", "wb").write(d)
b = io.BytesIO(); noise(4).save(b, "JPEG", quality=90); d = bytearray(b.getvalue())
sos = d.find(b"\xff\xda"); mid = sos + (len(d) - sos) // 2
d[mid:mid + 8] = bytes(x ^ 0x55 for x in d[mid:mid + 8])
open("hostile/train/bees/damaged.jpg", "wb").write(d)
info = PngImagePlugin.PngInfo(); info.add_text("Comment", "hello")
b = io.BytesIO(); noise(2).save(b, "PNG", pnginfo=info); d = bytearray(b.getvalue())
at = d.find(b"tEXt"); n = struct.unpack(">I", d[at - 4:at])[0]; d[at + 4 + n] ^= 1
open("hostile/train/bees/crc.png", "wb").write(d)
P
for cache in 2048 0; do
  check "corrupt files, --cache-mb $cache: trains" sh -c "./rgb --data hostile --out h$cache --cache-mb $cache > h$cache.txt 2> h$cache.err"
  check "the bomb is skipped, not decoded" grep -qF "warning: hostile/train/bees/bomb.jpg: not a readable JPEG: corrupt data (libjpeg: Corrupt JPEG data" h$cache.err
  check "damaged JPEG data is skipped" grep -qF "warning: hostile/train/bees/damaged.jpg: not a readable JPEG: corrupt data" h$cache.err
  check "a CRC error is skipped" grep -qF "warning: hostile/train/bees/crc.png: not a readable PNG: tEXt: CRC error" h$cache.err
  check "three skipped and counted" grep -qF "skipped_images=3" h$cache.txt
done

# --limit decodes only the images it uses (the corrupt files come after the first 16 training
# images, so nothing is skipped), and the test split, which is val's files here, is decoded
# once for both: 16 training and 8 validation images.
check "--limit 16: trains" sh -c "./rgb --data hostile --limit 16 --out lim > lim.txt 2> lim.err"
check "--limit: only the images in use are decoded, test once with val" grep -qF "(24 images, test is val's;" lim.txt
check "--limit: the corrupt files after the limit are not read" grep -qF "skipped_images=0" lim.txt

# Peak memory: ten 10000x10000 RGB images (300 MB each decoded), eight loader threads.
$py - <<'P' || exit 1
import os, shutil
from PIL import Image
for split, n in (("train", 8), ("test", 2)):
    for c in "ab":
        os.makedirs(f"big/{split}/{c}", exist_ok=True)
Image.new("RGB", (10000, 10000), (90, 140, 200)).save("one.png", compress_level=1)
for split, n in (("train", 8), ("test", 2)):
    for k in range(n):
        shutil.copy("one.png", f"big/{split}/{'ab'[k % 2]}/{k}.png")
os.remove("one.png")
P
check "build the big-image trainer" graph train_big 3 big
peak=$($py -c "
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=open('big.txt', 'w'), stderr=subprocess.STDOUT)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024 if r.returncode == 0 else -1)
" ./train_big --out b --cache-mb 0 --loader-threads 8 --threads 2)
echo "big images: max RSS $peak MB"
check "big images: trains" test "$peak" -gt 0
check "big images: max RSS under 1.5 GB" test "$peak" -lt 1536
check "big images: over PIL's warning size, counted" grep -qF "data: 10 image files have more than 89478485 pixels" big.txt
check_report folders
