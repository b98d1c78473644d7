// trainer_flags.c: the trainer's command line.
//
// Contract: every flag is `--name VALUE` or `--name=VALUE`; the last of a repeated flag wins,
// except --predict, which takes every following argument up to the next `--` flag and adds
// to the images of an earlier --predict. An unknown flag, a stray argument, a missing value or
// a bad value is a usage error (exit status 2) whose message names the flag. Parsing only
// records options: nothing is opened or created here.
#include "trainer_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef int (*FlagFn)(TlcRun *run, const char *flag, const char *value, TlcError *err);

typedef struct Flag {
  const char *name;     // "--epochs"
  bool takes_value;
  FlagFn apply;
  bool takes_list;      // also the following arguments that are not flags, each applied
} Flag;

// A base-10 integer in [min, max], the whole of value; else a usage error naming the flag.
static int parse_int(const char *flag, const char *value, int64_t min, int64_t max, int64_t *out,
                     TlcError *err) {
  char *end;
  errno = 0;
  long long v = strtoll(value, &end, 10);
  if (!*value || *end || errno || v < min || v > max) {
    tlc_fail(err, "%s expects an integer from %" PRId64 " to %" PRId64 ", got '%s'", flag, min, max,
             value);
    return TRAINER_USAGE;
  }
  *out = v;
  return TRAINER_OK;
}

static int flag_data(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)err;
  run->data_dir = value;
  return TRAINER_OK;
}

// A learning rate other than the recipe's, without a rebuild: the kernels hold the recipe's
// (times each group's multiplier), and the step's lr input scales it.
static int flag_lr(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  char *end;
  errno = 0;
  double lr = strtod(value, &end);
  if (!*value || *end || errno || !(lr > 0) || !isfinite(lr)) {
    tlc_fail(err, "%s expects a positive number, got '%s'", flag, value);
    return TRAINER_USAGE;
  }
  if (!(run->model->schedule.lr > 0)) {
    tlc_fail(err, "%s: the recipe's learning rate is 0, so there is none to scale; rebuild with --set optimizer.lr=%s",
             flag, value);
    return TRAINER_USAGE;
  }
  run->lr = lr;
  return TRAINER_OK;
}

static int flag_epochs(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  int64_t n;
  int rc = parse_int(flag, value, 1, 1000000, &n, err);
  if (rc == TRAINER_OK)
    run->epochs = (int)n;
  return rc;
}

// cuda is checked when the run starts: whether there is a GPU is not a usage error.
static int flag_device(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  if (strcmp(value, "cpu") != 0 && strcmp(value, "cuda") != 0 && strcmp(value, "auto") != 0) {
    tlc_fail(err, "%s expects cpu, cuda or auto, got '%s'", flag, value);
    return TRAINER_USAGE;
  }
  run->device = value;
  return TRAINER_OK;
}

static int flag_check_gpu(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)value, (void)err;
  run->check_gpu = true;
  run->device = "cuda";
  return TRAINER_OK;
}

static int flag_profile(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)value, (void)err;
  run->profiling = true;
  return TRAINER_OK;
}

static int flag_no_feature_cache(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)value, (void)err;
  run->no_feature_cache = true;
  return TRAINER_OK;
}

static int flag_no_cuda_graph(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)value, (void)err;
  run->no_cuda_graph = true;
  return TRAINER_OK;
}

static int flag_seed(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  // strtoull accepts "-1" and wraps it; a seed is written without a sign.
  char *end;
  errno = 0;
  unsigned long long v = strtoull(value, &end, 10);
  if (*value < '0' || *value > '9' || *end || errno) {
    tlc_fail(err, "%s expects an integer from 0 to %" PRIu64 ", got '%s'", flag, UINT64_MAX, value);
    return TRAINER_USAGE;
  }
  run->seed = v;
  return TRAINER_OK;
}

