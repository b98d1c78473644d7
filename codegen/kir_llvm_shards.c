// kir_llvm_shards.c: the CPU kernels compiled as shards, each its own LLVM context, module
// and object file, on threads. LLVM compiles one module on one thread, and resnet18's 137
// kernels took 16 s of it; shards share nothing, so n threads take about 1/n of that.
//
// The split depends on the kernels alone, never on the thread count, and no optimisation
// crosses a kernel (each is a wrapper and its body), so a trainer is the same byte for byte
// built on 1 thread or 16. Each shard is a cache entry of its own (cache.c).
#include "kir_llvm.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <llvm/Config/llvm-config.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
  MAX_SHARDS = 16,                // past this, a shard's fixed cost outweighs the threads' gain
  SHARD_MIN_BYTES = 16 << 10,     // of kernel IR text (resnet18 has 260 KiB): a tiny model stays one module
};

typedef struct Shard {
  Kernel **kernels;               // in the order given
  int n;
  size_t load;                    // the estimated cost: bytes of the kernels' IR text
  char *source;                   // the kernels' IR text, what the object is compiled from
  size_t source_size;
  const char *path;               // its object file
  bool cached;
  double seconds;                 // its compile's CPU time (TLC_COMPILE_TIMES prints them)
  int status;                     // nonzero: the compile failed, with error (malloc'd)
  char *error;
} Shard;

typedef struct Work {
  Shard *shards;
  int nshards;
  const char *cpu, *key;
  atomic_int next;                // the next shard a thread takes
} Work;

// What the object file depends on besides the kernels: LLVM and the CPU the code is for
// (native: this machine's model and features).
static const char *target_key(Arena *a, const char *cpu) {
  if (strcmp(cpu, "native"))
    return arena_printf(a, "llvm %s cpu %s", LLVM_VERSION_STRING, cpu);
  char *name = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
  const char *key = arena_printf(a, "llvm %s cpu %s %s", LLVM_VERSION_STRING, name, features);
  LLVMDisposeMessage(name);
  LLVMDisposeMessage(features);
  return key;
}

static char *kernel_text(const Kernel *k, size_t *len) {
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  if (!f)
    fatal("out of memory");
  kir_print(f, k);
  fclose(f);
  return text;
}

static int copy_file(const char *path, char **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  *data = NULL;
  *size = 0;
  char chunk[65536];
  size_t got;
  FILE *out = open_memstream(data, size);
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
    fwrite(chunk, 1, got, out);
  fclose(out);
  fclose(f);
  return 0;
}

typedef struct Sized {
  int kernel;
  size_t bytes;
} Sized;

// Largest first; equal sizes in the kernels' order, so that the split is reproducible.
static int larger_first(const void *x, const void *y) {
  const Sized *a = x, *b = y;
  if (a->bytes != b->bytes)
    return a->bytes > b->bytes ? -1 : 1;
  return a->kernel - b->kernel;
}

// Each kernel, largest first, goes to the shard with the least load (the first of equals);
// within a shard the kernels keep their order. texts[i] is kernel i's IR text.
static Shard *split(Arena *a, Kernel **kernels, int n, char **texts, const size_t *sizes, int *nshards) {
  size_t total = 0;
  Sized *order = arena_alloc(a, sizeof *order * (size_t)(n + 1));
  for (int i = 0; i < n; i++) {
    order[i] = (Sized){i, sizes[i]};
    total += sizes[i];
  }
  int ns = (int)(total / SHARD_MIN_BYTES);
  ns = ns < 1 ? 1 : ns > MAX_SHARDS ? MAX_SHARDS : ns > n ? n : ns;
  qsort(order, (size_t)n, sizeof *order, larger_first);
  int *shard_of = arena_alloc(a, sizeof *shard_of * (size_t)(n + 1));
  Shard *shards = arena_alloc(a, sizeof *shards * (size_t)ns);
  for (int i = 0; i < n; i++) {
    int least = 0;
    for (int s = 1; s < ns; s++)
      if (shards[s].load < shards[least].load)
        least = s;
    shards[least].load += order[i].bytes;
    shards[least].n++;
    shard_of[order[i].kernel] = least;
  }
  for (int s = 0; s < ns; s++) {
    shards[s].kernels = arena_alloc(a, sizeof(Kernel *) * (size_t)shards[s].n);
    shards[s].source = arena_alloc(a, shards[s].load + 1);
    shards[s].n = 0;
  }
  for (int i = 0; i < n; i++) {
    Shard *s = &shards[shard_of[i]];
    s->kernels[s->n++] = kernels[i];
    memcpy(s->source + s->source_size, texts[i], sizes[i]);
    s->source_size += sizes[i];
  }
  *nshards = ns;
  return shards;
}

