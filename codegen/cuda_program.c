// cuda_program.c: a trainer's GPU kernels as one CUDA C program, and its compilation with a
// cache (cache.c), at once or on a thread of its own while LLVM compiles the CPU kernels.
// Identical kernels (kir_hash.c) share one function, named after the first of them.
#include "kir.h"

#include <errno.h>
#include <pthread.h>
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

int cuda_program_compile(Arena *a, const CudaProgram *p, const char *arch, CudaCode *out, bool *cached,
                         const char **error) {
  const char *version = nvrtc_version(a);
  const char *key = arena_printf(a, "%s nvrtc %s split %d", arch, version ? version : "none", NVRTC_SPLIT);
  CacheBlob parts[2];
  *cached = version && cache_lookup(a, "cuda", key, p->source, p->source_size, parts, 2);
  if (*cached) {
    *out = (CudaCode){.ptx = (char *)parts[0].data, .ptx_size = parts[0].size, .cubin = (char *)parts[1].data,
                      .cubin_size = parts[1].size};
    return 0;
  }
  if (nvrtc_compile(a, p->source, "tlc_kernels.cu", arch, out, error))
    return -1;
  cache_store(a, "cuda", key, p->source, p->source_size,
              (CacheBlob[]){{out->ptx, out->ptx_size}, {out->cubin, out->cubin_size}}, 2);
  return 0;
}

struct CudaCompile {
  pthread_t thread;
  bool started;
  Arena *arena;                   // the thread's own: arenas are not shared between threads
  const CudaProgram *program;
  const char *arch, *error;
  CudaCode code;
  bool cached;
  int status;
};

static void *compile_thread(void *arg) {
  CudaCompile *c = arg;
  double start = thread_seconds();
  c->status = cuda_program_compile(c->arena, c->program, c->arch, &c->code, &c->cached, &c->error);
  if (getenv("TLC_COMPILE_TIMES"))   // NVRTC's own threads (NVRTC_SPLIT) are not counted
    fprintf(stderr, "tlc: compile time: gpu kernels (NVRTC, %zu bytes of CUDA C): %s %.2f s on this thread\n",
            c->program->source_size, c->cached ? "cached" : "compiled", thread_seconds() - start);
  return NULL;
}

CudaCompile *cuda_program_compile_start(const CudaProgram *p, const char *arch) {
  CudaCompile *c = calloc(1, sizeof *c);
  if (!c)
    fatal("out of memory");
  *c = (CudaCompile){.arena = arena_new(), .program = p, .arch = arch};
  nvrtc_version(c->arena);   // loads NVRTC here, before the thread uses it
  c->started = pthread_create(&c->thread, NULL, compile_thread, c) == 0;
  return c;
}

// The code and messages are copied into a: the thread's arena goes with c.
int cuda_program_compile_finish(CudaCompile *c, Arena *a, CudaCode *out, bool *cached, const char **error) {
  if (c->started)
    pthread_join(c->thread, NULL);
  else
    compile_thread(c);   // no thread to be had: compiled now, on this one
  int status = c->status;
  *cached = c->cached;
  if (status) {
    *error = arena_strdup(a, c->error);
  } else {
    *out = (CudaCode){.ptx = arena_strndup(a, c->code.ptx, c->code.ptx_size), .ptx_size = c->code.ptx_size,
                      .cubin = arena_alloc(a, c->code.cubin_size + 1), .cubin_size = c->code.cubin_size,
                      .log = c->code.log ? arena_strdup(a, c->code.log) : NULL};
    memcpy(out->cubin, c->code.cubin, c->code.cubin_size);
  }
  arena_free(c->arena);
  free(c);
  return status;
}
