// cuda_program.c: a trainer's GPU kernels as one CUDA C program, and its compilation with a
// cache. Identical kernels (kir_hash.c) share one function, named after the first of them.
// Compiled code is cached on disk under the program's source, so building an unchanged
// graph again does not run NVRTC.
#include "kir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void print_sharers(FILE *out, const KernelTable *t, int function) {
  int shown = 0, total = 0;
  for (int i = 0; i < t->nkernels; i++)
    total += t->function_of[i] == function;
  if (--total <= 0)   // the first user is the function itself
    return;
  fprintf(out, "// also runs %d more kernel%s:", total, total == 1 ? "" : "s");
  for (int i = 0, seen = 0; i < t->nkernels && shown < 8; i++)
    if (t->function_of[i] == function && seen++)
      fprintf(out, "%s %s", shown++ ? "," : "", t->kernels[i]->name);
  fprintf(out, "%s\n", total > shown ? ", ..." : "");
}

// The prelude (f < 0) or function f's text, with the kernels it also runs.
static char *capture(Arena *a, const KernelTable *t, int f) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (!out)
    fatal("out of memory");
  if (f >= 0) {
    print_sharers(out, t, f);
    kir_cuda_print(out, t->functions[f]);
  } else {
    kir_cuda_prelude(out);
  }
  fclose(out);
  char *copy = arena_strndup(a, text, len);
  free(text);
  return copy;
}

CudaProgram *cuda_program(Arena *a, Kernel **kernels, int n) {
  CudaProgram *p = arena_alloc(a, sizeof *p);
  const KernelTable *t = p->table = kir_table(a, kernels, n);
  p->prelude = capture(a, t, -1);
  p->function_source = arena_alloc(a, sizeof *p->function_source * (size_t)(t->nfunctions + 1));
  size_t len = strlen(p->prelude);
  for (int f = 0; f < t->nfunctions; f++) {
    p->function_source[f] = capture(a, t, f);
    len += strlen(p->function_source[f]) + 1;
  }
  p->source = arena_alloc(a, len + 1);
  char *end = stpcpy(p->source, p->prelude);
  for (int f = 0; f < t->nfunctions; f++)
    end = stpcpy(stpcpy(end, p->function_source[f]), "\n");
  p->source_size = (size_t)(end - p->source);
  return p;
}

// The cache: $TLC_CACHE_DIR, else $XDG_CACHE_HOME/tlc, else ~/.cache/tlc. An entry is
// named by a hash of what was compiled and holds the source itself, which a hit must
// match byte for byte, so a hash collision costs a compile, never a wrong kernel.
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

typedef struct CacheHeader {
  char magic[8];        // "tlccuda1"
  uint64_t source_size, ptx_size, cubin_size;
} CacheHeader;

static bool read_exact(FILE *f, void *data, size_t n) { return fread(data, 1, n, f) == n; }

static bool cache_read(Arena *a, const char *path, const CudaProgram *p, CudaCode *out) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  CacheHeader h;
  bool ok = read_exact(f, &h, sizeof h) && !memcmp(h.magic, "tlccuda1", 8) && h.source_size == p->source_size &&
            h.ptx_size < (1ull << 34) && h.cubin_size < (1ull << 34);
  char *source = ok ? malloc(p->source_size) : NULL;
  ok = ok && source && read_exact(f, source, p->source_size) && !memcmp(source, p->source, p->source_size);
  free(source);
  if (ok) {
    out->ptx = arena_alloc(a, h.ptx_size + 1);
    out->cubin = arena_alloc(a, h.cubin_size + 1);
    out->ptx_size = h.ptx_size, out->cubin_size = h.cubin_size;
    ok = read_exact(f, out->ptx, h.ptx_size) && read_exact(f, out->cubin, h.cubin_size) && fgetc(f) == EOF;
  }
  fclose(f);
  return ok;
}

// Best effort: a cache that cannot be written only costs the next build a compile.
static void cache_write(Arena *a, const char *dir, const char *path, const CudaProgram *p, const CudaCode *code) {
  char *parent = arena_strdup(a, dir);
  for (char *s = parent + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      mkdir(parent, 0755);
      *s = '/';
    }
  mkdir(parent, 0755);
  const char *tmp = arena_printf(a, "%s.tmp%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return;
  CacheHeader h = {"tlccuda1", p->source_size, code->ptx_size, code->cubin_size};
  bool ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(p->source, 1, p->source_size, f) == p->source_size &&
            fwrite(code->ptx, 1, code->ptx_size, f) == code->ptx_size &&
            fwrite(code->cubin, 1, code->cubin_size, f) == code->cubin_size;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path) != 0)
    remove(tmp);
}

int cuda_program_compile(Arena *a, const CudaProgram *p, const char *arch, CudaCode *out, bool *cached,
                         const char **error) {
  const char *version = nvrtc_version(a);
  const char *dir = cache_dir(a);
  *cached = false;
  const char *path = NULL;
  if (version && dir) {
    uint64_t h = fnv1a(0xcbf29ce484222325ull, p->source, p->source_size);
    const char *key = arena_printf(a, "%s nvrtc %s", arch, version);
    h = fnv1a(h, key, strlen(key));
    path = arena_printf(a, "%s/%s-%016llx.cuda", dir, arch, (unsigned long long)h);
    if (cache_read(a, path, p, out))
      return *cached = true, 0;
  }
  if (nvrtc_compile(a, p->source, "tlc_kernels.cu", arch, out, error))
    return -1;
  if (path)
    cache_write(a, dir, path, p, out);
  return 0;
}
