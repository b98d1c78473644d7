// rng.c: the trainer's random number generator.
//
// Contract: the same seed gives the same stream on every machine and compiler, forever;
// checkpoints store TlcRng.s and resume the stream exactly. Every value is derived from
// tlc_rng_next with integer arithmetic only, except the normal distribution, which needs
// log and cos (see tlc_rng_normal).
//
// Why xoroshiro128+ seeded by splitmix64: it is a few lines of integer code with no
// platform dependence (unlike rand() or random(), whose streams differ between C libraries),
// it is fast enough to draw per pixel in augmentation, its 128-bit state fits the two words
// a checkpoint records, and its statistical weakness is confined to the lowest bits, which
// nothing here uses: uniform floats take the top bits and bounded integers take the high
// half of a 128-bit product. splitmix64 spreads a small seed (0, 1, 42) over the whole
// state, as the generator's authors recommend.
#include "tlcrt.h"

#include <math.h>

static uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

void tlc_rng_seed(TlcRng *r, uint64_t seed) {
  // splitmix64 is a bijection of its counter, so two successive outputs are never both
  // zero: the all-zero state, xoroshiro's one fixed point, cannot be reached from a seed.
  r->s[0] = rng_splitmix64(&seed);
  r->s[1] = rng_splitmix64(&seed);
}

uint64_t tlc_rng_next(TlcRng *r) {
  // xoroshiro128+ (Blackman and Vigna, 2018), parameters a=24, b=16, c=37.
  uint64_t s0 = r->s[0], s1 = r->s[1];
  uint64_t result = s0 + s1;
  s1 ^= s0;
  r->s[0] = rng_rotl(s0, 24) ^ s1 ^ (s1 << 16);
  r->s[1] = rng_rotl(s1, 37);
  return result;
}

float tlc_rng_uniform(TlcRng *r) {
  // The top 24 bits fill a float's significand exactly: every value is k / 2^24, < 1.
  return (float)(tlc_rng_next(r) >> 40) * 0x1.0p-24f;
}

// A double in [0, 1) from the top 53 bits, for the normal distribution's tails.
static double rng_unit_double(TlcRng *r) { return (double)(tlc_rng_next(r) >> 11) * 0x1.0p-53; }

float tlc_rng_normal(TlcRng *r) {
  // Box-Muller, one value per call: caching the second value would put state outside s[],
  // and a checkpoint would then not resume the stream exactly. The math is done in double
  // and rounded to float, so a last-bit difference between two C libraries' log or cos
  // changes the float result only when the double falls within one double ulp of a float
  // rounding boundary (about one draw in 2^28). 53-bit inputs reach about 8.5 sigma.
  double u1 = 1.0 - rng_unit_double(r);  // (0, 1]: log(u1) is finite
  double u2 = rng_unit_double(r);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t tlc_rng_below(TlcRng *r, uint64_t bound) {
  // Lemire's multiply-and-reject: unbiased, uses the high (strong) bits of each draw, and
  // rejects only when the low half of the product falls below 2^64 mod bound.
  if (bound == 0)
    return 0;
  unsigned __int128 m = (unsigned __int128)tlc_rng_next(r) * bound;
  if ((uint64_t)m < bound) {
    uint64_t threshold = -bound % bound;
    while ((uint64_t)m < threshold)
      m = (unsigned __int128)tlc_rng_next(r) * bound;
  }
  return (uint64_t)(m >> 64);
}

void tlc_rng_shuffle(TlcRng *r, int32_t *items, int64_t n) {
  // Fisher-Yates from the back: every permutation is equally likely.
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)tlc_rng_below(r, (uint64_t)i + 1);
    int32_t t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
}