static int flag_out(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  if (!*value) {
    tlc_fail(err, "%s expects a directory, got an empty string", flag);
    return TRAINER_USAGE;
  }
  run->out_dir = value;
  return TRAINER_OK;
}

static int flag_resume(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)err;
  run->resume = value;
  return TRAINER_OK;
}

static int flag_limit(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  return parse_int(flag, value, 1, INT64_MAX, &run->limit, err);
}

static int flag_eval(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)err;
  run->eval_checkpoint = value;
  return TRAINER_OK;
}

static int flag_threads(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  int64_t n;
  int rc = parse_int(flag, value, 1, 4096, &n, err);
  if (rc == TRAINER_OK)
    run->threads = (int)n;
  return rc;
}

static int flag_loader_threads(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  int64_t n;
  int rc = parse_int(flag, value, 1, 4096, &n, err);
  if (rc == TRAINER_OK)
    run->loader_threads = (int)n;
  return rc;
}

static int flag_cache_mb(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  return parse_int(flag, value, 0, INT64_MAX / (1 << 20), &run->cache_mb, err);
}

static int flag_gpu_cache_mb(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  return parse_int(flag, value, 0, INT64_MAX / (1 << 20), &run->gpu_cache_mb, err);
}

static int flag_gpu_data_mb(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  return parse_int(flag, value, 0, INT64_MAX / (1 << 20), &run->gpu_data_mb, err);
}

static int flag_no_gpu_data(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)value, (void)err;
  run->no_gpu_data = true;
  return TRAINER_OK;
}

static int flag_check_gpu_data(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  (void)flag, (void)value, (void)err;
  run->check_gpu_data = true;
  run->device = "cuda";
  return TRAINER_OK;
}

// A file the run writes or reads: an empty name is a usage error, not "cannot open ''".
static int file_value(const char *flag, const char *value, const char **out, TlcError *err) {
  if (!*value) {
    tlc_fail(err, "%s expects a file name, got an empty string", flag);
    return TRAINER_USAGE;
  }
  *out = value;
  return TRAINER_OK;
}

static int flag_weights(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  return file_value(flag, value, &run->weights, err);
}

static int flag_export(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  return file_value(flag, value, &run->export_path, err);
}

static int flag_logits(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  return file_value(flag, value, &run->logits_path, err);
}

// One image of --predict. "--predict --eval x" would otherwise predict a file named --eval.
static int flag_predict(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  if (strncmp(value, "--", 2) == 0) {
    tlc_fail(err, "%s needs at least one image file before the next flag, got '%s'", flag, value);
    return TRAINER_USAGE;
  }
  const char *path;
  int rc = file_value(flag, value, &path, err);
  if (rc != TRAINER_OK)
    return rc;
  const char **grown = realloc(run->predict_paths, (size_t)(run->npredict + 1) * sizeof *grown);
  if (!grown) {
    tlc_fail(err, "out of memory");
    return TRAINER_FAILED;
  }
  run->predict_paths = grown;
  run->predict_paths[run->npredict++] = path;
  return TRAINER_OK;
}

static int flag_predict_grid(TlcRun *run, const char *flag, const char *value, TlcError *err) {
  return file_value(flag, value, &run->predict_grid, err);
}

static const Flag FLAGS[] = {
    {"--data", true, flag_data},       {"--epochs", true, flag_epochs},
    {"--lr", true, flag_lr},
    {"--device", true, flag_device},   {"--seed", true, flag_seed},
    {"--out", true, flag_out},         {"--resume", true, flag_resume},
    {"--limit", true, flag_limit},     {"--eval", true, flag_eval},
    {"--threads", true, flag_threads}, {"--predict", true, flag_predict, true},
    {"--weights", true, flag_weights}, {"--export", true, flag_export},
    {"--logits", true, flag_logits}, {"--check-gpu", false, flag_check_gpu},
    {"--no-feature-cache", false, flag_no_feature_cache}, {"--profile", false, flag_profile},
    {"--loader-threads", true, flag_loader_threads}, {"--cache-mb", true, flag_cache_mb},
    {"--predict-grid", true, flag_predict_grid}, {"--gpu-cache-mb", true, flag_gpu_cache_mb},
    {"--no-cuda-graph", false, flag_no_cuda_graph},
    {"--gpu-data-mb", true, flag_gpu_data_mb}, {"--no-gpu-data", false, flag_no_gpu_data},
    {"--check-gpu-data", false, flag_check_gpu_data},
};

