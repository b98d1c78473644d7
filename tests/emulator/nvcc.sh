#!/usr/bin/env bash
# nvcc.sh INTRINSICS_CU SCRATCH: the kernels the emulator's tests run (intrinsics.cu, with the
# prelude it includes, and every planted variant but the syntax error) compile with the real
# CUDA compiler to PTX for sm_80 and sm_90, so the emulator runs code NVIDIA's compiler accepts.
# Exit 77 (skipped) where nvcc is not installed.
set -u
cu=$1 dir=$2
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
if ! [ -x "$nvcc" ]; then
  echo "SKIP: nvcc is not installed (the CUDA toolkit puts it in /usr/local/cuda/bin)"
  exit 77
fi
rm -rf "$dir" && mkdir -p "$dir" || exit 2
plants=$(grep -o '^//   PLANT_[A-Z_]*' "$cu" | sed 's|^//   ||' | grep -v PLANT_COMPILE_ERROR)
failed=0 passed=0
for arch in sm_80 sm_90; do
  for plant in "" $plants; do
    out="$dir/${arch}${plant:+_$plant}.ptx"
    if "$nvcc" -arch=$arch -ptx ${plant:+-D$plant} "$cu" -o "$out" > "$dir/log.txt" 2>&1 && [ ! -s "$dir/log.txt" ] &&
       grep -q "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" "$out"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      echo "FAIL: nvcc -arch=$arch ${plant:+-D$plant} intrinsics.cu"
      cat "$dir/log.txt"
    fi
  done
done
echo "emulator.nvcc: $passed passed, $failed failed ($("$nvcc" --version | tail -2 | head -1))"
[ "$failed" -eq 0 ]
