// trainer.c: a training run, as the generated main() drives it (the loop is in tlcrt.h).
//
// Contract (tlcrt.h, section "trainer.c"; the command line is in DESIGN.md section 3):
// - tlc_run_start checks everything that can fail before the first step: flags, the --out
//   directory (created, and metrics.jsonl opened in it), the checkpoint to resume or evaluate
//   and the weights, the data against the model, the output files' directories, the device,
//   memory; all of them before the first image is decoded, so that a typo in a path does not
//   wait for a data set to be read. Errors print "error: ..." on stderr; the status is 2 for a
//   usage error, 1 otherwise.
// - Determinism: initialisation and the training order draw from one TlcRng seeded by
//   --seed, and the order restarts from 0..n-1 before each epoch's shuffle, so the rng state is
//   the whole of what a checkpoint needs to resume bit for bit. Augmentation draws from a
//   generator per sample, seeded from (seed, epoch, index) by the loader (loader.c).
// - Each epoch prints one line, appends one JSON line to OUT/metrics.jsonl and saves
//   OUT/last.ckpt, and OUT/best.ckpt when the validation accuracy improved (ties keep the
//   older one). tlc_run_finish prints the one "result:" line scripts read.
// - Ctrl-C or SIGTERM stops the run cleanly at the next step's end (trainer_stop.c).
// - A call that fails releases everything before returning; main just returns run->status.
#include "trainer_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const double PI = 3.14159265358979323846;

double trainer_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// "dir/name" in new memory, or NULL when out of memory.
static char *path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

//
// The --out directory
//

// mkdir -p: creates the missing parents, then checks the result is a directory.
static int make_dirs(const char *path, TlcError *err) {
  char *p = strdup(path);
  if (!p)
    return tlc_fail(err, "out of memory");
  // Failures on the parents are not reported here: the last mkdir or stat names the problem.
  for (char *s = p + 1; *s; s++) {
    if (*s == '/') {
      *s = '\0';
      mkdir(p, 0777);
      *s = '/';
    }
  }
  int made = mkdir(p, 0777), saved = errno;
  free(p);
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return 0;
  if (made != 0 && saved != EEXIST)
    return tlc_fail(err, "--out %s: cannot create the directory: %s", path, strerror(saved));
  return tlc_fail(err, "--out %s: exists and is not a directory", path);
}

// Creates --out and opens metrics.jsonl in it, so an unwritable place fails before training.
static int open_out(TlcRun *run, TlcError *err) {
  if (!run->out_dir) {
    run->out_owned = path_join("runs", run->model->name);
    run->out_dir = run->out_owned;
  }
  if (!run->out_dir)
    return tlc_fail(err, "out of memory");
  if (make_dirs(run->out_dir, err) != 0)
    return -1;
  char *metrics = path_join(run->out_dir, "metrics.jsonl");
  run->last_path = path_join(run->out_dir, "last.ckpt");
  run->best_path = path_join(run->out_dir, "best.ckpt");
  if (!metrics || !run->last_path || !run->best_path) {
    free(metrics);
    return tlc_fail(err, "out of memory");
  }
  // A resumed run continues the log; a new run starts it afresh.
  run->metrics = fopen(metrics, run->resume ? "a" : "w");
  int rc = run->metrics ? 0 : tlc_fail(err, "--out %s: cannot write %s: %s", run->out_dir, metrics, strerror(errno));
  free(metrics);
  return rc;
}

//
// Starting
//

