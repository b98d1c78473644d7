// fuzz_bundle.c: the kernel bundle (bundle.cc) as a trainer and `tlc inspect` read it, from
// memory that ends where the bundle ends, at an 8-byte aligned address and at addresses 4 and
// 1 past one (a trainer's section need not be aligned). An accepted bundle must read the same
// at every address, every launch naming one of its functions with sane launch dimensions, its
// strings terminated within the buffer.
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void check_bundle(const TlcBundle *b) {
  fuzz_touch(b->arch, strlen(b->arch) + 1);
  fuzz_touch(b->nvrtc, strlen(b->nvrtc) + 1);
  fuzz_touch(b->prelude, strlen(b->prelude) + 1);
  fuzz_touch(b->ptx, b->ptx_size + 1);
  fuzz_touch(b->cubin, b->cubin_size);
  for (int i = 0; i < b->nfunctions; i++) {
    fuzz_touch(b->functions[i].name, strlen(b->functions[i].name) + 1);
    fuzz_touch(b->functions[i].source, strlen(b->functions[i].source) + 1);
  }
  for (int i = 0; i < b->nlaunches; i++) {
    const TlcBundleLaunch *l = &b->launches[i];
    fuzz_require(l->function < (uint32_t)b->nfunctions, "launch %d names function %u of %d", i, l->function,
                 b->nfunctions);
    fuzz_require(l->grid > 0 && l->block > 0 && l->block <= 1024 && l->shared >= 0,
                 "launch %d has %lld blocks of %d threads", i, (long long)l->grid, l->block);
    fuzz_touch(l->kernel, strlen(l->kernel) + 1);
    fuzz_touch(l->comment, strlen(l->comment) + 1);
  }
}

void fuzz_one(const char *path, const uint8_t *bytes, size_t size) {
  (void)path;
  static const size_t offsets[] = {0, 4, 1};
  int accepted = -1, nlaunches = 0, nfunctions = 0;
  for (int k = 0; k < 3; k++) {
    uint8_t *room = malloc(size + offsets[k] + (size == 0)), *at = room + offsets[k];
    memcpy(at, bytes, size);
    TlcBundle b;
    TlcError err = {{0}};
    int ok = tlc_bundle_read(at, size, &b, &err) == 0;
    fuzz_require(accepted < 0 || ok == accepted, "the bundle reads at one address and not at another");
    if (ok) {
      check_bundle(&b);
      fuzz_require(accepted < 0 || (b.nlaunches == nlaunches && b.nfunctions == nfunctions),
                   "the bundle reads differently at another address");
      nlaunches = b.nlaunches, nfunctions = b.nfunctions;
      tlc_bundle_free(&b);
    } else {
      fuzz_refused(&err, "kernel bundle");
    }
    accepted = ok;
    free(room);
  }
}
