// kernels_tile_shape.c: the block tile of a tensor-core product (kernels_tiles.c), chosen per
// product at compile time: the shape a sweep forces (TLC_TILE, read by the driver), else the
// row of tile_table.def that names the product, else 64 x 64. A shape the product cannot take
// (a convolution with batchnorm statistics needs 64-row tiles, its chunks; a block has 48 KiB
// of static shared memory) falls back to 64 x 64: the table is a speed hint, never a failure.
#include <string.h>

#include "lower.h"

typedef struct TileRow {
  const char *op;
  int64_t M, N, K;
  int bm, bn;
} TileRow;

static const TileRow tile_table[] = {
#define TILE(op, M, N, K, bm, bn) {#op, M, N, K, bm, bn},
#include "tile_table.def"
#undef TILE
    {NULL, 0, 0, 0, 0, 0},
};

bool kernel_tile_valid(TileShape s) {
  bool bm_ok = s.bm == 32 || s.bm == 64 || s.bm == 128;
  bool bn_ok = s.bn == 16 || s.bn == 32 || s.bn == 64 || s.bn == 128;
  return bm_ok && bn_ok;
}

TileShape kernel_tile_shape(const KernelTarget *t, const char *op, int64_t M, int64_t N, int64_t K) {
  if (t->tile.bm)
    return t->tile;
  for (const TileRow *r = tile_table; r->op; r++)
    if (r->M == M && r->N == N && r->K == K && !strcmp(r->op, op)) {
      TileShape s = {r->bm, r->bn};
      if (!kernel_tile_valid(s))
        fatal("internal error: codegen/tile_table.def gives %s's product %lldx%lldx%lld tiles of %dx%d, not %s", op,
              (long long)M, (long long)N, (long long)K, s.bm, s.bn, TILE_SHAPES);
      return s;
    }
  return (TileShape){64, 64};
}
