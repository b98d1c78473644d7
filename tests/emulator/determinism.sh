#!/usr/bin/env bash
# determinism.sh INTRINSICS_TEST LIBCUDA INTRINSICS_CU SCRATCH: a racy kernel (block_sum without
# its barriers) gives the same bits whether one or two OS threads run its blocks, and other bits
# with another TLC_EMU_SEED: the order of a block's threads comes from (seed, launch, block) only.
set -u
test=$1 lib=$2 cu=$3 dir=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/check.sh"
mkdir -p "$dir" && cd "$dir" || exit 2
racy() { TLC_EMU_SEED=$1 TLC_EMU_THREADS=$2 "$test" "$lib" "$cu" "$dir" --racy > "sums_$1_$2.txt"; }
check "seed 1, one OS thread" racy 1 1
check "seed 1, two OS threads" racy 1 2
check "seed 2, two OS threads" racy 2 2
check "one or two OS threads: the same bits" cmp -s sums_1_1.txt sums_1_2.txt
check "another seed: other bits" sh -c '! cmp -s sums_1_2.txt sums_2_2.txt'
check "16 sums" test "$(wc -l < sums_1_1.txt)" -eq 16
check_report emulator.determinism
