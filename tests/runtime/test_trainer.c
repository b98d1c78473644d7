// test_trainer.c: the trainer runtime (trainer*.c) driven exactly as a generated main() drives
// it, without the compiler. The "model" is softmax regression on 1x8x8 images written here in
// plain C (weights, bias, their momentum buffers and an int64 step counter as its state); the
// data set is two classes (bright top half, bright bottom half; one label in 12 wrong) in IDX
// files this test writes under $TLC_TEST_TMP. Checks: it learns; metrics and checkpoints appear
// under --out; 2 epochs == 1 epoch + --resume + 1 epoch, bit for bit; a NaN loss stops with
// status 1 and leaves the previous checkpoint; bad flags and an unusable --out fail before
// training; --eval, --limit, augmentation, the validation split, padding and the schedules;
// SIGINT inside an epoch and SIGTERM during validation stop the run with last.ckpt saved, and
// resuming it ends bit for bit as the run that was not stopped; weights are checked before the
// data is read; a run without a validation split says so.
#include "check.h"
#include "tlcrt.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { B = 8, C = 1, H = 8, W = 8, K = 2, PIX = C * H * W, NPARAMS = 5 };
enum { TRAIN_FILE = 400, VAL = 100, TEST_FILE = 123, STEPS_PER_EPOCH = (TRAIN_FILE - VAL) / B };

// Arena layout: one 4 KiB slot per buffer keeps the offsets obvious.
enum {
  OFF_W = 0 << 12, OFF_B = 1 << 12, OFF_MW = 2 << 12, OFF_MB = 3 << 12, OFF_STEPS = 4 << 12,
  OFF_IMAGES = 5 << 12, OFF_LABELS = 6 << 12, OFF_SEED = 7 << 12, OFF_LR = 8 << 12,
  OFF_TLOSS = 9 << 12, OFF_TLOGITS = 10 << 12, OFF_ELOSS = 11 << 12, OFF_ELOGITS = 12 << 12,
  ARENA_BYTES = 13 << 12,
};

static const float MEAN = 0.5f, STD = 0.25f, BASE_LR = 0.01f, MOMENTUM = 0.9f;

static const TlcParamInfo params[NPARAMS] = {
    {"fc.weight", 2, {K, PIX}, OFF_W, false, true, TLC_INIT_UNIFORM_FAN_IN, PIX},
    {"fc.bias", 1, {K}, OFF_B, false, true, TLC_INIT_ZERO, 0},
    {"fc.weight.momentum_buffer", 2, {K, PIX}, OFF_MW, false, false, TLC_INIT_ZERO, 0},
    {"fc.bias.momentum_buffer", 1, {K}, OFF_MB, false, false, TLC_INIT_ZERO, 0},
    {"steps", 0, {0}, OFF_STEPS, true, false, TLC_INIT_ZERO, 0},
};

#define NORMALIZE {.kind = TLC_TF_NORMALIZE, .mean = {0.5f, 0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f, 0.25f}}
static const TlcTransform default_train[] = {{.kind = TLC_TF_HFLIP, .p = 0.5f},
                                             {.kind = TLC_TF_RANDOM_CROP, .size = 8, .pad = 1}, NORMALIZE};
static const TlcTransform default_eval[] = {NORMALIZE};
static TlcTransform one_augment[2];  // check_first_batch's: one augmentation, then NORMALIZE

static TlcModel model;  // reset by base_model(); some tests change the recipe
static char tmp[2048], data_dir[2200];
static uint8_t train_pixels[TRAIN_FILE * PIX], train_labels[TRAIN_FILE];

// What the steps saw, reset before every run; nan_step is set by the test that wants it.
static int64_t nan_step;  // the 1-based step whose first loss is NaN; 0: none
static int64_t signal_step, signal_eval;  // the 1-based step, or evaluation call, that raises stop_with
static int stop_with;
static struct {
  int64_t steps, seed_errors, eval_calls;
  uint64_t first_seed;
  float lr;                             // the learning-rate factor of the latest step
  float first_train[B * PIX];           // the run's first training batch
  int64_t first_labels[B];
  float first_eval[B * PIX], last_eval[B * PIX];  // its first and latest evaluation batches
} seen;

static void base_model(void) {
  model = (TlcModel){
      .name = "softmax", .source = "test_trainer.c", .batch = B, .channels = C, .height = H,
      .width = W, .classes = K, .arena_bytes = ARENA_BYTES, .params = params, .nparams = NPARAMS,
      .images = OFF_IMAGES, .labels = OFF_LABELS, .seed = OFF_SEED, .lr = OFF_LR,
      .train_loss = OFF_TLOSS, .train_logits = OFF_TLOGITS, .eval_loss = OFF_ELOSS,
      .eval_logits = OFF_ELOGITS, .epochs = 2, .seed_default = 1, .data_format = "idx",
      .data_dir = data_dir, .val_count = VAL, .train_transform = default_train, .ntrain_transform = 3,
      .eval_transform = default_eval, .neval_transform = 1,
      .schedule = {.kind = TLC_SCHED_STEP, .step_size = 1, .gamma = 0.5},
  };
}

//
// The model's steps, as the generated code would have them
//

