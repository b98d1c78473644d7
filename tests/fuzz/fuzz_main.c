// fuzz_main.c: main() and the helpers of every runtime harness (contract: fuzz.h).
//
// Under afl-clang-fast (which defines __AFL_HAVE_MANUAL_CONTROL) one process runs many inputs
// from the same file, AFL++'s persistent mode, because a fork per input costs more than most
// of the readers take; elsewhere each argument is a file, or a directory whose files are run
// in name order.
//
// What one input may cost is bounded here too, so that a reader that takes unbounded time or
// memory fails the replay instead of passing slowly: 10 s of CPU time per input (AFL++ has its
// own time-out), one allocation of at most 1 GiB and 2 GiB in all (__asan_default_options;
// ASAN_OPTIONS adds to it). The largest honest allocation is an image at PIL's pixel limit,
// 537 MB of RGB; a refused file should cost next to nothing.
#define _GNU_SOURCE
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

enum { CPU_SECONDS_PER_INPUT = 10 };

static const char *current = "";   // the input under way, for fuzz_abort's message
static char scratch[4096];

_Noreturn void fuzz_abort(const char *file, int line, const char *cond, const char *fmt, ...) {
  fprintf(stderr, "%s:%d: contract broken on %s: %s: ", file, line, current, cond);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

void fuzz_refused(const TlcError *err, const char *what) {
  if (getenv("TLC_FUZZ_VERBOSE"))   // for seeing what a corpus exercises
    fprintf(stderr, "  refused: %s\n", err->msg);
  fuzz_require(err->msg[0] != '\0', "refused without a message");
  fuzz_require(strstr(err->msg, what) != NULL, "the message does not name %s: %s", what, err->msg);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void remove_scratch(void) {
  if (scratch[0])
    nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_scratch(void) {
  if (scratch[0])
    return scratch;
  const char *tmp = getenv("TMPDIR");
  snprintf(scratch, sizeof scratch, "%s/tlc-fuzz-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
  if (mkdir(scratch, 0755) != 0 && errno != EEXIST) {
    perror(scratch);
    exit(2);
  }
  atexit(remove_scratch);
  return scratch;
}

void fuzz_put(const char *name, const uint8_t *bytes, size_t size) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", fuzz_scratch(), name);
  remove(path);
  if (!bytes)
    return;
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(bytes, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    exit(2);
  }
}

FuzzParts fuzz_split(const uint8_t *bytes, size_t size) {
  FuzzParts p = {bytes, bytes, 0, 0};
  if (size < 4)
    return p;
  size_t n = (size_t)bytes[0] | (size_t)bytes[1] << 8 | (size_t)bytes[2] << 16 | (size_t)bytes[3] << 24;
  size_t rest = size - 4;
  p.first = bytes + 4;
  p.first_size = n < rest ? n : rest;
  p.second = p.first + p.first_size;
  p.second_size = rest - p.first_size;
  return p;
}

uint64_t fuzz_touch(const void *bytes, size_t size) {
  const uint8_t *p = bytes;
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < size; i++)
    h = (h ^ p[i]) * 0x100000001b3u;
  return h;
}

// The file in memory of exactly its size, so that a harness reading past it is caught.
static uint8_t *read_input(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  size_t cap = 1 << 16, n = 0, got;
  uint8_t *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
    if ((n += got) == cap)
      buf = realloc(buf, cap *= 2);
  fclose(f);
  uint8_t *exact = buf ? malloc(n ? n : 1) : NULL;
  if (!exact) {
    fprintf(stderr, "%s: out of memory\n", path);
    exit(2);
  }
  memcpy(exact, buf, n);
  free(buf);
  *size = n;
  return exact;
}

// FUZZ_ASAN_OPTIONS: a harness's own additions (tests/fuzz/CMakeLists.txt says why).
#ifndef FUZZ_ASAN_OPTIONS
#define FUZZ_ASAN_OPTIONS ""
#endif
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "max_allocation_size_mb=1024:hard_rss_limit_mb=2048" FUZZ_ASAN_OPTIONS; }

static void on_cpu_limit(int sig) {
  (void)sig;
  static const char before[] = "fuzz: ", after[] = " ran past its CPU time (a hang?)\n";
  // write(2) alone: the signal may have come inside stdio.
  if (write(2, before, sizeof before - 1) < 0 || write(2, current, strlen(current)) < 0 ||
      write(2, after, sizeof after - 1) < 0)
    abort();
  abort();
}

// Arms the CPU-time limit of one input (ITIMER_PROF counts user and system time, so a loaded
// machine does not make an input late).
static void limit_cpu(void) {
  signal(SIGPROF, on_cpu_limit);
  struct itimerval t = {.it_value = {.tv_sec = CPU_SECONDS_PER_INPUT}};
  setitimer(ITIMER_PROF, &t, NULL);
}

static void run_file(const char *path) {
  current = path;
  size_t size;
  uint8_t *bytes = read_input(path, &size);
  fuzz_one(path, bytes, size);
  free(bytes);
}

static void run_directory(const char *dir) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0) {
    perror(dir);
    exit(2);
  }
  for (int i = 0; i < n; i++) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      fprintf(stderr, "fuzz: %s\n", path);   // a sanitizer report below names its input
      limit_cpu();
      run_file(path);
    }
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
#ifdef __AFL_HAVE_MANUAL_CONTROL
  if (argc == 2) {
    while (__AFL_LOOP(10000))
      run_file(argv[1]);
    return 0;
  }
#endif
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
      run_directory(argv[i]);
    else
      limit_cpu(), run_file(argv[i]);
  }
  return 0;
}