// Initial state from the seed, then the checkpoint over it when there is one.
static int load_state(TlcRun *run, TlcError *err) {
  if (trainer_alloc_state(run, err) != 0)
    return -1;
  tlc_rng_seed(&run->rng, run->seed);
  trainer_init_params(run);
  const char *checkpoint = run->eval_checkpoint ? run->eval_checkpoint : run->resume;
  const char *weights = run->weights ? run->weights : run->model->weights;
  if (weights && strcmp(weights, "none") == 0)
    weights = NULL;
  if (run->eval_checkpoint && tlc_safetensors_sniff(run->eval_checkpoint))
    weights = run->eval_checkpoint, checkpoint = NULL;   // --eval of exported or imported weights
  else if (checkpoint)
    weights = NULL;   // the checkpoint holds the weights
  if ((weights && trainer_load_weights(run, weights, err) != 0) ||
      (checkpoint && trainer_load_checkpoint(run, checkpoint, err) != 0))
    return -1;
  run->first_epoch = run->epochs_done;
  run->last_good = run->resume;
  if (run->npredict)
    run->epochs = run->first_epoch;  // prediction trains nothing either
  if (run->eval_checkpoint) {
    run->epochs = run->first_epoch;  // no epoch to train: the loop goes straight to the test split
    if (checkpoint && run->resume_images)
      printf("eval: %s: the state in epoch %d after %lld training images (step %lld)\n", checkpoint,
             run->epochs_done + 1, (long long)run->resume_images, (long long)run->step);
    else if (checkpoint)
      printf("eval: %s: the state after epoch %d (step %lld)\n", checkpoint, run->epochs_done,
             (long long)run->step);
  } else if (run->resume && run->first_epoch >= run->epochs) {
    printf("resume: %s: the state after epoch %d (step %lld); --epochs is %d, nothing left to train\n",
           checkpoint, run->epochs_done, (long long)run->step, run->epochs);
  } else if (run->resume && run->resume_images) {
    printf("resume: %s: stopped in epoch %d after %lld training images (step %lld); continuing it, then to epoch "
           "%d\n", checkpoint, run->first_epoch + 1, (long long)run->resume_images, (long long)run->step, run->epochs);
  } else if (run->resume) {
    printf("resume: %s: the state after epoch %d (step %lld); training epochs %d to %d\n", checkpoint,
           run->epochs_done, (long long)run->step, run->first_epoch + 1, run->epochs);
  }
  return 0;
}

// A checkpoint written inside an epoch continues only on the same training images in the
// same batches.
static int check_resume_position(const TlcRun *run, TlcError *err) {
  int64_t b = run->model->batch, whole = run->ntrain / b * b;
  if (run->resume_images % b == 0 && run->resume_images <= whole)
    return 0;
  return tlc_fail(err, "%s: the run stopped in epoch %d after %lld training images, which this data set cannot "
                  "continue (%lld training images an epoch in batches of %lld); resume with the data and --limit "
                  "it had", run->resume, run->first_epoch + 1, (long long)run->resume_images, (long long)whole,
                  (long long)b);
}

// Every input is checked (files opened, weights matched to the model, data listed, output
// directories, the device) before the loader decodes the first image.
// --lr's ratio to the recipe's rate, by which every group's rate and the schedule scale.
static double lr_scale(const TlcRun *run) { return run->lr > 0 ? run->lr / run->model->schedule.lr : 1; }

static int start_run(TlcRun *run, TlcError *err) {
  if (run->epochs < 1) {
    tlc_fail(err, "model '%s' sets no number of epochs: pass --epochs N", run->model->name);
    return TRAINER_USAGE;
  }
  if (!run->eval_checkpoint && !run->npredict && open_out(run, err) != 0)
    return TRAINER_FAILED;
  // --eval --out DIR: the confusion matrix of the evaluated file goes there.
  if (run->eval_checkpoint && !run->npredict && run->out_dir && make_dirs(run->out_dir, err) != 0)
    return TRAINER_FAILED;
  tlc_pool_init(run->threads);
  if (load_state(run, err) != 0)
    return TRAINER_FAILED;
  int status = trainer_load_data(run, err);
  if (status != TRAINER_OK)
    return status;
  if (trainer_alloc_batches(run, err) != 0 || trainer_prepare_outputs(run, err) != 0 ||
      trainer_summary_start(run, err) != 0 || trainer_open_device(run, err) != 0 || trainer_start_loader(run, err) != 0 ||
      (run->resume && run->resume_images && check_resume_position(run, err) != 0))
    return TRAINER_FAILED;
  trainer_start_features(run);
  if (trainer_start_gpu_data(run, err) != 0)
    return TRAINER_FAILED;
  trainer_report_graphs(run);
  if (run->lr > 0 && run->first_epoch < run->epochs)
    printf("lr: %g (--lr; the recipe's is %g): every parameter group's rate is scaled by %g\n", run->lr,
           run->model->schedule.lr, lr_scale(run));
  return TRAINER_OK;
}