// logits = W x + b for each image; loss = cross-entropy; returns d loss / d logits in grad.
static void forward(const char *A, const float *x, const int64_t *labels, float *loss, float *logits,
                    float *grad) {
  const float *w = (const float *)(A + OFF_W), *b = (const float *)(A + OFF_B);
  for (int n = 0; n < B; n++) {
    float *z = logits + n * K, mx = -INFINITY, sum = 0;
    for (int k = 0; k < K; k++) {
      z[k] = b[k];
      for (int i = 0; i < PIX; i++)
        z[k] += w[k * PIX + i] * x[n * PIX + i];
      mx = fmaxf(mx, z[k]);
    }
    for (int k = 0; k < K; k++)
      sum += expf(z[k] - mx);
    loss[n] = mx + logf(sum) - z[labels[n]];
    for (int k = 0; grad && k < K; k++)
      grad[n * K + k] = expf(z[k] - mx) / sum - (k == labels[n]);
  }
}

static void train_step(char *A) {
  float *w = (float *)(A + OFF_W), *b = (float *)(A + OFF_B);
  float *mw = (float *)(A + OFF_MW), *mb = (float *)(A + OFF_MB), lr;
  const float *x = (const float *)(A + OFF_IMAGES);
  int64_t labels[B], seed[2], steps;
  memcpy(labels, A + OFF_LABELS, sizeof labels);
  memcpy(seed, A + OFF_SEED, sizeof seed);
  memcpy(&steps, A + OFF_STEPS, sizeof steps);
  memcpy(&lr, A + OFF_LR, sizeof lr);
  seen.seed_errors += seed[1] != steps + 1;  // the runtime's step count and the model's agree
  if (seen.steps++ == 0) {
    seen.first_seed = (uint64_t)seed[0];
    memcpy(seen.first_train, x, sizeof seen.first_train);
    memcpy(seen.first_labels, labels, sizeof labels);
  }
  seen.lr = lr;
  float *loss = (float *)(A + OFF_TLOSS), *logits = (float *)(A + OFF_TLOGITS), grad[B * K];
  forward(A, x, labels, loss, logits, grad);
  if (seed[1] == nan_step)
    loss[0] = NAN;
  if (seed[1] == signal_step)
    raise(stop_with);
  for (int k = 0; k < K; k++) {  // SGD with momentum on the batch mean
    float gb = 0;
    for (int n = 0; n < B; n++)
      gb += grad[n * K + k] / B;
    mb[k] = MOMENTUM * mb[k] + gb;
    b[k] -= BASE_LR * lr * mb[k];
    for (int i = 0; i < PIX; i++) {
      float g = 0;
      for (int n = 0; n < B; n++)
        g += grad[n * K + k] * x[n * PIX + i] / B;
      mw[k * PIX + i] = MOMENTUM * mw[k * PIX + i] + g;
      w[k * PIX + i] -= BASE_LR * lr * mw[k * PIX + i];
    }
  }
  steps++;
  memcpy(A + OFF_STEPS, &steps, sizeof steps);
}

static void eval_step(char *A) {
  int64_t labels[B];
  memcpy(labels, A + OFF_LABELS, sizeof labels);
  const float *x = (const float *)(A + OFF_IMAGES);
  if (seen.eval_calls++ == 0)
    memcpy(seen.first_eval, x, sizeof seen.first_eval);
  if (seen.eval_calls == signal_eval)
    raise(stop_with);
  memcpy(seen.last_eval, x, sizeof seen.last_eval);
  forward(A, x, labels, (float *)(A + OFF_ELOSS), (float *)(A + OFF_ELOGITS), NULL);
}

static const TlcSteps steps = {train_step, eval_step, NULL, NULL};

// The generated main(), copied from tlcrt.h.
static int trainer_main(int argc, char **argv) {
  TlcRun run;
  if (tlc_run_start(&run, &model, argc, argv)) return run.status;
  for (int epoch = run.first_epoch; epoch < run.epochs; epoch++) {
    tlc_epoch_begin(&run, epoch);
    while (tlc_train_batch(&run)) if (tlc_run_step(&run, &steps, true) || tlc_train_batch_done(&run)) return run.status;
    for (TlcSplit split; tlc_next_eval(&run, &split);)
      while (tlc_eval_batch(&run, split)) { if (tlc_run_step(&run, &steps, false)) return run.status; tlc_eval_batch_done(&run); }
    if (tlc_epoch_end(&run, epoch)) return run.status;
  }
  for (TlcSplit split; tlc_next_eval(&run, &split);)
    while (tlc_eval_batch(&run, split)) { if (tlc_run_step(&run, &steps, false)) return run.status; tlc_eval_batch_done(&run); }
  return tlc_run_finish(&run);
}

//
// Running a trainer and reading what it left
//

enum { LOG_MAX = 1 << 16, MAX_ARGS = 32 };
static char log_text[LOG_MAX];  // stdout and stderr of the latest run
static char trained_score[512];  // test_trains' reported test figures (best.ckpt's)

static char *slurp(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  buf[n] = '\0';
  if (size)
    *size = n;
  return buf;
}

