// cache.c: compiled code kept on disk under what it was compiled from, so that building an
// unchanged graph again runs neither NVRTC nor LLVM. The cache is $TLC_CACHE_DIR, else
// $XDG_CACHE_HOME/tlc, else ~/.cache/tlc. An entry is named by a hash of its key (compiler,
// version, target) and source, and holds both: a hit must match them byte for byte, so a hash
// collision costs a compile, never wrong code. Writing is best effort: a cache that cannot be
// written only costs the next build a compile.
#include "kir.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_PARTS = 4 };

typedef struct EntryHeader {
  char magic[8];        // "tlccach2"
  uint64_t key_size, source_size, nparts, part_size[MAX_PARTS];
} EntryHeader;

static const char *cache_dir(Arena *a) {
  const char *env = getenv("TLC_CACHE_DIR");
  if (env && *env)
    return env;
  env = getenv("XDG_CACHE_HOME");
  if (env && *env)
    return arena_printf(a, "%s/tlc", env);
  env = getenv("HOME");
  return env && *env ? arena_printf(a, "%s/.cache/tlc", env) : NULL;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static const char *entry_path(Arena *a, const char *dir, const char *kind, const char *key, const char *source,
                              size_t source_size) {
  uint64_t h = fnv1a(fnv1a(0xcbf29ce484222325ull, key, strlen(key)), source, source_size);
  return arena_printf(a, "%s/%s-%016llx", dir, kind, (unsigned long long)h);
}

static bool read_exact(FILE *f, void *data, size_t n) { return fread(data, 1, n, f) == n; }

// Whether the next n bytes of f are data.
static bool same(FILE *f, const char *data, size_t n) {
  char *text = malloc(n + 1);
  bool ok = text && read_exact(f, text, n) && !memcmp(text, data, n);
  free(text);
  return ok;
}

bool cache_lookup(Arena *a, const char *kind, const char *key, const char *source, size_t source_size,
                  CacheBlob *parts, int nparts) {
  const char *dir = cache_dir(a);
  FILE *f = dir ? fopen(entry_path(a, dir, kind, key, source, source_size), "rb") : NULL;
  if (!f)
    return false;
  EntryHeader h;
  bool ok = read_exact(f, &h, sizeof h) && !memcmp(h.magic, "tlccach2", 8) && h.key_size == strlen(key) &&
            h.source_size == source_size && h.nparts == (uint64_t)nparts && same(f, key, h.key_size) &&
            same(f, source, source_size);
  for (int i = 0; ok && i < nparts; i++) {
    ok = h.part_size[i] < (1ull << 34);
    char *data = ok ? arena_alloc(a, h.part_size[i] + 1) : NULL;   // NUL-terminated for text parts
    ok = ok && read_exact(f, data, h.part_size[i]);
    parts[i] = (CacheBlob){data, h.part_size[i]};
  }
  ok = ok && fgetc(f) == EOF;
  fclose(f);
  return ok;
}

void cache_store(Arena *a, const char *kind, const char *key, const char *source, size_t source_size,
                 const CacheBlob *parts, int nparts) {
  const char *dir = cache_dir(a);
  if (!dir || nparts > MAX_PARTS)
    return;
  char *parent = arena_strdup(a, dir);
  for (char *s = parent + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      mkdir(parent, 0755);
      *s = '/';
    }
  mkdir(parent, 0755);
  const char *path = entry_path(a, dir, kind, key, source, source_size);
  const char *tmp = arena_printf(a, "%s.tmp%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return;
  EntryHeader h = {.magic = "tlccach2", .key_size = strlen(key), .source_size = source_size, .nparts = (uint64_t)nparts};
  for (int i = 0; i < nparts; i++)
    h.part_size[i] = parts[i].size;
  bool ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(key, 1, h.key_size, f) == h.key_size &&
            fwrite(source, 1, source_size, f) == source_size;
  for (int i = 0; ok && i < nparts; i++)
    ok = fwrite(parts[i].data, 1, parts[i].size, f) == parts[i].size;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path) != 0)
    remove(tmp);
}
