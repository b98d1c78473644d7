#!/usr/bin/env bash
# cache.sh TLC SCRATCH: building an unchanged graph again takes its CPU object (and its GPU
# code, where NVRTC is installed) from the cache (codegen/cache.c) and gives the same trainer
# byte for byte; a change of the kernels (the batch size) compiles anew; a damaged entry is
# compiled anew, never used.
set -u
tlc=$1 dir=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/check.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
export TLC_CACHE_DIR=$dir/cache
graph=$root/examples/fashion_cnn.graph

check "first build" "$tlc" "$graph" -o first
check "one CPU object cached" test "$(ls cache | grep -c '^cpu-')" -eq 1
start=$(date +%s%N)
check "second build" "$tlc" "$graph" -o second
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "the same trainer, byte for byte" cmp first second
check "still one CPU object" test "$(ls cache | grep -c '^cpu-')" -eq 1
check "other kernels, another entry" "$tlc" "$graph" --set batch=64 -o third
check "two CPU objects now" test "$(ls cache | grep -c '^cpu-')" -eq 2
for entry in cache/cpu-*; do   # damaged: the object cut in half
  size=$(stat -c %s "$entry")
  truncate -s $((size / 2)) "$entry"
done
check "a damaged entry is compiled anew" "$tlc" "$graph" -o fourth
check "to the same trainer" cmp first fourth
check "and trains" sh -c "./fourth --limit 256 --epochs 1 --device cpu --out run > train.txt"
echo "cached rebuild: $ms ms"
check_report e2e.cache