static void print_usage(const TlcRun *run, const char *argv0) {
  const TlcModel *m = run->model;
  printf("usage: %s [options]\n"
         "Trains %s (compiled from %s) and reports its test accuracy.\n\n"
         "  --data DIR      data set directory (default %s)\n"
         "  --epochs N      epochs to train (default %d)\n"
         "  --lr LR         learning rate (default %g); layers with a multiplier get LR times it, and the\n"
         "                  schedule applies as it would to the recipe's\n"
         "  --device D      where to run: cpu, cuda, or auto (default: the GPU when there is one)\n"
         "  --check-gpu     run every step kernel by kernel on the GPU and the CPU, comparing\n"
         "  --no-feature-cache  run the frozen prefix at every step even where its output could be cached\n"
         "  --no-cuda-graph  on a GPU, launch each step kernel by kernel with its batch copied (or built, or\n"
         "                  gathered) just before, instead of replaying it as a CUDA graph with the next\n"
         "                  batch uploaded meanwhile\n"
         "  --profile       time every kernel of every step (a GPU waits for each) and list where the time\n"
         "                  went, all of it in OUT/profile.tsv\n"
         "  --seed N        random seed for initialisation, order and augmentation (default %" PRIu64 ")\n"
         "  --out DIR       metrics.jsonl, last.ckpt and best.ckpt go here (default runs/%s)\n"
         "  --resume CKPT   continue a run from a checkpoint\n"
         "  --limit N       use at most N training, N validation and N test images\n"
         "  --eval FILE     evaluate a checkpoint (or safetensors weights) on the test split and exit\n"
         "  --weights FILE  start from these weights: safetensors or a tlc checkpoint (default %s;\n"
         "                  'none': the seeded initialisation)\n"
         "  --export FILE   write the final parameters and buffers as safetensors (torchvision names)\n"
         "  --logits FILE   write the test split's logits as a float32 .npy [images, classes]\n"
         "  --predict IMAGE...  with --eval FILE or --weights FILE: the top classes of each JPEG or\n"
         "                  PNG file, one line each, instead of training and testing\n"
         "  --predict-grid FILE.png  with --predict: also the images with their predicted class and\n"
         "                  probability, and their true class when their folder is named after one\n"
         "  --threads N     CPU threads (default: one per core)\n"
         "  --loader-threads N  threads decoding and augmenting images (default: as --threads)\n"
         "  --cache-mb N    keep decoded image files in memory up to N MB (default %lld; 0: never)\n"
         "  --gpu-cache-mb N  device memory for the feature cache on a GPU (default: what the GPU has free,\n"
         "                  less %d MB; 0: none)\n"
         "  --gpu-data-mb N  device memory for the decoded images, so that batches are built on the GPU\n"
         "                  (default: what the GPU has free after the feature cache, less %d MB; 0: none)\n"
         "  --no-gpu-data   build every batch on the CPU's loader threads and copy it to the GPU\n"
         "  --check-gpu-data  build every batch on both the GPU and the CPU, and stop at the first that differs\n"
         "  --help          show this message\n\n"
         "The last line printed starts with \"result:\" and is meant for scripts. Ctrl-C or SIGTERM stops\n"
         "training after the step under way: last.ckpt is saved, the command that resumes it printed,\n"
         "and the exit status is 130 or 143.\n",
         argv0, m->name, m->source ? m->source : "?", m->data_dir, m->epochs, m->schedule.lr, m->seed_default, m->name,
         m->weights ? m->weights : "none", (long long)TRAINER_CACHE_MB, TRAINER_GPU_RESERVE_MB,
         TRAINER_GPU_RESERVE_MB);
}

