#!/usr/bin/env bash
# Compiles every kernel of a graph with NVRTC for one GPU architecture, as a trainer build
# would, and checks what comes out: no error and no warning, PTX and a cubin for that
# architecture with one entry per distinct kernel, and a second build served by the cache.
# NVRTC needs no GPU. Exit 77 (skipped) only when this machine has no NVRTC at all.
# usage: nvrtc.sh TLC GRAPH ARCH [--set ...]
set -euo pipefail
tlc=$1 graph=$2 arch=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TLC_CACHE_DIR=$work/cache

if ! "$tlc" "$graph" "$@" --emit=ptx --arch="$arch" >"$work/ptx" 2>"$work/err"; then
  if grep -q "NVRTC, which compiles the GPU kernels, was not found" "$work/err"; then
    cat "$work/err"
    exit 77
  fi
  head -c 4000 "$work/err"
  exit 1
fi
if [ -s "$work/err" ]; then
  echo "FAIL: NVRTC warned about the generated kernels of $graph for $arch:"
  head -c 4000 "$work/err"
  exit 1
fi

"$tlc" "$graph" "$@" --emit=cuda >"$work/cu"
functions=$(grep -c '^extern "C" __global__' "$work/cu")
entries=$(grep -c '^\.visible \.entry' "$work/ptx")
grep -q "^\.target $arch\$" "$work/ptx" || { echo "FAIL: the PTX is not for $arch"; exit 1; }
[ "$entries" -eq "$functions" ] || { echo "FAIL: $functions kernels in the CUDA C, $entries in the PTX"; exit 1; }
cached=$(ls "$TLC_CACHE_DIR")
[ "$(echo "$cached" | wc -l)" -eq 1 ] || { echo "FAIL: expected one cache entry, found: $cached"; exit 1; }
# The entry holds the cubin: an ELF for the architecture (e_machine 190 is EM_CUDA).
python3 - "$TLC_CACHE_DIR/$cached" "$arch" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
# codegen/cache.c's entry: magic, key, source and part sizes, then key, source, PTX, cubin.
magic, key, src, parts, ptx, cubin = struct.unpack_from('<8s5Q', data)
assert magic == b'tlccach2' and parts == 2, magic
elf = data[8 + 8 * 7 + key + src + ptx:]
assert len(elf) == cubin and elf[:4] == b'\x7fELF', 'no cubin in the cache entry'
assert struct.unpack_from('<H', elf, 18)[0] == 190, 'the cubin is not a CUDA ELF'
PY

# The same graph again: served from the cache, byte for byte.
start=$(date +%s%N)
"$tlc" "$graph" "$@" --emit=ptx --arch="$arch" | cmp - "$work/ptx"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "ok: $functions distinct kernels of $graph for $arch; cached rebuild ${ms} ms"
