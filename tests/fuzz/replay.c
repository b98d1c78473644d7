// replay.c: runs a command on every file of a corpus, for the harnesses that are programs
// rather than functions (tlc on a .graph file, `tlc inspect` on a trainer). Each run must end
// with status 0, or 1 with an "error:" message, within 10 s of CPU time, 1 GiB in one
// allocation and 2 GiB in all (the bounds of fuzz_main.c); a signal (a sanitizer's abort, a
// crash, the CPU limit), another status or a silent failure fails the replay, and its input
// and messages are printed.
//
// usage: replay DIR -- PROGRAM ARG...   (an ARG "@@" becomes the corpus file, as in AFL++)
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CPU_SECONDS = 10 };

// stderr of the last run, read back from the temporary file it went to.
static char *slurp(FILE *f) {
  fflush(f);
  long n = ftell(f);
  char *text = malloc((size_t)n + 1);
  rewind(f);
  size_t got = fread(text, 1, (size_t)n, f);
  text[got] = 0;
  return text;
}

// Runs argv with "@@" replaced by path; returns why it failed, or NULL.
static const char *run(char **argv, int argc, const char *path, char **messages) {
  char **args = calloc((size_t)argc + 1, sizeof *args);
  for (int i = 0; i < argc; i++)
    args[i] = strcmp(argv[i], "@@") ? argv[i] : (char *)path;
  FILE *err = tmpfile();
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit cpu = {CPU_SECONDS, CPU_SECONDS};
    setrlimit(RLIMIT_CPU, &cpu);
    // A sanitizer's report must not pass for an ordinary status 1: it aborts instead. Memory
    // is bounded through ASan (RLIMIT_AS would refuse its shadow memory): the front end
    // promises a few hundred MB (docs/language.md#limits), so more is a blow-up.
    setenv("ASAN_OPTIONS", "abort_on_error=1:max_allocation_size_mb=1024:hard_rss_limit_mb=2048", 0);
    setenv("UBSAN_OPTIONS", "abort_on_error=1:halt_on_error=1:print_stacktrace=1", 0);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(fileno(err), 2);
    execv(args[0], args);
    perror(args[0]);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  free(args);
  *messages = slurp(err);
  fclose(err);
  if (WIFSIGNALED(status))
    return WTERMSIG(status) == SIGXCPU ? "it ran out of CPU time (a hang?)" : strsignal(WTERMSIG(status));
  if (strstr(*messages, "Sanitizer") || strstr(*messages, "runtime error:"))
    return "a sanitizer report";
  if (WEXITSTATUS(status) == 1 && !strstr(*messages, "error:"))
    return "status 1 without an error message";
  if (WEXITSTATUS(status) > 1)
    return "an exit status other than 0 or 1 (a sanitizer report?)";
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4 || strcmp(argv[2], "--")) {
    fprintf(stderr, "usage: replay DIR -- PROGRAM ARG...\n");
    return 2;
  }
  const char *dir = argv[1];
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0) {
    perror(dir);
    return 2;
  }
  int runs = 0, failed = 0;
  for (int i = 0; i < n; i++) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    free(names[i]);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    char *messages;
    const char *why = run(argv + 3, argc - 3, path, &messages);
    runs++;
    if (why) {
      failed++;
      fprintf(stderr, "FAIL %s: %s\n%s\n", path, why, messages);
    }
    free(messages);
  }
  free(names);
  printf("%d inputs, %d failed\n", runs, failed);
  return failed != 0 || runs == 0;
}
