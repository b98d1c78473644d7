// names.c: a string-keyed hash index, so that scopes with many layers (a generated
// model, or hostile input) stay linear to elaborate; and the nearest known name to a
// misspelt one.
#include "tlc.h"

#include <ctype.h>
#include <string.h>

static uint32_t hash_name(const char *s) {
  uint32_t h = 2166136261u;   // FNV-1a
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void insert(NameMap *m, const char *key, int val) {
  uint32_t mask = (uint32_t)m->cap - 1;
  for (uint32_t i = hash_name(key) & mask;; i = (i + 1) & mask) {
    if (!m->keys[i]) {
      m->keys[i] = key;
      m->vals[i] = val;
      m->count++;
      return;
    }
    if (!strcmp(m->keys[i], key)) {
      m->vals[i] = val;
      return;
    }
  }
}

void namemap_put(Arena *a, NameMap *m, const char *key, int val) {
  if (2 * (m->count + 1) > m->cap) {
    NameMap old = *m;
    m->cap = old.cap ? 2 * old.cap : 16;
    m->keys = arena_alloc(a, sizeof(char *) * (size_t)m->cap);
    m->vals = arena_alloc(a, sizeof(int) * (size_t)m->cap);
    m->count = 0;
    for (int i = 0; i < old.cap; i++)
      if (old.keys[i])
        insert(m, old.keys[i], old.vals[i]);
  }
  insert(m, key, val);
}

int namemap_get(const NameMap *m, const char *key) {
  if (!m->cap)
    return -1;
  uint32_t mask = (uint32_t)m->cap - 1;
  for (uint32_t i = hash_name(key) & mask; m->keys[i]; i = (i + 1) & mask)
    if (!strcmp(m->keys[i], key))
      return m->vals[i];
  return -1;
}

// Letters equal but for case: 'ReLU' is 'relu', in a substitution as in a swap.
static bool same_letter(char x, char y) { return tolower((unsigned char)x) == tolower((unsigned char)y); }

// Edits between two names: insertions, deletions, substitutions and swaps of neighbours ('sdg'
// is one edit from 'sgd'), with case differences free. Long names are too far from anything
// to be worth the quadratic table.
static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64)
    return 99;
  int d[65][65];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int sub = d[i - 1][j - 1] + !same_letter(a[i - 1], b[j - 1]);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
      if (i > 1 && j > 1 && same_letter(a[i - 1], b[j - 2]) && same_letter(a[i - 2], b[j - 1]) && d[i - 2][j - 2] + 1 < d[i][j])
        d[i][j] = d[i - 2][j - 2] + 1;
    }
  return d[la][lb];
}

void nearest_offer(Nearest *n, const char *candidate) {
  // No hint allows more than 3 edits, and lengths 4 apart need 4: a file of 200,000 names
  // costs no table for most of them.
  long apart = (long)strlen(n->name) - (long)strlen(candidate);
  if (apart > 3 || apart < -3)
    return;
  int d = edit_distance(n->name, candidate);
  if (!n->best || d < n->dist)
    n->best = candidate, n->dist = d;
}

// 'layer5' for 'layer1' is a wrong number, not a typo: naming layer1 would mislead.
static bool differ_in_digits_only(const char *a, const char *b) {
  for (;; a++, b++) {
    while (isdigit((unsigned char)*a))
      a++;
    while (isdigit((unsigned char)*b))
      b++;
    if (*a != *b)
      return false;
    if (!*a)
      return true;
  }
}

const char *nearest_hint(Arena *a, const Nearest *n) {
  // Short names allow fewer edits: 'lr' is not 'wd' misspelt, but 'reul' is 'relu'.
  int len = (int)strlen(n->name), limit = len <= 3 ? 1 : len <= 5 ? 2 : 3;
  if (!n->best || n->dist > limit || n->dist >= len || differ_in_digits_only(n->name, n->best))
    return "";
  return arena_printf(a, " (did you mean '%s'?)", n->best);
}

const char *nearest_hint_and(Arena *a, const Nearest *n, const char *known) {
  if (!nearest_hint(a, n)[0])
    return arena_printf(a, " (%s)", known);
  return arena_printf(a, " (did you mean '%s'? %s)", n->best, known);
}