int tlc_run_start(TlcRun *run, const TlcModel *model, int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);   // one line per epoch, even into a log file
  memset(run, 0, sizeof *run);
  run->model = model;
  run->argc = argc, run->argv = argv;
  run->epochs = model->epochs;
  run->seed = model->seed_default;
  run->data_dir = model->data_dir;
  run->device = "auto";
  run->cache_mb = TRAINER_CACHE_MB;
  run->gpu_cache_mb = -1;
  run->gpu_data_mb = -1;
  run->best_val = -1;  // below any accuracy: the first validated epoch is the best so far
  trainer_eval_init(run);
  TlcError err = {{0}};
  bool help = false;
  int status = trainer_check_model(model, &err) != 0 ? TRAINER_FAILED
                                                     : trainer_parse_flags(run, argc, argv, &help, &err);
  if (status == TRAINER_OK && !help)
    status = start_run(run, &err);
  if (status == TRAINER_OK && !help) {
    if (run->first_epoch < run->epochs)
      trainer_stop_install();
    return 0;
  }
  fflush(stdout);
  if (status != TRAINER_OK)
    fprintf(stderr, "error: %s\n", err.msg);
  trainer_release(run);
  run->status = status;
  return 1;
}

//
// Epochs
//

// The learning rate of a 0-based epoch as a multiple of the recipe's, as PyTorch's schedulers
// step per epoch; `scale` is --lr's ratio to the recipe's. A
// cosine schedule's eta_min stays what the recipe says, as PyTorch's does when lr changes.
static double schedule_factor(const TlcSchedule *s, int epoch, int epochs, double scale) {
  double f = scale;
  if (s->kind == TLC_SCHED_STEP)
    f *= pow(s->gamma, epoch / (s->step_size > 0 ? s->step_size : 1));
  if (s->kind == TLC_SCHED_MULTISTEP)
    for (int i = 0; i < s->nmilestones && i < 16; i++)
      f *= epoch >= s->milestones[i] ? s->gamma : 1;
  if (s->kind == TLC_SCHED_COSINE)
    f = s->eta_min_ratio + (scale - s->eta_min_ratio) * (1 + cos(PI * epoch / epochs)) / 2;
  if (epoch < s->warmup)
    f *= (double)(epoch + 1) / (s->warmup + 1);
  return f;
}

float trainer_lr_factor(const TlcRun *run, int epoch) {
  return (float)schedule_factor(&run->model->schedule, epoch, run->epochs, lr_scale(run));
}

void trainer_epoch_order(TlcRng *rng, int32_t *order, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    order[i] = (int32_t)i;
  tlc_rng_shuffle(rng, order, n);
}

void tlc_epoch_begin(TlcRun *run, int epoch) {
  const TlcModel *m = run->model;
  run->epoch = epoch;
  run->epoch_rng = run->rng;   // what a checkpoint written inside this epoch resumes from
  trainer_epoch_order(&run->rng, run->order, run->ntrain);
  // A run resumed inside this epoch goes on from its images and sums.
  run->cursor = run->resume_images;
  run->epoch_loss = run->resume_loss, run->epoch_correct = run->resume_correct;
  run->epoch_seen = run->resumed_seen = (double)run->resume_images;
  run->resume_images = 0, run->resume_loss = run->resume_correct = 0;
  run->eval_loss = run->eval_correct = run->eval_seen = 0;
  run->eval_active = false;
  trainer_eval_epoch_begin(run);
  run->epoch_seconds = 0;
  run->epoch_start = trainer_now();   // the feature cache, when the first pass computes it, is training time
  trainer_begin_training_pass(run);
  run->lr_factor = trainer_lr_factor(run, epoch);
  memcpy(run->arena + m->lr, &run->lr_factor, sizeof run->lr_factor);
}

