// trainer_stop.c: a clean stop. Ctrl-C (SIGINT) or SIGTERM during training asks the run to
// stop: the step under way finishes, the batch functions then end the epoch's passes early,
// and tlc_epoch_end saves OUT/last.ckpt atomically, inside the epoch if need be (the training
// images done and the epoch's sums go with it, and the generator's state from the epoch's
// start, so that --resume continues bit for bit), prints the command that resumes it and
// returns the status a shell gives a process its signal ended: 128 + the signal's number.
//
// The handlers are installed once training is about to start (nothing before has state worth
// saving) and with SA_RESETHAND, so that a second signal ends a run that does not stop; a
// signal the trainer inherited as ignored stays ignored, as is the custom. The handler only
// sets a flag and writes one line with write(2), which is async-signal-safe.
#include "trainer_internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;
static struct sigaction previous[2];
static bool installed;
static const int SIGNALS[2] = {SIGINT, SIGTERM};

static void on_signal(int sig) {
  stop_signal = sig;
  static const char msg[] = "\nstop requested: finishing the step under way, then saving last.ckpt "
                            "(the same signal again stops at once)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
}

void trainer_stop_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  stop_signal = 0;
  for (int i = 0; i < 2; i++) {
    sigaction(SIGNALS[i], NULL, &previous[i]);
    // A signal ignored when the trainer started (nohup, `cmd &` in a script) stays ignored.
    if (previous[i].sa_handler != SIG_IGN)
      sigaction(SIGNALS[i], &sa, NULL);
  }
  installed = true;
}

void trainer_stop_remove(void) {
  if (!installed)
    return;
  for (int i = 0; i < 2; i++)
    sigaction(SIGNALS[i], &previous[i], NULL);
  installed = false;
  stop_signal = 0;
}

bool trainer_stop_requested(void) { return installed && stop_signal != 0; }

// An argument as the shell reads it back: bare when it is plain, else in single quotes.
static void print_quoted(const char *arg) {
  bool plain = *arg != '\0';
  for (const char *p = arg; *p && plain; p++)
    plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%", *p) != NULL;
  if (plain) {
    fputs(arg, stdout);
    return;
  }
  putchar('\'');
  for (const char *p = arg; *p; p++)
    if (*p == '\'')
      fputs("'\\''", stdout);
    else
      putchar(*p);
  putchar('\'');
}

static bool is_flag(const char *arg, const char *name) {
  size_t n = strlen(name);
  return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

// This run's command line with --resume PATH instead of its own --resume or --weights (the
// checkpoint holds the weights; both together are a usage error).
static void print_resume_command(const TlcRun *run, const char *path) {
  printf("stopped: continue with: ");
  print_quoted(run->argv[0]);
  for (int i = 1; i < run->argc; i++) {
    const char *arg = run->argv[i];
    if (is_flag(arg, "--resume") || is_flag(arg, "--weights")) {
      i += strchr(arg, '=') == NULL;   // and its value
      continue;
    }
    putchar(' ');
    print_quoted(arg);
  }
  printf(" --resume ");
  print_quoted(path);
  printf("\n");
}

int trainer_stop(TlcRun *run, bool in_epoch) {
  const char *name = stop_signal == SIGTERM ? "SIGTERM" : "SIGINT";
  int status = 128 + (int)stop_signal;
  TlcError err;
  if (in_epoch && trainer_save_checkpoint(run, run->last_path, true, &err) != 0) {
    fflush(stdout);
    fprintf(stderr, "error: %s\n", err.msg);
    status = TRAINER_FAILED;
  } else {
    int64_t batches = run->ntrain / run->model->batch;
    if (in_epoch)
      printf("stopped: %s in epoch %d of %d, after %lld of %lld batches (step %lld); %s holds the run so far\n",
             name, run->epoch + 1, run->epochs, (long long)(run->cursor / run->model->batch), (long long)batches,
             (long long)run->step, run->last_path);
    else
      printf("stopped: %s after epoch %d of %d (step %lld); %s holds the run so far\n", name, run->epochs_done,
             run->epochs, (long long)run->step, run->last_path);
    print_resume_command(run, run->last_path);
  }
  run->status = status;
  trainer_release(run);
  return 1;
}
