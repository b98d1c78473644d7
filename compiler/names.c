// names.c: a string-keyed hash index, so that scopes with many layers (a generated
// model, or hostile input) stay linear to elaborate.
#include "tlc.h"

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
