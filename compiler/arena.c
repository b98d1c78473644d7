// arena.c: one bump allocator for all compiler data. Nothing is freed on its own;
// the whole arena goes at exit, so no function has to track ownership.
#include "tlc.h"

#include <stdlib.h>
#include <string.h>

enum { CHUNK = 1 << 20 };

typedef struct Chunk {
  struct Chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} Chunk;

struct Arena {
  Chunk *head;
};

static Chunk *chunk_new(size_t cap) {
  Chunk *c = malloc(sizeof(Chunk) + cap);
  if (!c)
    fatal("out of memory (asked for %zu bytes)", cap);
  c->next = NULL;
  c->used = 0;
  c->cap = cap;
  return c;
}

Arena *arena_new(void) {
  Arena *a = malloc(sizeof *a);
  if (!a)
    fatal("out of memory");
  a->head = chunk_new(CHUNK);
  return a;
}

void arena_free(Arena *a) {
  for (Chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void *arena_alloc(Arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  Chunk *c = a->head;
  if (c->cap - c->used < size) {
    c = chunk_new(size > CHUNK ? size : CHUNK);
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

void arena_grow(Arena *a, void **items, int *cap, int need, size_t elem_size) {
  if (need <= *cap)
    return;
  int cap2 = *cap ? *cap : 8;
  while (cap2 < need)
    cap2 *= 2;
  void *p = arena_alloc(a, (size_t)cap2 * elem_size);
  if (*cap)
    memcpy(p, *items, (size_t)*cap * elem_size);
  *items = p;
  *cap = cap2;
}
