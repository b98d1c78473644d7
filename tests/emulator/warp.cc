// warp.cc: shuffles, votes and __syncwarp. Each lane posts its operands and waits until every
// lane the mask names has arrived (block.cc, warp_wait); the last one computes every lane's
// result at once, as the hardware does for the whole warp.
//
// Shuffles follow the PTX ISA's shfl.sync (section "Data Movement and Conversion Instructions:
// shfl.sync"): the CUDA width w becomes the segment mask c[12:8] = 32 - w, with the clamp
// c[4:0] = 31 for idx, down and bfly, and 0 for up, so that
//   maxLane = (lane & segmask) | (clamp & ~segmask), minLane = lane & segmask
//   up: j = lane - b, valid if j >= maxLane    down: j = lane + b, valid if j <= maxLane
//   bfly: j = lane ^ b, valid if j <= maxLane  idx: j = minLane | (b & ~segmask), valid if j <= maxLane
// and an invalid j reads the lane's own value. b is the source lane or offset, 5 bits. A
// source lane that the mask does not name gives an undefined value in CUDA; here all ones
// (NaN for a float), so that reading it shows.
#include "block.h"

namespace emu {

namespace {

void complete_shuffle(Thread *const lanes[32]) {
  unsigned long long result[32];
  for (int lane = 0; lane < 32; lane++) {
    if (!lanes[lane])
      continue;
    const WarpOp &op = lanes[lane]->op;
    int segmask = (32 - op.width) & 31, b = op.arg & 31;
    int clamp = op.kind == TLC_EMU_SHFL_UP ? 0 : 31;
    int max_lane = (lane & segmask) | (clamp & ~segmask), min_lane = lane & segmask;
    int j = lane;
    bool valid = false;
    switch (op.kind) {
      case TLC_EMU_SHFL_UP:
        j = lane - b;
        valid = j >= max_lane;
        break;
      case TLC_EMU_SHFL_DOWN:
        j = lane + b;
        valid = j <= max_lane;
        break;
      case TLC_EMU_SHFL_XOR:
        j = lane ^ b;
        valid = j <= max_lane;
        break;
      default:
        j = min_lane | (b & ~segmask);
        valid = j <= max_lane;
        break;
    }
    if (!valid)
      j = lane;
    unsigned long long all_ones = op.size >= 8 ? ~0ull : (1ull << (8 * op.size)) - 1;
    result[lane] = lanes[j] ? lanes[j]->op.value : all_ones;
  }
  for (int lane = 0; lane < 32; lane++)
    if (lanes[lane])
      lanes[lane]->op.result = result[lane];
}

void complete_vote(Thread *const lanes[32]) {
  unsigned ballot = 0, all = 1, any = 0;
  for (int lane = 0; lane < 32; lane++)
    if (lanes[lane]) {
      int p = lanes[lane]->op.predicate;
      ballot |= static_cast<unsigned>(p != 0) << lane;
      all &= p != 0;
      any |= p != 0;
    }
  for (int lane = 0; lane < 32; lane++)
    if (lanes[lane]) {
      WarpOp &op = lanes[lane]->op;
      op.result = op.kind == TLC_EMU_VOTE_BALLOT ? ballot : op.kind == TLC_EMU_VOTE_ALL ? all : any;
    }
}

void complete_nothing(Thread *const lanes[32]) { (void)lanes; }

}  // namespace

void api_syncwarp(unsigned mask) {
  Worker &w = worker();
  Thread &t = *w.current;
  t.op = WarpOp{};
  t.op.name = "__syncwarp";
  t.op.mask = mask;
  t.op.complete = complete_nothing;
  warp_wait(w, t);
}

unsigned long long api_shuffle(int kind, unsigned mask, unsigned long long value, int size, int lane_or_delta,
                               int width) {
  static const char *const names[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync"};
  Worker &w = worker();
  Thread &t = *w.current;
  if (kind < 0 || kind > 3)
    block_fail(w, kLaunchFailed, where(w, t) + ": unknown shuffle " + std::to_string(kind));
  if (width < 1 || width > 32 || (width & (width - 1)))
    block_fail(w, kLaunchFailed, where(w, t) + ": " + names[kind] + " with width " + std::to_string(width) +
                                     "; the width must be a power of 2 from 1 to 32");
  t.op = WarpOp{};
  t.op.name = names[kind];
  t.op.mask = mask;
  t.op.complete = complete_shuffle;
  t.op.kind = kind;
  t.op.value = value;
  t.op.size = size;
  t.op.arg = lane_or_delta;
  t.op.width = width;
  warp_wait(w, t);
  return t.op.result;
}

unsigned api_vote(int kind, unsigned mask, int predicate) {
  static const char *const names[] = {"__ballot_sync", "__all_sync", "__any_sync"};
  Worker &w = worker();
  Thread &t = *w.current;
  if (kind < 0 || kind > 2)
    block_fail(w, kLaunchFailed, where(w, t) + ": unknown vote " + std::to_string(kind));
  t.op = WarpOp{};
  t.op.name = names[kind];
  t.op.mask = mask;
  t.op.complete = complete_vote;
  t.op.kind = kind;
  t.op.predicate = predicate;
  warp_wait(w, t);
  return static_cast<unsigned>(t.op.result);
}

}  // namespace emu
