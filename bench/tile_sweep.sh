#!/usr/bin/env bash
# tile_sweep.sh: times a few block tiles of the tensor-core products on the GPU, and writes the
# table of the fastest per product that tlc reads at compile time (codegen/tile_table.def,
# codegen/kernels_tile_shape.c).
#   bench/tile_sweep.sh build            here: build/gpu/tiles.tar.xz, to carry to the device
#   bench/tile_sweep.sh run PACK         on the GPU machine: writes $OUT/tile_table.def, $OUT/tiles.txt
# build: the benchmark's resnet18 fine-tune (examples/resnet18_ft.graph, 224 px, batch 128,
# CPU code for x86-64-v3) once per tile shape (TLC_TILE forces it on every product), and
# tiles.keys: each kernel's product (op M N K) from the kernels' headers (--emit=cuda).
# run: each trainer --profile'd over 256 synthetic photos (two training steps, each kernel
# timed), then for each product the shape whose launches took least time in the training step.
# tile_table.def keeps the products whose best shape is not 64 x 64 (the default); commit it as
# codegen/tile_table.def. Under 3 minutes for the four shapes (each run is stopped after 40 s).
set -euo pipefail
shapes=${TILE_SHAPES:-"64x64 128x64 64x128 128x128"}
mode=${1:-}
root=$(cd "$(dirname "$0")/.." && pwd)

build() {
  local tlc=$root/build/tlc stage=$root/build/gpu/tiles
  rm -rf "$stage" && mkdir -p "$stage/bench"
  local settings=(--set 'data=image_folder("data/bench")' --set classes=10 --set weights=none --set epochs=1
    --set batch=128 --cpu=x86-64-v3)
  for shape in $shapes; do
    echo "tile_sweep: building tiles of $shape"
    TLC_TILE=$shape "$tlc" "$root/examples/resnet18_ft.graph" "${settings[@]}" -o "$stage/tiles_$shape"
  done
  strip "$stage"/tiles_*
  "$tlc" "$root/examples/resnet18_ft.graph" "${settings[@]}" --emit=cuda | python3 -c '
import re, sys
# A function: "// also runs N more kernels: a, b" (when shared), its comment, its launch line,
# "//   tiles of BM x BN of the product OP M .. N .. K ..", ..., then its name. The kernels it
# also runs have its product.
sharers, product = [], None
for line in sys.stdin:
    m = re.match(r"// also runs \d+ more kernels?: (.*)", line)
    if m:
        sharers = [s for s in m.group(1).replace("...", "").replace(",", " ").split()]
        continue
    m = re.match(r"//   tiles of \d+ x \d+ of the product (\w+) M (\d+) N (\d+) K (\d+)", line)
    if m:
        product = " ".join(m.groups())
        continue
    m = re.match(r"extern \"C\" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(", line)
    if m:
        if product:
            for name in [m.group(1)] + sharers:
                print(name + "\t" + product)
        sharers, product = [], None
' > "$stage/tiles.keys"
  cp "$root/bench/gpu.sh" "$root/bench/tile_sweep.sh" "$stage/bench/"
  echo "$shapes" > "$stage/shapes.txt"
  tar -C "$stage" -cf - . | xz -T2 -6e > "$root/build/gpu/tiles.tar.xz"
  rm -rf "$stage"
  du -h "$root/build/gpu/tiles.tar.xz"
}

run() {
  local pack=$1 out=${OUT:-$PWD/tile-results} work
  work=$(mktemp -d)
  mkdir -p "$out"
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$pack" "$work"
  cd "$work"
  bench/gpu.sh 256 none > /dev/null 2>&1   # only makes the photos (data/bench)
  for shape in $(cat shapes.txt); do
    timeout 40 ./tiles_$shape --device cuda --profile --data data/bench --limit 256 --epochs 1 --weights none \
      --out runs/$shape > "$out/tiles_$shape.txt" 2>&1 || echo "tile_sweep: tiles of $shape did not finish"
  done
  python3 - "$out" $(cat shapes.txt) <<'PY'
import collections, os, sys
out, shapes = sys.argv[1], sys.argv[2:]
keys = dict(line.rstrip("\n").split("\t") for line in open("tiles.keys"))
times = collections.defaultdict(dict)   # product -> shape -> ms per training step
for shape in shapes:
    path = f"runs/{shape}/profile.tsv"
    if not os.path.exists(path):
        continue
    for line in list(open(path))[1:]:
        kind, kernel, ms, _ = line.split("\t")
        if kind == "train" and kernel in keys:
            times[keys[kernel]][shape] = times[keys[kernel]].get(shape, 0.0) + float(ms)
rows, report, base, best_total = [], [], 0.0, 0.0
for product, by_shape in sorted(times.items()):
    if len(by_shape) < len(shapes):
        continue   # a shape's run did not finish: no choice for it
    best = min(by_shape, key=by_shape.get)
    base += by_shape["64x64"] if "64x64" in by_shape else 0.0
    best_total += by_shape[best]
    report.append(product + "  " + "  ".join(f"{s} {by_shape[s]:.3f}" for s in shapes) + f"  best {best}")
    if best != "64x64":
        op, m, n, k = product.split()
        bm, bn = best.split("x")
        rows.append(f"TILE({op}, {m}, {n}, {k}, {bm}, {bn})")
with open(f"{out}/tiles.txt", "w") as f:
    f.write("product (op M N K)  ms per training step for each tile shape  fastest\n")
    f.write("\n".join(report) + "\n")
    f.write(f"tensor-core products: {base:.2f} ms per step at 64x64, {best_total:.2f} ms at each one's fastest\n")
with open(f"{out}/tile_table.def", "w") as f:
    f.write("""// tile_table.def: the block tile of C for each tensor-core product tlc has measured on a GPU,
// read by kernels_tile_shape.c. Written by bench/tile_sweep.sh on the GPU machine (the
// fastest of a few tile shapes per product, timed with --profile in a resnet18 fine-tune at
// batch 128), then committed. A product not listed here takes 64 x 64.
//   TILE(op, M, N, K, bm, bn): the product C[M, N] = A[M, K] B[N, K] of op
// (conv2d, conv2d_dx, conv2d_dw, linear, linear_dx, linear_dw) runs on tiles of bm x bn.
""")
    f.write("\n".join(rows) + ("\n" if rows else ""))
print(open(f"{out}/tiles.txt").read(), end="")
print(f"tile_sweep: {len(rows)} products faster on another shape than 64x64; {out}/tile_table.def")
PY
}

case $mode in
  build) build ;;
  run) run "${2:?tile_sweep.sh run PACK}" ;;
  *) echo "usage: bench/tile_sweep.sh build | run PACK"; exit 2 ;;
esac
