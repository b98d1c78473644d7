// garbage.c: feeds tlc hostile input and checks that it never crashes, hangs or writes a
// partial output. Every case must end with exit status 0, or 1 with a positioned
// "error:" message; a signal, another status or a time-out fails the test.
//
// usage: garbage TLC WORKDIR FILE.graph...   (the files are truncated and mutated)
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct Run {
  const char *tlc, *dir;
  int passed, failed;
} Run;

static uint64_t rng = 0x9e3779b97f4a7c15u;   // fixed seed: the same cases every run
static uint32_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  rewind(f);
  char *buf = malloc(*len + 1);
  if (fread(buf, 1, *len, f) != *len)
    exit(2);
  fclose(f);
  return buf;
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    perror(path);
    exit(2);
  }
}

static bool contains_error(const char *path) {
  size_t len;
  char *text = read_file(path, &len);
  text[len] = 0;
  bool ok = strstr(text, ": error: ") != NULL;
  free(text);
  return ok;
}

// Runs tlc on data; label names the case in failure messages.
static void check(Run *r, const char *label, const char *data, size_t len) {
  char in[4096], out[4096], err[4096];
  snprintf(in, sizeof in, "%s/case.graph", r->dir);
  snprintf(out, sizeof out, "%s/case.out", r->dir);
  snprintf(err, sizeof err, "%s/case.err", r->dir);
  write_file(in, data, len);
  unlink(out);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit cpu = {10, 10};
    setrlimit(RLIMIT_CPU, &cpu);
    int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(r->tlc, r->tlc, in, "--emit=ir", "-o", out, (char *)NULL);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  const char *why = NULL;
  if (WIFSIGNALED(status))
    why = strsignal(WTERMSIG(status));
  else if (WEXITSTATUS(status) == 1 && !contains_error(err))
    why = "exit status 1 without an error message";
  else if (WEXITSTATUS(status) == 1 && access(out, F_OK) == 0)
    why = "an output file was written by a failed compile";
  else if (WEXITSTATUS(status) > 1)
    why = "unexpected exit status";
  if (!why) {
    r->passed++;
    return;
  }
  r->failed++;
  char keep[4096];
  snprintf(keep, sizeof keep, "%s/failed-%d.graph", r->dir, r->failed);
  write_file(keep, data, len);
  fprintf(stderr, "FAIL %s: %s (status %d; input kept as %s)\n", label, why, status, keep);
}

static void truncations(Run *r, const char *name, const char *text, size_t len) {
  for (int i = 0; i < 40; i++) {
    size_t cut = len * (size_t)i / 40 + next_random() % 7;
    if (cut > len)
      cut = len;
    check(r, name, text, cut);
  }
}

static void mutations(Run *r, const char *name, const char *text, size_t len) {
  static const char junk[] = "{}()[]@:;=.,\"#-+*/0123456789\n\x01\xff" "e";
  char *buf = malloc(len + 1);
  for (int i = 0; i < 60 && len; i++) {
    memcpy(buf, text, len);
    for (int k = 0; k < 1 + i % 3; k++)
      buf[next_random() % len] = junk[next_random() % (sizeof junk - 1)];
    check(r, name, buf, len);
  }
  free(buf);
}

static void random_bytes(Run *r) {
  char buf[512];
  for (int i = 0; i < 40; i++) {
    size_t n = next_random() % sizeof buf;
    for (size_t k = 0; k < n; k++)
      buf[k] = (char)next_random();
    check(r, "random bytes", buf, n);
  }
}

// Text repeated n times between a prefix and a suffix.
static void nested(Run *r, const char *label, const char *pre, const char *unit, int n, const char *mid,
                   const char *close, const char *post) {
  size_t cap = strlen(pre) + (strlen(unit) + strlen(close)) * (size_t)n + strlen(mid) + strlen(post) + 1;
  char *buf = malloc(cap), *p = buf;
  p += sprintf(p, "%s", pre);
  for (int i = 0; i < n; i++)
    p += sprintf(p, "%s", unit);
  p += sprintf(p, "%s", mid);
  for (int i = 0; i < n; i++)
    p += sprintf(p, "%s", close);
  p += sprintf(p, "%s", post);
  check(r, label, buf, (size_t)(p - buf));
  free(buf);
}