double thread_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void compile_shard(const Work *w, Shard *s) {
  double start = thread_seconds();
  Arena *a = arena_new();
  const char *error = NULL;
  s->status = llvm_emit_module(s->kernels, s->n, w->cpu, s->path, NULL, a, &error);
  char *data;
  size_t size;
  if (s->status)
    s->error = strdup(error);
  else if (!copy_file(s->path, &data, &size)) {
    cache_store(a, "cpu", w->key, s->source, s->source_size, &(CacheBlob){data, size}, 1);
    free(data);
  }
  arena_free(a);
  s->seconds = thread_seconds() - start;
}

static void *worker(void *arg) {
  Work *w = arg;
  for (int i; (i = atomic_fetch_add(&w->next, 1)) < w->nshards;)
    if (!w->shards[i].cached)
      compile_shard(w, &w->shards[i]);
  return NULL;
}

// Runs the shards that missed the cache on up to jobs threads, this one among them.
static void compile_all(Work *w, int jobs, int misses) {
  if (!LLVMIsMultithreaded())
    jobs = 1;
  int nthreads = (jobs < misses ? jobs : misses) - 1, started = 0;
  pthread_t *threads = calloc((size_t)(nthreads > 0 ? nthreads : 1), sizeof *threads);
  if (!threads)
    fatal("out of memory");
  while (started < nthreads && pthread_create(&threads[started], NULL, worker, w) == 0)
    started++;   // a thread that cannot start leaves its shards to the others
  worker(w);
  for (int i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  free(threads);
}

int kir_llvm_objects(Kernel **kernels, int n, const char *cpu, int jobs, const char *dir, KirObjects *out, Arena *a,
                     const char **error) {
  char **texts = arena_alloc(a, sizeof *texts * (size_t)(n + 1));
  size_t *sizes = arena_alloc(a, sizeof *sizes * (size_t)(n + 1));
  for (int i = 0; i < n; i++) {
    kir_verify(kernels[i]);
    texts[i] = kernel_text(kernels[i], &sizes[i]);
  }
  Work w = {.cpu = cpu, .key = target_key(a, cpu)};
  w.shards = split(a, kernels, n, texts, sizes, &w.nshards);
  for (int i = 0; i < n; i++)
    free(texts[i]);
  *out = (KirObjects){.paths = arena_alloc(a, sizeof(char *) * (size_t)w.nshards), .n = w.nshards};
  for (int i = 0; i < w.nshards; i++) {
    Shard *s = &w.shards[i];
    s->path = out->paths[i] = arena_printf(a, "%s/kernels-%02d.o", dir, i);
    CacheBlob object;
    if (!cache_lookup(a, "cpu", w.key, s->source, s->source_size, &object, 1))
      continue;
    FILE *f = fopen(s->path, "wb");
    s->cached = f && fwrite(object.data, 1, object.size, f) == object.size;
    if (f && fclose(f) != 0)
      s->cached = false;
  }
  for (int i = 0; i < w.nshards; i++)
    out->compiled += !w.shards[i].cached;
  if (out->compiled)
    compile_all(&w, jobs < 1 ? 1 : jobs, out->compiled);
  if (getenv("TLC_COMPILE_TIMES"))
    for (int i = 0; i < w.nshards; i++)
      fprintf(stderr, "tlc: compile time: cpu shard %d of %d (%d kernels, %zu bytes of kernel IR): %s %.2f s\n", i,
              w.nshards, w.shards[i].n, w.shards[i].source_size, w.shards[i].cached ? "cached" : "compiled",
              w.shards[i].seconds);
  int status = 0;
  for (int i = 0; i < w.nshards; i++) {
    if (w.shards[i].status && !status) {
      status = 1;
      *error = arena_strdup(a, w.shards[i].error);
    }
    free(w.shards[i].error);
  }
  return status;
}