typedef struct EpochStats {
  double loss, acc, val_loss, val_acc, test_loss, test_acc, images_per_s, seconds;  // accuracies as fractions
} EpochStats;

static EpochStats epoch_stats(const TlcRun *run) {
  EpochStats e = {
      .loss = run->epoch_loss / run->epoch_seen,
      .acc = run->epoch_correct / run->epoch_seen,
      .val_loss = run->val_loss,
      .val_acc = run->val_acc,
      .test_loss = run->epoch_test_loss,
      .test_acc = run->epoch_test_acc,
      .images_per_s = run->epoch_seconds > 0 ? (run->epoch_seen - run->resumed_seen) / run->epoch_seconds : 0,
      .seconds = run->epoch_seconds,
  };
  return e;
}

static void print_epoch(const TlcRun *run, int epoch, const EpochStats *e) {
  printf("epoch %d/%d  loss %.4f  acc %.2f%%", epoch + 1, run->epochs, e->loss, 100 * e->acc);
  if (!isnan(e->val_acc))
    printf("  val_loss %.4f  val_acc %.2f%%", e->val_loss, 100 * e->val_acc);
  if (!isnan(e->test_acc))   // without a validation split it is no held-out score
    printf("  test_acc %.2f%%%s", 100 * e->test_acc, run->nval > 0 ? "" : " (test split, no validation split)");
  printf("  %.0f img/s  %.1f s\n", e->images_per_s, e->seconds);
  fflush(stdout);
}

// ,"key":value with JSON's null for a missing number (NaN: no validation split).
static void json_number(FILE *f, const char *key, double v) {
  if (isfinite(v))
    fprintf(f, ",\"%s\":%.9g", key, v);
  else
    fprintf(f, ",\"%s\":null", key);
}

static int log_epoch(TlcRun *run, int epoch, const EpochStats *e, TlcError *err) {
  FILE *f = run->metrics;
  fprintf(f, "{\"epoch\":%d", epoch + 1);
  json_number(f, "loss", e->loss);
  json_number(f, "acc", e->acc);
  json_number(f, "val_loss", e->val_loss);
  json_number(f, "val_acc", e->val_acc);
  json_number(f, "test_loss", e->test_loss);
  json_number(f, "test_acc", e->test_acc);
  json_number(f, "images_per_s", e->images_per_s);
  json_number(f, "seconds", e->seconds);
  json_number(f, "lr", run->lr_factor * run->model->schedule.lr);   // the base group's
  json_number(f, "lr_factor", run->lr_factor);
  fputs("}\n", f);
  // Flushed every epoch so that a run stopped later still leaves its log.
  if (fflush(f) != 0 || ferror(f))
    return tlc_fail(err, "--out %s: cannot write metrics.jsonl: %s", run->out_dir, strerror(errno));
  return 0;
}

// A loader failure during the epoch: print it and end the run.
static int report_failure(TlcRun *run) {
  fflush(stdout);
  fprintf(stderr, "error: %s\n", run->fail_err.msg);
  run->status = TRAINER_FAILED;
  trainer_release(run);
  return 1;
}

int tlc_epoch_end(TlcRun *run, int epoch) {
  if (run->failed)
    return report_failure(run);
  if (trainer_stop_requested())   // the passes ended early: the epoch is saved as far as it went
    return trainer_stop(run, true);
  run->in_epoch = false;
  EpochStats e = epoch_stats(run);
  run->train_seconds += run->epoch_seconds;
  run->epochs_done = epoch + 1;
  print_epoch(run, epoch, &e);
  bool improved = e.val_acc > run->best_val;  // ties keep the older; NaN never improves
  if (improved)
    run->best_val = e.val_acc;
  // last.ckpt before the log line: when it cannot be written (a full disk), the log ends
  // where the checkpoint a resume starts from does.
  TlcError err;
  if (trainer_save_checkpoint(run, run->last_path, false, &err) != 0 || log_epoch(run, epoch, &e, &err) != 0 ||
      (improved && trainer_save_checkpoint(run, run->best_path, false, &err) != 0)) {
    fprintf(stderr, "error: %s\n", err.msg);
    run->status = TRAINER_FAILED;
    trainer_release(run);
    return 1;
  }
  run->last_good = run->last_path;
  if (trainer_stop_requested())
    return trainer_stop(run, false);
  return 0;
}