// Runs the trainer with the NULL-terminated arguments, its output captured in log_text (and
// echoed, indented, for ctest's --output-on-failure). Returns the exit status.
static int trainer(const char *arg, ...) {
  char args[MAX_ARGS][512], *argv[MAX_ARGS + 1], cmd[4096] = "$ train", capture[2300];
  int argc = 0;
  snprintf(args[argc++], sizeof args[0], "train");
  va_list ap;
  va_start(ap, arg);
  for (const char *a = arg; a && argc < MAX_ARGS; a = va_arg(ap, const char *)) {
    snprintf(args[argc++], sizeof args[0], "%s", a);
    strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
    strncat(cmd, a, sizeof cmd - strlen(cmd) - 1);
  }
  va_end(ap);
  for (int i = 0; i < argc; i++)
    argv[i] = args[i];
  argv[argc] = NULL;
  memset(&seen, 0, sizeof seen);
  snprintf(capture, sizeof capture, "%s/capture.txt", tmp);
  fflush(stdout);
  int fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0644), out = dup(1), err = dup(2);
  dup2(fd, 1);
  dup2(fd, 2);
  close(fd);
  int status = trainer_main(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(out, 1);
  dup2(err, 2);
  close(out);
  close(err);
  char *text = slurp(capture, NULL);
  snprintf(log_text, sizeof log_text, "%s", text ? text : "");
  free(text);
  printf("%s  [status %d]\n", cmd, status);
  for (const char *line = log_text; *line;) {
    const char *end = strchr(line, '\n');
    int len = end ? (int)(end - line) : (int)strlen(line);
    printf("    %.*s\n", len, line);
    line += len + (end != NULL);
  }
  return status;
}

static bool logged(const char *text) {
  bool found = strstr(log_text, text) != NULL;
  if (!found)
    fprintf(stderr, "  not in the output: \"%s\"\n", text);
  return found;
}

// The line of log_text starting with prefix, copied into line (empty if none).
static void find_line(const char *prefix, char *line, size_t size) {
  line[0] = '\0';
  for (const char *p = log_text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (strncmp(p, prefix, strlen(prefix)) == 0) {
      const char *end = strchr(p, '\n');
      snprintf(line, size, "%.*s", end ? (int)(end - p) : (int)strlen(p), p);
      return;
    }
  }
}

// Did the run print an epoch line (did it train)?
static bool epoch_printed(void) {
  char line[512];
  find_line("epoch ", line, sizeof line);
  return line[0] != '\0';
}

// The result line without its timings (train_time_s, images_per_s), which differ run to run.
static void result_core(char *out, size_t size) {
  char line[512];
  find_line("result:", line, sizeof line);
  char *t = strstr(line, " train_time_s="), *e = strstr(line, " epochs=");
  if (t && e) {
    char *sp = strchr(e + 1, ' ');
    snprintf(out, size, "%.*s%.*s", (int)(t - line), line, sp ? (int)(sp - e) : (int)strlen(e), e);
  } else {
    snprintf(out, size, "(no result line)");
  }
}

// The result line's test figures: "test_acc=.. test_loss=..".
static void result_score(char *out, size_t size) {
  char line[512];
  find_line("result:", line, sizeof line);
  char *start = strstr(line, "test_acc="), *end = strstr(line, " tested=");
  if (start && end)
    snprintf(out, size, "%.*s", (int)(end - start), start);
  else
    snprintf(out, size, "(no result line)");
}

// An epoch line up to its val_acc (the rest is timing).
static void epoch_core(const char *prefix, char *out, size_t size) {
  char line[512];
  find_line(prefix, line, sizeof line);
  char *v = strstr(line, "val_acc "), *pct = v ? strchr(v, '%') : NULL;
  snprintf(out, size, "%.*s", pct ? (int)(pct + 1 - line) : 0, line);
}

static double result_field(const char *key) {
  char line[512], *p;
  find_line("result:", line, sizeof line);
  return (p = strstr(line, key)) ? strtod(p + strlen(key), NULL) : NAN;
}