static const Flag *find_flag(const char *arg, size_t len) {
  for (size_t i = 0; i < sizeof FLAGS / sizeof *FLAGS; i++)
    if (strlen(FLAGS[i].name) == len && strncmp(FLAGS[i].name, arg, len) == 0)
      return &FLAGS[i];
  return NULL;
}

static bool is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

// One flag at argv[*i], with its value from "=VALUE" or the next argument.
static int parse_one(TlcRun *run, int argc, char **argv, int *i, TlcError *err) {
  const char *arg = argv[*i], *eq = strchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
  const Flag *f = strncmp(arg, "--", 2) == 0 ? find_flag(arg, len) : NULL;
  if (!f) {
    tlc_fail(err, arg[0] == '-' ? "unknown flag '%.*s' (see --help)" : "unexpected argument '%.*s' (see --help)",
             (int)len, arg);
    return TRAINER_USAGE;
  }
  const char *value = eq ? eq + 1 : NULL;
  if (f->takes_value && !value) {
    if (*i + 1 >= argc) {
      tlc_fail(err, "%s needs a value (see --help)", f->name);
      return TRAINER_USAGE;
    }
    value = argv[++*i];
  }
  if (!f->takes_value && value) {
    tlc_fail(err, "%s takes no value", f->name);
    return TRAINER_USAGE;
  }
  int rc = f->apply(run, f->name, value, err);
  while (rc == TRAINER_OK && f->takes_list && *i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
    rc = f->apply(run, f->name, argv[++*i], err);
  return rc;
}

// --predict needs trained weights and does nothing else.
static int check_predict(const TlcRun *run, TlcError *err) {
  if (!run->npredict && run->predict_grid) {
    tlc_fail(err, "--predict-grid draws the images of --predict IMAGE..., and there are none");
    return TRAINER_USAGE;
  }
  if (!run->npredict)
    return TRAINER_OK;
  if (!run->eval_checkpoint && !run->weights)
    tlc_fail(err, "--predict needs trained weights: pass --eval CKPT (a checkpoint or safetensors file) or "
             "--weights FILE");
  else if (run->resume)
    tlc_fail(err, "--predict and --resume cannot be combined: --predict does not train");
  else if (run->weights && strcmp(run->weights, "none") == 0)
    tlc_fail(err, "--predict with --weights none would predict with untrained weights");
  else
    return TRAINER_OK;
  return TRAINER_USAGE;
}

int trainer_parse_flags(TlcRun *run, int argc, char **argv, bool *help, TlcError *err) {
  *help = false;
  // --help wins over everything else on the line, so a user can always get the usage.
  for (int i = 1; i < argc; i++) {
    if (is_help(argv[i])) {
      print_usage(run, argc > 0 ? argv[0] : "train");
      *help = true;
      return TRAINER_OK;
    }
  }
  for (int i = 1; i < argc; i++) {
    int rc = parse_one(run, argc, argv, &i, err);
    if (rc != TRAINER_OK)
      return rc;
  }
  if (run->eval_checkpoint && run->resume) {
    tlc_fail(err, "--eval and --resume cannot be combined: --eval only evaluates a checkpoint");
    return TRAINER_USAGE;
  }
  // A checkpoint to resume or evaluate holds the weights already; a default from the
  // experiment gives way to it silently, an explicit --weights is a mistake.
  if (run->weights && (run->eval_checkpoint || run->resume)) {
    tlc_fail(err, "--weights and %s cannot be combined: the checkpoint holds the weights (--eval takes a "
             "safetensors file too)", run->resume ? "--resume" : "--eval");
    return TRAINER_USAGE;
  }
  return check_predict(run, err);
}
