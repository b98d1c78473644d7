// kir_hash.c: kernels that can share one compiled function, found by the structure of their
// IR (the same op on the same shapes in repeated blocks): everything but names, comments and
// the sizes of global buffers (which no code reads) must be equal. EfficientNet-B5's 3,549
// kernels are 640 functions this way.
#include "kir.h"

#include <string.h>

typedef struct Hasher {
  uint64_t h;
} Hasher;

static void mix(Hasher *s, uint64_t v) {
  s->h ^= v + 0x9E3779B97F4A7C15ull + (s->h << 6) + (s->h >> 2);
  s->h *= 0xBF58476D1CE4E5B9ull;
}

static void mix_double(Hasher *s, double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  mix(s, bits);
}

static void hash_expr(Hasher *s, const KExpr *e) {
  if (!e) {
    mix(s, 0xE0);
    return;
  }
  mix(s, (uint64_t)e->kind << 8 | (uint64_t)e->type << 4 | (uint64_t)e->op);
  mix_double(s, e->f);
  mix(s, (uint64_t)e->i);
  mix(s, (uint64_t)e->var << 32 | (uint64_t)e->elem << 16 | (uint64_t)e->buf);
  hash_expr(s, e->a);
  hash_expr(s, e->b);
  hash_expr(s, e->c);
}

static void hash_stmt(Hasher *s, const KStmt *st) {
  if (!st) {
    mix(s, 0x5E);
    return;
  }
  mix(s, (uint64_t)st->kind << 32 | (uint64_t)st->var << 8 | (uint64_t)st->elem);
  mix(s, (uint64_t)st->parallel | (uint64_t)st->trans << 1 | (uint64_t)st->shuffle << 2);
  mix(s, (uint64_t)st->buf << 32 | (uint64_t)st->src_buf);
  mix(s, (uint64_t)st->src << 48 | (uint64_t)st->a << 32 | (uint64_t)st->b << 16 | (uint64_t)st->c);
  mix(s, (uint64_t)st->operand);
  mix(s, (uint64_t)st->a_buf << 32 | (uint64_t)st->rows << 16 | (uint64_t)st->cols);
  mix(s, (uint64_t)st->a_step * 31 + (uint64_t)st->a_row * 17 + (uint64_t)st->ldb);
  hash_expr(s, st->a_index);
  hash_expr(s, st->lo);
  hash_expr(s, st->hi);
  hash_expr(s, st->index);
  hash_expr(s, st->value);
  hash_expr(s, st->src_index);
  mix(s, (uint64_t)st->nbody);
  for (int i = 0; i < st->nbody; i++)
    hash_stmt(s, st->body[i]);
  hash_stmt(s, st->orelse);
}

uint64_t kir_hash(const Kernel *k) {
  Hasher s = {0xcbf29ce484222325ull};
  mix(&s, (uint64_t)k->kind << 1 | (uint64_t)k->bf16);
  mix(&s, (uint64_t)k->launch.grid);
  mix(&s, (uint64_t)k->launch.block << 32 | (uint64_t)k->launch.shared);
  for (int i = 0; i < k->nbufs; i++) {
    const KBuf *b = &k->bufs[i];
    mix(&s, (uint64_t)b->type << 8 | (uint64_t)b->written << 4 | (uint64_t)b->space);
    mix(&s, b->space != KSP_GLOBAL ? (uint64_t)b->elems : 0);
  }
  for (int i = 0; i < k->nvars; i++)
    mix(&s, (uint64_t)k->vars[i].type << 32 | (uint64_t)k->vars[i].count);
  hash_stmt(&s, k->body);
  return s.h;
}

static bool same_expr(const KExpr *a, const KExpr *b) {
  if (!a || !b)
    return a == b;
  return a->kind == b->kind && a->type == b->type && a->op == b->op && !memcmp(&a->f, &b->f, sizeof a->f) &&
         a->i == b->i && a->var == b->var && a->elem == b->elem && a->buf == b->buf && same_expr(a->a, b->a) &&
         same_expr(a->b, b->b) && same_expr(a->c, b->c);
}

static bool same_stmt(const KStmt *a, const KStmt *b) {
  if (!a || !b)
    return a == b;
  if (a->kind != b->kind || a->var != b->var || a->elem != b->elem || a->parallel != b->parallel ||
      a->buf != b->buf || a->src != b->src || a->a != b->a || a->b != b->b || a->c != b->c ||
      a->src_buf != b->src_buf || a->operand != b->operand || a->shuffle != b->shuffle || a->trans != b->trans ||
      a->a_buf != b->a_buf || a->rows != b->rows || a->cols != b->cols || a->a_step != b->a_step ||
      a->a_row != b->a_row || a->ldb != b->ldb || a->nbody != b->nbody)
    return false;
  if (!same_expr(a->lo, b->lo) || !same_expr(a->hi, b->hi) || !same_expr(a->index, b->index) ||
      !same_expr(a->value, b->value) || !same_expr(a->src_index, b->src_index) || !same_expr(a->a_index, b->a_index) ||
      !same_stmt(a->orelse, b->orelse))
    return false;
  for (int i = 0; i < a->nbody; i++)
    if (!same_stmt(a->body[i], b->body[i]))
      return false;
  return true;
}

bool kir_same(const Kernel *a, const Kernel *b) {
  if (a->kind != b->kind || a->bf16 != b->bf16 || memcmp(&a->launch, &b->launch, sizeof a->launch) ||
      a->nbufs != b->nbufs || a->nvars != b->nvars)
    return false;
  for (int i = 0; i < a->nbufs; i++) {
    const KBuf *x = &a->bufs[i], *y = &b->bufs[i];
    if (x->type != y->type || x->written != y->written || x->space != y->space ||
        (x->space != KSP_GLOBAL && x->elems != y->elems))
      return false;
  }
  for (int i = 0; i < a->nvars; i++)
    if (a->vars[i].type != b->vars[i].type || a->vars[i].count != b->vars[i].count)
      return false;
  return same_stmt(a->body, b->body);
}

// Open addressing on the hash; a match must also be structurally equal, so a collision
// costs a comparison, never a wrong kernel.
KernelTable *kir_table(Arena *a, Kernel **kernels, int n) {
  KernelTable *t = arena_alloc(a, sizeof *t);
  t->functions = arena_alloc(a, sizeof *t->functions * (size_t)(n + 1));
  t->function_of = arena_alloc(a, sizeof *t->function_of * (size_t)(n + 1));
  t->kernels = kernels;
  t->nkernels = n;
  int cap = 16;
  while (cap < 2 * n)
    cap *= 2;
  int *slots = arena_alloc(a, sizeof *slots * (size_t)cap);
  uint64_t *hashes = arena_alloc(a, sizeof *hashes * (size_t)(n + 1));
  for (int i = 0; i < cap; i++)
    slots[i] = -1;
  for (int i = 0; i < n; i++) {
    uint64_t h = kir_hash(kernels[i]);
    int s = (int)(h & (uint64_t)(cap - 1));
    while (slots[s] >= 0 && !(hashes[slots[s]] == h && kir_same(t->functions[slots[s]], kernels[i])))
      s = (s + 1) & (cap - 1);
    if (slots[s] < 0) {
      slots[s] = t->nfunctions;
      hashes[t->nfunctions] = h;
      t->functions[t->nfunctions++] = kernels[i];
    }
    t->function_of[i] = slots[s];
  }
  return t;
}