static void path(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", tmp, name); }

static bool exists(const char *dir, const char *name) {
  char p[4400];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

static bool same_file(const char *a, const char *b) {
  size_t na, nb;
  char *x = slurp(a, &na), *y = slurp(b, &nb);
  bool same = x && y && na == nb && memcmp(x, y, na) == 0;
  free(x);
  free(y);
  return same;
}

// A number of a metrics.jsonl line, NaN when absent.
static double json_field(const char *line, const char *key) {
  char want[64];
  snprintf(want, sizeof want, "\"%s\":", key);
  const char *f = strstr(line, want), *end = strchr(line, '\n');
  return f && (!end || f < end) ? strtod(f + strlen(want), NULL) : NAN;
}

// The lines of OUT/metrics.jsonl (each must start with its epoch), their lr_factor and val_acc.
static int metrics_lines(const char *out, double *lr_factor, double *val_acc, int max) {
  char p[4400];
  snprintf(p, sizeof p, "%s/metrics.jsonl", out);
  char *text = slurp(p, NULL);
  int n = 0;
  for (char *line = text; line && *line; n++) {
    char want[32];
    snprintf(want, sizeof want, "{\"epoch\":%d,", n + 1);
    CHECK(strncmp(line, want, strlen(want)) == 0);
    CHECK(isfinite(json_field(line, "loss")) && isfinite(json_field(line, "images_per_s")));
    if (n < max) {
      lr_factor[n] = json_field(line, "lr_factor");
      if (val_acc)
        val_acc[n] = json_field(line, "val_acc");
    }
    line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line);
  }
  free(text);
  return n;
}

typedef struct State {
  float w[K * PIX], b[K], mw[K * PIX], mb[K], steps;
  TlcCheckpointInfo info;
} State;

// Reads a checkpoint of the softmax model, as the trainer would.
static bool load_state(const char *file, State *s) {
  float *data[NPARAMS] = {s->w, s->b, s->mw, s->mb, &s->steps};
  TlcTensorRef t[NPARAMS];
  for (int i = 0; i < NPARAMS; i++) {
    t[i] = (TlcTensorRef){.name = params[i].name, .dims = params[i].dims, .data = data[i]};
    memcpy(t[i].shape, params[i].shape, sizeof t[i].shape);
  }
  s->info = (TlcCheckpointInfo){.graph = "softmax", .graph_hash = tlc_checkpoint_graph_hash(t, NPARAMS)};
  TlcError err = {{0}};
  int rc = tlc_checkpoint_load(file, &s->info, t, NPARAMS, &err);
  if (rc != 0)
    fprintf(stderr, "  %s\n", err.msg);
  return rc == 0;
}

//
// Data sets
//

static uint32_t lcg(uint32_t *s) { return (*s = *s * 1664525u + 1013904223u) >> 8; }

static void write_file(const char *dir, const char *name, uint32_t magic, const uint32_t *dims, int ndims,
                       const uint8_t *bytes, size_t n) {
  char p[2400];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  CHECK(f != NULL);
  if (!f)
    return;
  uint32_t words[4] = {magic, dims[0], ndims > 1 ? dims[1] : 0, ndims > 2 ? dims[2] : 0};
  for (int i = 0; i <= ndims; i++) {
    uint8_t be[4] = {(uint8_t)(words[i] >> 24), (uint8_t)(words[i] >> 16), (uint8_t)(words[i] >> 8), (uint8_t)words[i]};
    fwrite(be, 1, 4, f);
  }
  fwrite(bytes, 1, n, f);
  CHECK(fclose(f) == 0);
}

// count images of side x side: label 0 is bright on top, label 1 at the bottom (with noise,
// and some labels wrong); labels run 0..classes-1. keep: remember the pixels and labels.
static void write_split(const char *dir, const char *prefix, int count, int side, int classes, uint32_t seed,
                        bool keep) {
  uint8_t *pixels = malloc((size_t)(count * side * side)), *labels = malloc((size_t)count);
  for (int i = 0; i < count; i++) {
    int drawn = (int)(lcg(&seed) % (uint32_t)classes);
    for (int y = 0; y < side; y++)
      for (int x = 0; x < side; x++) {
        bool bright = (drawn % 2 == 0) == (y < side / 2);
        pixels[(i * side + y) * side + x] = (uint8_t)((bright ? 140 : 110) + lcg(&seed) % 121 - 60);
      }
    // One label in 12 is wrong: accuracy stays below 100% and the losses stay informative.
    labels[i] = (uint8_t)(lcg(&seed) % 12 == 0 ? (drawn + 1) % classes : drawn);
  }
  char name[64];
  uint32_t dims[3] = {(uint32_t)count, (uint32_t)side, (uint32_t)side};
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  write_file(dir, name, 0x803, dims, 3, pixels, (size_t)(count * side * side));
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  write_file(dir, name, 0x801, dims, 1, labels, (size_t)count);
  if (keep) {
    memcpy(train_pixels, pixels, sizeof train_pixels);
    memcpy(train_labels, labels, sizeof train_labels);
  }
  free(pixels);
  free(labels);
}

// A data set directory; the main one ("data") keeps its training split for the checks.
static void make_data(const char *name, int side, int classes) {
  char dir[2200];
  path(dir, sizeof dir, name);
  mkdir(dir, 0755);
  write_split(dir, "train", TRAIN_FILE, side, classes, 1, strcmp(name, "data") == 0);
  write_split(dir, "t10k", TEST_FILE, side, classes, 2, false);
}

static float norm(uint8_t p) { return ((float)p / 255.0f - MEAN) / STD; }

//
// The tests
//

static void test_trains(void) {
  char out[2200], line[512], want[2400];
  path(out, sizeof out, "train");
  CHECK(trainer("--data", data_dir, "--out", out, "--epochs", "3", "--seed", "7", "--threads", "2", NULL) == 0);
  snprintf(want, sizeof want, "data: %s (idx): train 300, val 100, test 123 images, 2 classes; the model takes 1x8x8",
           data_dir);
  CHECK(logged(want));
  // Chance is 50%; one label in 12 is wrong, so about 92% is the ceiling.
  double loss1 = 0, acc1 = 0, loss3 = 0, acc3 = 0;
  find_line("epoch 1/3", line, sizeof line);
  CHECK(sscanf(line, "epoch 1/3  loss %lf  acc %lf%%", &loss1, &acc1) == 2);
  find_line("epoch 3/3", line, sizeof line);
  CHECK(sscanf(line, "epoch 3/3  loss %lf  acc %lf%%", &loss3, &acc3) == 2);
  CHECK(acc3 > 80 && acc3 > acc1 && loss3 < loss1);
  CHECK(result_field("test_acc=") > 0.8 && result_field("best_val_acc=") > 0.8);
  CHECK(result_field("epochs=") == 3);
  CHECK(seen.first_seed == 7 && seen.seed_errors == 0 && seen.steps == 3 * STEPS_PER_EPOCH);
  double lr[4], val[4];
  CHECK(metrics_lines(out, lr, val, 4) == 3);
  // best.ckpt is the first epoch that reached the best validation accuracy (ties keep the older).
  int best = 0;
  for (int e = 1; e < 3; e++)
    best = val[e] > val[best] ? e : best;
  CHECK(result_field("best_epoch=") == best + 1);
  // 13 validation batches a epoch (100 images), then 16 test batches (123 images) with the last
  // weights and, when best.ckpt is another epoch's, 16 more with its weights.
  CHECK(seen.eval_calls == 3 * 13 + 16 + (best == 2 ? 0 : 16));
  CHECK(lr[0] == 1 && lr[1] == 0.5 && lr[2] == 0.25);  // step schedule: step_size 1, gamma 0.5
  CHECK(exists(out, "last.ckpt") && exists(out, "best.ckpt"));
  State s;
  char ckpt[2300];
  snprintf(ckpt, sizeof ckpt, "%s/last.ckpt", out);
  CHECK(load_state(ckpt, &s));
  CHECK(s.info.epoch == 3 && s.info.step == 3 * STEPS_PER_EPOCH && s.steps == 3 * STEPS_PER_EPOCH);
  CHECK(fabs(s.info.best_metric - result_field("best_val_acc=")) < 5e-5);
  snprintf(ckpt, sizeof ckpt, "%s/best.ckpt", out);
  CHECK(load_state(ckpt, &s) && s.info.epoch == best + 1);
  // The first validation batch is the first of the last 100 training images, unaugmented.
  bool val_ok = true;
  for (int i = 0; i < B * PIX; i++)
    val_ok &= seen.first_eval[i] == norm(train_pixels[(TRAIN_FILE - VAL) * PIX + i]);
  CHECK(val_ok);
  // The last test batch holds 3 images (120..122); its padding repeats the third.
  for (int b = 3; b < B; b++)
    CHECK(memcmp(seen.last_eval + b * PIX, seen.last_eval + 2 * PIX, PIX * sizeof(float)) == 0);
  result_score(trained_score, sizeof trained_score);
  CHECK(logged("tested=best"));
}

// Does batch image `got` equal training image k (of the first n), flipped or shifted?
static bool is_transformed(const float *got, int label, int n, bool flip, int shift) {
  for (int k = 0; k < n; k++) {
    for (int dy = -shift; dy <= shift; dy++)
      for (int dx = -shift; dx <= shift; dx++) {
        bool same = train_labels[k] == label;
        for (int y = 0; same && y < H; y++)
          for (int x = 0; same && x < W; x++) {
            int sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
            uint8_t p = sy >= 0 && sy < H && sx >= 0 && sx < W ? train_pixels[k * PIX + sy * W + sx] : 0;
            same = got[y * W + x] == norm(p);
          }
        if (same)
          return true;
      }
  }
  return false;
}

static void check_first_batch(TlcTransform aug, bool flip, int shift) {
  base_model();
  one_augment[0] = aug;
  one_augment[1] = default_eval[0];
  model.train_transform = one_augment;
  model.ntrain_transform = 2;
  char out[2200];
  path(out, sizeof out, "augment");
  CHECK(trainer("--data", data_dir, "--out", out, "--epochs", "1", "--limit", "16", NULL) == 0);
  for (int b = 0; b < B; b++)
    CHECK(is_transformed(seen.first_train + b * PIX, (int)seen.first_labels[b], 16, flip, shift));
}

static void test_augmentation(void) {
  const TlcTransform flip = {.kind = TLC_TF_HFLIP, .p = 1}, keep = {.kind = TLC_TF_HFLIP, .p = 0};
  const TlcTransform crop = {.kind = TLC_TF_RANDOM_CROP, .size = 8, .pad = 1};
  check_first_batch(flip, true, 0);
  check_first_batch(keep, false, 0);
  check_first_batch(crop, false, 1);
  int unshifted = 0;  // 8 crops all at offset 0: probability 9^-8
  for (int b = 0; b < B; b++)
    unshifted += is_transformed(seen.first_train + b * PIX, (int)seen.first_labels[b], 16, false, 0);
  CHECK(unshifted < B);
  base_model();
}

static void test_resume(void) {
  char a[2200], b[2200], ca[2300], cb[2300], resume[2300];
  char line_a[512], line_b[512], result_a[512], result_b[512];
  path(a, sizeof a, "straight");
  path(b, sizeof b, "resumed");
  CHECK(trainer("--data", data_dir, "--out", a, "--epochs", "2", "--seed", "11", NULL) == 0);
  epoch_core("epoch 2/2", line_a, sizeof line_a);
  result_core(result_a, sizeof result_a);
  CHECK(trainer("--data", data_dir, "--out", b, "--epochs", "1", "--seed", "11", NULL) == 0);
  snprintf(resume, sizeof resume, "%s/last.ckpt", b);
  CHECK(trainer("--data", data_dir, "--out", b, "--epochs", "2", "--seed", "11", "--resume", resume, NULL) == 0);
  CHECK(!strstr(log_text, "epoch 1/2") && logged("resume:") && seen.seed_errors == 0);
  epoch_core("epoch 2/2", line_b, sizeof line_b);
  result_core(result_b, sizeof result_b);
  CHECK(line_a[0] != '\0' && strcmp(line_a, line_b) == 0);
  CHECK(strcmp(result_a, result_b) == 0);
  if (strcmp(result_a, result_b) != 0)
    fprintf(stderr, "  straight: %s\n  resumed:  %s\n", result_a, result_b);
  snprintf(ca, sizeof ca, "%s/last.ckpt", a);
  snprintf(cb, sizeof cb, "%s/last.ckpt", b);
  State sa, sb;
  CHECK(load_state(ca, &sa) && load_state(cb, &sb));
  CHECK(memcmp(sa.w, sb.w, sizeof sa.w) == 0 && memcmp(sa.b, sb.b, sizeof sa.b) == 0);
  CHECK(memcmp(sa.mw, sb.mw, sizeof sa.mw) == 0 && sa.steps == sb.steps);
  CHECK(sa.info.rng[0] == sb.info.rng[0] && sa.info.rng[1] == sb.info.rng[1]);
  CHECK(same_file(ca, cb));
  double lr[4];
  CHECK(metrics_lines(b, lr, NULL, 4) == 2 && lr[1] == 0.5);  // the resumed run appended its epoch
}

static void test_nan(void) {
  char ref[2200], out[2200], want[2400], a[2300], b[2300];
  path(ref, sizeof ref, "nan-reference");
  path(out, sizeof out, "nan");
  CHECK(trainer("--data", data_dir, "--out", ref, "--epochs", "1", "--seed", "5", NULL) == 0);
  nan_step = STEPS_PER_EPOCH + 5;
  CHECK(trainer("--data", data_dir, "--out", out, "--epochs", "3", "--seed", "5", NULL) == 1);
  snprintf(want, sizeof want, "error: the loss became NaN at epoch 2, step %d; training stopped, the last "
           "good checkpoint is %s/last.ckpt", STEPS_PER_EPOCH + 5, out);
  CHECK(logged(want) && !strstr(log_text, "epoch 2/3"));
  CHECK(!strstr(log_text, "result:"));
  snprintf(a, sizeof a, "%s/last.ckpt", ref);
  snprintf(b, sizeof b, "%s/last.ckpt", out);
  CHECK(same_file(a, b));  // the checkpoint of epoch 1, untouched by the failed epoch
  double lr[4];
  CHECK(metrics_lines(out, lr, NULL, 4) == 1);
  path(out, sizeof out, "nan-early");
  nan_step = 3;
  CHECK(trainer("--data", data_dir, "--out", out, "--epochs", "2", NULL) == 1);
  CHECK(logged("the loss became NaN at epoch 1, step 3; training stopped, no checkpoint was written yet"));
  CHECK(!exists(out, "last.ckpt"));
  nan_step = 0;
}

// Stops the run with `sig` at the given step (or evaluation call), checks what it says and
// leaves, resumes it, and compares with a run that was not stopped.
static void check_stop(int sig, int64_t step, int64_t eval_call, const char *said) {
  char a[2200], b[2200], ca[2300], cb[2300], want[8000], line_a[512], line_b[512], result_a[512], result_b[512];
  path(a, sizeof a, "unstopped");
  path(b, sizeof b, sig == SIGINT ? "stopped-int" : "stopped-term");
  CHECK(trainer("--data", data_dir, "--out", a, "--epochs", "3", "--seed", "4", NULL) == 0);
  epoch_core("epoch 2/3", line_a, sizeof line_a);
  result_core(result_a, sizeof result_a);
  stop_with = sig, signal_step = step, signal_eval = eval_call;
  int status = trainer("--data", data_dir, "--out", b, "--epochs", "3", "--seed", "4", NULL);
  signal_step = signal_eval = 0;
  snprintf(cb, sizeof cb, "%s/last.ckpt", b);
  CHECK(status == 128 + sig && logged(said) && !strstr(log_text, "result:"));
  snprintf(want, sizeof want, "stopped: continue with: train --data %s --out %s --epochs 3 --seed 4 --resume %s",
           data_dir, b, cb);
  CHECK(logged(want) && logged("stop requested: finishing the step under way"));
  CHECK(trainer("--data", data_dir, "--eval", cb, NULL) == 0 && logged("result: test_acc="));
  CHECK(trainer("--data", data_dir, "--out", b, "--epochs", "3", "--seed", "4", "--resume", cb, NULL) == 0);
  CHECK(logged("resume:") && seen.seed_errors == 0);
  epoch_core("epoch 2/3", line_b, sizeof line_b);
  result_core(result_b, sizeof result_b);
  CHECK(line_a[0] && strcmp(line_a, line_b) == 0 && strcmp(result_a, result_b) == 0);
  if (strcmp(line_a, line_b) || strcmp(result_a, result_b))
    fprintf(stderr, "  not stopped: %s | %s\n  resumed:     %s | %s\n", line_a, result_a, line_b, result_b);
  snprintf(ca, sizeof ca, "%s/last.ckpt", a);
  CHECK(same_file(ca, cb));
  double lr[4];
  CHECK(metrics_lines(b, lr, NULL, 4) == 3);
}

static void test_stop(void) {
  char said[256];
  snprintf(said, sizeof said, "stopped: SIGINT in epoch 2 of 3, after 5 of %d batches (step %d)", STEPS_PER_EPOCH,
           STEPS_PER_EPOCH + 5);
  check_stop(SIGINT, STEPS_PER_EPOCH + 5, 0, said);
  CHECK(logged("resume:") && logged("stopped in epoch 2 after 40 training images"));
  // During the first epoch's validation: the epoch is saved as far as it went (all its steps).
  snprintf(said, sizeof said, "stopped: SIGTERM in epoch 1 of 3, after %d of %d batches", STEPS_PER_EPOCH,
           STEPS_PER_EPOCH);
  check_stop(SIGTERM, 0, 3, said);
  stop_with = 0;
}

// --weights is opened and matched before the data is read (or any image decoded).
static void test_inputs_first(void) {
  char out[2200], missing[2300];
  path(out, sizeof out, "inputs-first");
  path(missing, sizeof missing, "no-such-weights.safetensors");
  CHECK(trainer("--data", data_dir, "--out", out, "--weights", missing, NULL) == 1);
  CHECK(logged("no-such-weights.safetensors: cannot open") && !strstr(log_text, "data:"));
}

static void test_no_validation(void) {
  char out[2200], want[2400];
  model.val_count = 0;
  path(out, sizeof out, "no-val");
  CHECK(trainer("--data", data_dir, "--out", out, "--epochs", "1", "--limit", "64", NULL) == 0);
  snprintf(want, sizeof want, "data: %s (idx): train 64, val 0, test 64 images", data_dir);
  CHECK(logged(want) && logged("data: no validation split (idx's val is 0): each epoch is tested on the test split "
                               "instead (no held-out score), best.ckpt is not written (last.ckpt is), and the result "
                               "line says best_val_acc=none"));
  CHECK(logged(" best_val_acc=none ") && !strstr(log_text, "nan"));
  CHECK(exists(out, "last.ckpt") && !exists(out, "best.ckpt"));
  base_model();
}

static void test_bad_out(void) {
  char file[2200], under[2300];
  path(file, sizeof file, "a-file");
  FILE *f = fopen(file, "w");
  CHECK(f != NULL && fclose(f) == 0);
  CHECK(trainer("--data", data_dir, "--out", file, NULL) == 1);
  CHECK(logged("error: --out") && logged("not a directory"));
  CHECK(!strstr(log_text, "data:") && !epoch_printed());  // before loading or training
  snprintf(under, sizeof under, "%s/sub", file);
  CHECK(trainer("--data", data_dir, "--out", under, NULL) == 1);
  CHECK(logged("cannot create the directory") && !epoch_printed());
}

static void test_flags(void) {
  CHECK(trainer("--epochs", "0", NULL) == 2 && logged("error: --epochs expects an integer"));
  CHECK(trainer("--epochs", "abc", NULL) == 2 && logged("--epochs") && logged("'abc'"));
  CHECK(trainer("--epochs", NULL) == 2 && logged("--epochs needs a value"));
  CHECK(trainer("--bogus", NULL) == 2 && logged("unknown flag '--bogus'"));
  CHECK(trainer("--seed=-1", NULL) == 2 && logged("--seed"));
  CHECK(trainer("--limit", "0", NULL) == 2 && logged("--limit"));
  CHECK(trainer("stray", NULL) == 2 && logged("unexpected argument 'stray'"));
  CHECK(trainer("--device", "tpu", NULL) == 2 && logged("--device expects cpu, cuda or auto"));
  // This model has no bundle, as when tlc finds no NVRTC.
  CHECK(trainer("--device", "cuda", NULL) == 1 &&
        logged("error: --device cuda: this trainer has no GPU kernels (NVRTC was not available when tlc built it"));
  CHECK(trainer("--predict", "x.png", NULL) == 2 && logged("--predict needs trained weights"));
  CHECK(trainer("--predict", "--eval", "a.ckpt", NULL) == 2 && logged("--predict needs at least one image file"));
  CHECK(trainer("--predict", "x.png", "--eval", "a.ckpt", "--resume", "b.ckpt", NULL) == 2 &&
        logged("cannot be combined"));
  CHECK(trainer("--eval", "a.ckpt", "--resume", "b.ckpt", NULL) == 2 && logged("cannot be combined"));
  CHECK(trainer("--epochs", "0", "--help", NULL) == 0 && logged("usage: train") && logged("--resume CKPT"));
  char out[2200];
  path(out, sizeof out, "tiny-limit");
  CHECK(trainer("--data", data_dir, "--out", out, "--limit", "3", NULL) == 2 && logged("raise --limit"));
}

static void test_eval(void) {
  char ckpt[2300], core_eval[512], bad[2300], out[2200];
  // The checkpoint test_trains reported gives the test figures it printed.
  snprintf(ckpt, sizeof ckpt, "%s/train/best.ckpt", tmp);
  CHECK(trainer("--data", data_dir, "--eval", ckpt, NULL) == 0);
  CHECK(logged("result: test_acc=") && logged("tested=checkpoint") && !epoch_printed() &&
        logged("test 123 images"));
  CHECK(seen.steps == 0 && seen.eval_calls == 16);
  result_score(core_eval, sizeof core_eval);
  CHECK(strcmp(trained_score, core_eval) == 0);
  if (strcmp(trained_score, core_eval) != 0)
    fprintf(stderr, "  trained: %s\n  --eval:  %s\n", trained_score, core_eval);
  path(out, sizeof out, "eval-out");
  path(bad, sizeof bad, "missing.ckpt");
  CHECK(trainer("--data", data_dir, "--eval", bad, NULL) == 1 && logged("cannot open"));
  // A checkpoint of another model, and one cut short, are refused with the checkpoint's errors.
  float x = 1;
  TlcTensorRef other = {.name = "conv.weight", .dims = 1, .shape = {1}, .data = &x};
  TlcCheckpointInfo info = {.graph = "other", .graph_hash = tlc_checkpoint_graph_hash(&other, 1)};
  TlcError err;
  path(bad, sizeof bad, "other.ckpt");
  CHECK(tlc_checkpoint_save(bad, &info, &other, 1, &err) == 0);
  CHECK(trainer("--data", data_dir, "--out", out, "--resume", bad, NULL) == 1);
  CHECK(logged("checkpoint of graph 'other', this trainer is 'softmax'"));
  size_t n;
  char *bytes = slurp(ckpt, &n);
  path(bad, sizeof bad, "cut.ckpt");
  FILE *f = fopen(bad, "wb");
  CHECK(bytes && f && fwrite(bytes, 1, n / 2, f) == n / 2 && fclose(f) == 0);
  free(bytes);
  CHECK(trainer("--data", data_dir, "--out", out, "--resume", bad, NULL) == 1);
  CHECK(logged("truncated or corrupt") && !epoch_printed());
}

static void test_limit(void) {
  char out[2200], want[2400], ckpt[2300];
  path(out, sizeof out, "limit");
  CHECK(trainer("--data", data_dir, "--out", out, "--epochs", "2", "--limit", "40", NULL) == 0);
  snprintf(want, sizeof want, "data: %s (idx): train 40, val 40, test 40 images, 2 classes", data_dir);
  CHECK(logged(want));
  CHECK(seen.steps == 2 * 5 && seen.eval_calls == 2 * 5 + 5);
  snprintf(ckpt, sizeof ckpt, "%s/last.ckpt", out);
  State s;
  CHECK(load_state(ckpt, &s) && s.info.step == 10 && s.steps == 10);
}

static void test_data_checks(void) {
  char dir[2200], out[2200];
  path(out, sizeof out, "data-checks");
  path(dir, sizeof dir, "data-5x5");
  CHECK(trainer("--data", dir, "--out", out, NULL) == 1);
  CHECK(logged("data-5x5: image 0 of the data set: transforms: a 5x5 image with 1 channel becomes 1x5x5 (CxHxW) "
               "after its transforms, but the model takes 1x8x8"));
  path(dir, sizeof dir, "data-3-classes");
  CHECK(trainer("--data", dir, "--out", out, NULL) == 1);
  CHECK(logged("has label 2, but model 'softmax' has 2 classes"));
  path(dir, sizeof dir, "no-such-data");
  CHECK(trainer("--data", dir, "--out", out, NULL) == 1 && logged("missing data file"));
}

static void check_schedule(TlcSchedule schedule, const double *want, int epochs) {
  base_model();
  model.schedule = schedule;
  char out[2200], n[16];
  path(out, sizeof out, "schedule");
  snprintf(n, sizeof n, "%d", epochs);
  CHECK(trainer("--data", data_dir, "--out", out, "--epochs", n, "--limit", "8", NULL) == 0);
  double lr[8];
  CHECK(metrics_lines(out, lr, NULL, 8) == epochs);
  for (int e = 0; e < epochs; e++) {
    CHECK(fabs(lr[e] - want[e]) < 1e-6);
    if (fabs(lr[e] - want[e]) >= 1e-6)
      fprintf(stderr, "  epoch %d: lr factor %g, expected %g\n", e + 1, lr[e], want[e]);
  }
  CHECK(seen.lr == (float)want[epochs - 1]);  // what the step read from the arena
}

static void test_schedules(void) {
  const double pi = 3.14159265358979323846;
  double cosine[4];
  for (int e = 0; e < 4; e++)
    cosine[e] = 0.1 + 0.9 * (1 + cos(pi * e / 4)) / 2;
  cosine[0] *= 0.5;  // one warm-up epoch: (0 + 1) / (1 + 1)
  check_schedule((TlcSchedule){.kind = TLC_SCHED_COSINE, .eta_min_ratio = 0.1, .warmup = 1}, cosine, 4);
  const double multistep[] = {1, 0.1, 0.1, 0.01};
  check_schedule((TlcSchedule){.kind = TLC_SCHED_MULTISTEP, .milestones = {1, 3}, .nmilestones = 2, .gamma = 0.1},
                 multistep, 4);
  const double constant[] = {1, 1};
  check_schedule((TlcSchedule){.kind = TLC_SCHED_CONSTANT}, constant, 2);
  base_model();
}

static void test_default_out(void) {
  char cwd[4096], dir[2200];
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  path(dir, sizeof dir, "cwd");
  mkdir(dir, 0755);
  CHECK(chdir(dir) == 0);
  CHECK(trainer("--epochs", "1", "--limit", "16", NULL) == 0);  // --data defaults to the model's
  CHECK(exists("runs/softmax", "last.ckpt") && exists("runs/softmax", "metrics.jsonl"));
  CHECK(chdir(cwd) == 0);
}

int main(void) {
  const char *env = getenv("TLC_TEST_TMP");
  snprintf(tmp, sizeof tmp, "%s", env && *env ? env : "/tmp/tlc-test-trainer");
  char cmd[2200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
  CHECK(system(cmd) == 0);
  char *abs = realpath(tmp, NULL);  // test_default_out changes directory
  if (abs) {
    snprintf(tmp, sizeof tmp, "%s", abs);
    free(abs);
  }
  path(data_dir, sizeof data_dir, "data");
  make_data("data", W, K);
  make_data("data-5x5", 5, K);
  make_data("data-3-classes", W, 3);
  base_model();
  test_trains();
  test_augmentation();
  test_resume();
  test_stop();
  test_inputs_first();
  test_no_validation();
  test_nan();
  test_bad_out();
  test_flags();
  test_eval();
  test_limit();
  test_data_checks();
  test_schedules();
  test_default_out();
  return check_report();
}