//
// Finishing
//

// "best_val_acc=0.9123", or "best_val_acc=none" when there is no validation split.
static void print_best_val(const TlcRun *run) {
  if (run->best_val < 0)
    printf("best_val_acc=none");
  else
    printf("best_val_acc=%.4f", run->best_val);
}

int tlc_run_finish(TlcRun *run) {
  if (run->failed) {
    report_failure(run);
    return run->status;
  }
  if (trainer_stop_requested()) {   // during the test pass: training is over and saved
    trainer_stop(run, false);
    return run->status;
  }
  bool best = !isnan(run->best_test_acc);   // the reported figure is best.ckpt's when it was kept
  TlcLoaderStats stats = {0};
  if (run->loader)
    tlc_loader_stats(run->loader, &stats);
  TrainerResult r = {
      .test_acc = best ? run->best_test_acc : run->last_test_acc,
      .test_loss = best ? run->best_test_loss : run->last_test_loss,
      .images_per_s = run->train_seconds > 0 ? run->images_trained / run->train_seconds : 0,
      .tested = best ? "best" : run->eval_checkpoint ? "checkpoint" : "last",
      .skipped = stats.skipped,
  };
  if (stats.skipped)
    printf("data: %lld image files could not be decoded and were skipped (see the warnings)\n",
           (long long)stats.skipped);
  trainer_report_files(run, false);
  trainer_ahead_report(run);
  trainer_profile_report(run);
  TlcError err;
  if (trainer_write_outputs(run, &err) != 0 || (run->npredict && trainer_print_predictions(run, &err) != 0) ||
      trainer_write_summary(run, &r, &err) != 0) {
    fflush(stdout);
    fprintf(stderr, "error: %s\n", err.msg);
    trainer_release(run);
    run->status = TRAINER_FAILED;
    return run->status;
  }
  if (run->npredict) {  // the predictions replace the result line
    trainer_release(run);
    run->status = TRAINER_OK;
    return 0;
  }
  printf("result: test_acc=%.4f test_loss=%.4f tested=%s", r.test_acc, r.test_loss, r.tested);
  if (best)
    printf(" best_epoch=%d last_test_acc=%.4f", run->best_epoch, run->last_test_acc);
  putchar(' ');
  print_best_val(run);
  printf(" train_time_s=%.1f epochs=%d images_per_s=%.0f skipped_images=%lld\n", run->train_seconds,
         run->epochs_done, r.images_per_s, (long long)r.skipped);
  trainer_release(run);
  run->status = TRAINER_OK;
  return 0;
}

void trainer_release(TlcRun *run) {
  trainer_stop_remove();
  fflush(stdout);
  if (run->metrics)
    fclose(run->metrics);
  run->metrics = NULL;
  trainer_free_data(run);
  trainer_free_state(run);
  trainer_free_batches(run);
  trainer_free_gpu_data(run);
  tlc_gpu_close(run->gpu);
  run->gpu = NULL;
  free(run->features);
  run->features = NULL;
  trainer_profile_free(run);
  free(run->out_owned);
  free(run->last_path);
  free(run->best_path);
  free(run->test_logits);
  run->test_logits = NULL;
  free(run->predict_paths);
  run->predict_paths = NULL;
  free(run->confusion);
  run->confusion = NULL;
  run->npredict = 0;
  run->out_owned = run->last_path = run->best_path = NULL;
  run->out_dir = NULL;
  run->last_good = NULL;
  tlc_pool_shutdown();
}