static void extremes(Run *r) {
  static const char *const cases[] = {
      "model m(input = [3, 65536, 65536]) { conv2d(1073741824, 1024) }",
      "model m(input = [3, 8, 8]) { conv2d(1073741824, 1); flatten; linear(1073741824) }",
      "model m(input = [3, 8, 8]) { repeat 9223372036854775807 { relu } }",
      "model m(input = [3, 8, 8]) { repeat 1000000 { relu } }",
      "model m(input = [3, 8, 8]) { conv2d(make_divisible(1e300, 8), 1) }",
      "model m(input = [3, 8, 8]) { conv2d(ceil(1e300), 1) }",
      "model m(input = [3, 8, 8]) { conv2d(-9223372036854775807 - 1, 1) }",
      "model m(input = [3, 8, 8]) { conv2d(-(-9223372036854775807 - 1), 1) }",
      "model m(input = [3, 8, 8]) { conv2d((-9223372036854775807 - 1) // -1, 1) }",
      "model m(input = [3, 8, 8]) { conv2d(8 % 0, 1) }",
      "model m(input = [3, 8, 8]) { dropout(1e999) }",
      "model m(input = [3, 8, 8]) { dropout(1e308 * 10) }",
      "let a = b\nlet b = a\nmodel m(input = [a, 8, 8]) { relu }",
      "model m(input = [3, 8, 8]) { maxpool(1024, stride = 1024, pad = 512) }",
      "model m(input = [3, 8, 8]) { conv2d(8, 1, groups = 1073741824) }",
      "model m(input = [1, 1, 1]) { flatten; flatten; linear(1); global_avg_pool }",
      "model m(input = [3, 8, 8]) { let l = [1, 2]; conv2d(l[9223372036854775807], 1) }",
      "model m(input = [3, 8, 8]) { let l = [1, 2]; conv2d(l[-9223372036854775807 - 1], 1) }",
      "model m(input = [3, 8, 8]) { conv2d(sum([9223372036854775807, 1]), 1) }",
      "model m(input = [3, 8, 8]) { add(@0) }",
      "model m(input = [3, 8, 8]) { seq(in, in) { relu } }",
      "model m(input = []) { relu }",
      "model m(input = 3) { relu }",
      "model m() { relu }",
      "experiment { model = nothing() }",
      "import \"\"",
      "import \"/\"",
      "import \"/dev/null\"",
      "",
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    check(r, cases[i], cases[i], strlen(cases[i]));
  nested(r, "deep parentheses", "let x = ", "(", 100000, "1", ")", "");
  nested(r, "deep lists", "let x = ", "[", 100000, "1", "]", "");
  nested(r, "deep minus", "let x = ", "-", 100000, "1", "", "");
  nested(r, "deep seq", "model m(input = [3, 8, 8]) {", "seq {", 50000, "relu", "}", "}");
  nested(r, "deep if", "model m(input = [3, 8, 8]) {", "if true {", 50000, "relu", "}", "}");
  nested(r, "long chain", "model m(input = [3, 8, 8]) {", "relu\n", 200000, "", "", "}");
  nested(r, "long sum", "let x = 1", "+1", 200000, "", "", "\nmodel m(input = [x, 8, 8]) { relu }");
  nested(r, "long name", "model ", "m", 100000, "(input = [3, 8, 8]) { relu }", "", "");
  nested(r, "long number", "let x = ", "9", 100000, "", "", "");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: garbage TLC WORKDIR FILE.graph...\n");
    return 2;
  }
  Run r = {.tlc = argv[1], .dir = argv[2]};
  mkdir(r.dir, 0755);
  for (int i = 3; i < argc; i++) {
    size_t len;
    char *text = read_file(argv[i], &len);
    truncations(&r, argv[i], text, len);
    mutations(&r, argv[i], text, len);
    free(text);
  }
  random_bytes(&r);
  extremes(&r);
  printf("%d passed, %d failed\n", r.passed, r.failed);
  return r.failed != 0;
}
