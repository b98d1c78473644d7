// base.h: what every stage of the compiler uses, the front end and the code generators
// alike: arenas, a string-keyed index, and the fatal error that ends a compilation.
#ifndef TLC_BASE_H
#define TLC_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Arena Arena;

//
// arena.c: bump allocation for everything with the compilation's lifetime
//
Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size);           // zeroed
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Grows *items (of *cap elements of elem_size) to hold at least need elements.
void arena_grow(Arena *a, void **items, int *cap, int need, size_t elem_size);
#define ARENA_PUSH(a, arr, n, cap, v)                                            \
  do {                                                                          \
    arena_grow((a), (void **)&(arr), &(cap), (n) + 1, sizeof *(arr));           \
    (arr)[(n)++] = (v);                                                         \
  } while (0)

//
// names.c: a string-keyed hash index
//
typedef struct NameMap {
  const char **keys;    // open addressing; NULL marks an empty slot
  int *vals;
  int cap, count;
} NameMap;

void namemap_put(Arena *a, NameMap *m, const char *key, int val);   // replaces an existing key
int namemap_get(const NameMap *m, const char *key);                 // -1 when absent

// The known name nearest to a misspelt one: offer each candidate, then ask for the hint,
// " (did you mean 'NAME'?)", or "" when none is close enough to be a typo of it.
typedef struct Nearest {
  const char *name;     // the name that was not found
  const char *best;
  int dist;
} Nearest;

void nearest_offer(Nearest *n, const char *candidate);
const char *nearest_hint(Arena *a, const Nearest *n);
// The hint and the known names in one parenthesis: " (did you mean 'x'? known: x, y)".
const char *nearest_hint_and(Arena *a, const Nearest *n, const char *known);

// diag.c: a message without a source position (a compiler bug, a file that cannot be
// written); prints "tlc: error: ..." and exits with status 1.
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
