// tensor_core.cc: ldmatrix and mma.sync m16n8k16 (bf16 in, f32 accumulate), the warp-wide
// operations tensor-core tiles are made of. Both wait for all 32 lanes of the warp (their
// .sync.aligned forms), then compute every lane's registers from the layouts of the PTX ISA
// (release 8.x numbering; the titles are stable across releases):
//
// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16, section 9.7.14.5.15 "Warp-level
// matrix load instruction: ldmatrix": matrix i (of 1, 2 or 4) has its eight rows at the
// addresses lanes 8i .. 8i+7 give (each the start of a 16-byte row of eight 16-bit
// elements, 16-byte aligned, in shared memory); lane l receives in register i the elements
// (row l/4, columns 2(l%4) and 2(l%4)+1) of matrix i, the lower column in the lower half.
// With .trans the matrix is read column-major: lane l receives (rows 2(l%4) and 2(l%4)+1,
// column l/4), the lower row in the lower half.
//
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, section 9.7.14.5.8 "Matrix Fragments
// for mma.m16n8k16 with floating point type", with groupID = lane >> 2 and
// threadID_in_group = lane % 4:
//   A (16x16, row-major), four .b32 registers holding a0..a7, low half first:
//     row = groupID for ai with 0 <= i < 2 or 4 <= i < 6, groupID + 8 otherwise
//     col = threadID_in_group * 2 + (i & 1), plus 8 for i >= 4
//   B (16x8, column-major), two .b32 registers holding b0..b3:
//     row (k) = threadID_in_group * 2 + (i & 1), plus 8 for i >= 2; col (n) = groupID
//   C and D (16x8 f32), four registers c0..c3:
//     row = groupID for i < 2, groupID + 8 otherwise; col = threadID_in_group * 2 + (i & 1)
// The ISA leaves the order and precision of the accumulation open; here each product is exact
// (bf16 times bf16 fits a float) and the sum runs in float over k = 0..15, starting from c.
#include <cstring>

#include "block.h"
#include "profile.h"

namespace emu {

namespace {

float bf16(unsigned short bits) {
  unsigned u = static_cast<unsigned>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

unsigned short half_of(unsigned reg, int high) { return static_cast<unsigned short>(high ? reg >> 16 : reg & 0xffff); }

unsigned short load16(const void *row, int element) {
  unsigned short v;
  std::memcpy(&v, static_cast<const unsigned char *>(row) + 2 * element, sizeof v);
  return v;
}

void complete_ldmatrix(Thread *const lanes[32]) {
  Worker &w = worker();
  const WarpOp &op = lanes[0]->op;
  for (int lane = 1; lane < 32; lane++)
    if (lanes[lane]->op.count != op.count || lanes[lane]->op.trans != op.trans)
      block_fail(w, kLaunchFailed, where(w, *lanes[lane]) + ": the lanes of a warp run different ldmatrix forms "
                                                            "(.x1/.x2/.x4, .trans); ldmatrix is .aligned");
  const void *rows[32];
  for (int r = 0; r < 8 * op.count; r++) {
    rows[r] = lanes[r]->op.row;
    if (reinterpret_cast<std::uintptr_t>(rows[r]) % 16)
      block_fail(w, kMisaligned, where(w, *lanes[r]) + ": ldmatrix row address " + std::to_string(
                                     reinterpret_cast<std::uintptr_t>(rows[r])) + " is not 16-byte aligned");
    if (!in_shared_memory(w, rows[r], 16))
      block_fail(w, kIllegalAddress, where(w, *lanes[r]) + ": ldmatrix row address is not in shared memory");
  }
  for (int lane = 0; lane < 32; lane++) {
    unsigned *regs = lanes[lane]->op.regs;
    for (int i = 0; i < op.count; i++) {
      const void *const *m = rows + 8 * i;
      unsigned lo, hi;
      if (!op.trans) {
        lo = load16(m[lane / 4], 2 * (lane % 4));
        hi = load16(m[lane / 4], 2 * (lane % 4) + 1);
      } else {
        lo = load16(m[2 * (lane % 4)], lane / 4);
        hi = load16(m[2 * (lane % 4) + 1], lane / 4);
      }
      regs[i] = lo | hi << 16;
    }
  }
}

void complete_mma(Thread *const lanes[32]) {
  float a[16][16], b[16][8], c[16][8];
  for (int lane = 0; lane < 32; lane++) {
    const WarpOp &op = lanes[lane]->op;
    int group = lane >> 2, in_group = lane % 4;
    for (int i = 0; i < 8; i++) {
      int row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
      int col = in_group * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      a[row][col] = bf16(half_of(op.regs[i / 2], i & 1));
    }
    for (int i = 0; i < 4; i++) {
      int k = in_group * 2 + (i & 1) + (i >= 2 ? 8 : 0);
      b[k][group] = bf16(half_of(op.b[i / 2], i & 1));
    }
    for (int i = 0; i < 4; i++)
      c[i < 2 ? group : group + 8][in_group * 2 + (i & 1)] = op.c[i];
  }
  for (int lane = 0; lane < 32; lane++) {
    WarpOp &op = lanes[lane]->op;
    int group = lane >> 2, in_group = lane % 4;
    for (int i = 0; i < 4; i++) {
      int row = i < 2 ? group : group + 8, col = in_group * 2 + (i & 1);
      float sum = c[row][col];
      for (int k = 0; k < 16; k++)
        sum += a[row][k] * b[k][col];
      op.d[i] = sum;
    }
  }
}

// ldmatrix and mma are .aligned: every lane of the warp takes part, and the warp must be whole.
void whole_warp(Worker &w, Thread &t, const char *name) {
  if (warp_lanes(w, t) != 0xffffffffu)
    block_fail(w, kLaunchFailed, where(w, t) + ": " + name + " needs all 32 lanes of a warp, and this block's warp " +
                                     std::to_string(t.warp) + " has " + std::to_string(w.nthreads - 32 * t.warp));
  t.op.mask = 0xffffffffu;
}

}  // namespace

void api_ldmatrix(unsigned *r, int count, int trans, const void *row) {
  Worker &w = worker();
  Thread &t = *w.current;
  if (count != 1 && count != 2 && count != 4)
    block_fail(w, kLaunchFailed, where(w, t) + ": ldmatrix of " + std::to_string(count) + " matrices");
  t.op = WarpOp{};
  t.op.name = "ldmatrix";
  whole_warp(w, t, "ldmatrix");
  t.op.complete = complete_ldmatrix;
  t.op.row = row;
  t.op.count = count;
  t.op.trans = trans;
  warp_wait(w, t);
  std::memcpy(r, t.op.regs, sizeof *r * static_cast<std::size_t>(count));
}

void api_mma_16816_bf16(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]) {
  Worker &w = worker();
  Thread &t = *w.current;
  t.op = WarpOp{};
  t.op.name = "mma.m16n8k16";
  if (profiling())
    profile_mma_lane();
  whole_warp(w, t, "mma.sync.aligned.m16n8k16");
  t.op.complete = complete_mma;
  std::memcpy(t.op.regs, a, sizeof t.op.regs);
  std::memcpy(t.op.b, b, sizeof t.op.b);
  std::memcpy(t.op.c, c, sizeof t.op.c);
  warp_wait(w, t);
  std::memcpy(d, t.op.d, sizeof t.op.d);
}

}  // namespace emu
