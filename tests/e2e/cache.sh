#!/usr/bin/env bash
# cache.sh TLC SCRATCH: building an unchanged graph again takes its CPU objects (and its GPU
# code, where NVRTC is installed) from the cache (codegen/cache.c) and gives the same trainer
# byte for byte; a change of the kernels (the batch size) compiles anew; a damaged entry is
# compiled anew, never used. The CPU kernels compile as shards on threads
# (codegen/kir_llvm_shards.c): a trainer built on one thread is the same, byte for byte, as
# one built on four.
set -u
tlc=$1 dir=$2
. "$(dirname "$0")/../check.sh"
fresh_dir "$dir"
export TLC_CACHE_DIR=$dir/cache
graph=$root/examples/fashion_cnn.graph

cpu_entries() { ls cache | grep -c '^cpu-'; }
check "first build, on 4 threads" sh -c "TLC_COMPILE_TIMES=1 '$tlc' '$graph' -j 4 -o first 2> times.txt"
shards=$(grep -c 'cpu shard .*: compiled' times.txt)
check "several shards compiled (so that the threads had work to share)" test "$shards" -ge 2
check "one CPU object cached per shard" test "$(cpu_entries)" -eq "$shards"
check "a cold build on one thread" env TLC_CACHE_DIR="$dir/cache1" "$tlc" "$graph" -j 1 -o one_thread
check "gives the trainer of four, byte for byte" cmp first one_thread
start=$(date +%s%N)
check "second build" "$tlc" "$graph" -o second
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "the same trainer, byte for byte" cmp first second
check "no CPU object added" test "$(cpu_entries)" -eq "$shards"
check "other kernels, other entries" "$tlc" "$graph" --set batch=64 -o third
check "more CPU objects now" test "$(cpu_entries)" -gt "$shards"
for entry in cache/cpu-*; do   # damaged: the object cut in half
  size=$(stat -c %s "$entry")
  truncate -s $((size / 2)) "$entry"
done
check "a damaged entry is compiled anew" "$tlc" "$graph" -o fourth
check "to the same trainer" cmp first fourth
check "and trains" sh -c "./fourth --limit 256 --epochs 1 --device cpu --out run > train.txt"
echo "cached rebuild: $ms ms"
check_report e2e.cache
