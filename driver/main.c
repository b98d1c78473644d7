// main.c: the tlc command line. Everything is computed before anything is written, and
// an output file is written under a temporary name and renamed, so an error never
// leaves a partial file behind.
#define _GNU_SOURCE   // sched_getaffinity: the cores -j defaults to
#include "tlc.h"
#include "host_c.h"
#include "driver.h"
#include "tlcrt.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TLC_GRAPHS_DIR
#define TLC_GRAPHS_DIR "graphs"
#endif
#define TLC_VERSION "0.1.0"

static const char usage[] =
    "usage: tlc FILE.graph -o TRAINER [options]   build TRAINER, a standalone executable that trains\n"
    "                                             the model with the file's recipe (TRAINER --help)\n"
    "       tlc FILE.graph --emit=STAGE [-o FILE] print one stage of the compilation\n"
    "       tlc FILE.graph --stats                parameters, multiply-accumulates, memory\n"
    "       tlc inspect TRAINER [KERNEL] [--ptx]  the GPU kernels inside a trainer\n"
    "       tlc report RUN_DIR... [-o DIR] [--confusion RUN_DIR] [--force]\n"
    "                                             the comparison table, training curves and a\n"
    "                                             confusion matrix of trainers' --out directories\n"
    "options:\n"
    "  -o PATH          the trainer to build; with --emit, the file to print the stage to\n"
    "  --emit=STAGE     ir        the elaborated graph, with every layer's shape\n"
    "                   train-ir  the training step: forward, loss, backward, optimizer, one\n"
    "                             node per op\n"
    "                   fused-ir  the same after fusion and scheduling: one node per kernel\n"
    "                   kir       the kernels, in the kernel IR\n"
    "                   llvm      the CPU kernels' LLVM IR, after optimisation\n"
    "                   cuda      the GPU kernels' CUDA C\n"
    "                   ptx       the GPU kernels' PTX (from NVRTC)\n"
    "                   c         the trainer's C training loop\n"
    "                   params    parameter names (PyTorch's state_dict keys) and shapes\n"
    "  --stats          print parameters, multiply-accumulates and activation memory (the CPU's\n"
    "                   arena in fp32, the GPU's with bf16 activations)\n"
    "  --stats=kernels  every GPU launch, in the order they run, with the least bytes it\n"
    "                   must move and its FLOPs, tab-separated (bench/roofline.py's floor)\n"
    "  --set NAME=VALUE override an experiment setting (repeatable): --set epochs=3,\n"
    "                   --set optimizer.lr=0.1, --set 'model=resnet18(classes = 2)'\n"
    "  --arch=sm_NN     the GPU architecture of the CUDA kernels (default sm_90); PTX is\n"
    "                   embedded too, for newer GPUs\n"
    "  --cpu=NAME       the CPU the CPU kernels are compiled for: native (default: this\n"
    "                   machine's), or an LLVM CPU name such as x86-64-v3 for trainers\n"
    "                   that run elsewhere\n"
    "  -j N, --jobs=N   compile the CPU kernels on N threads (default: the cores this\n"
    "                   process may use); the trainer is the same for any N\n"
    "  -I DIR           also look for imports in DIR (graphs/ is always searched)\n"
    "  --version, --help\n"
    "docs: README.md, docs/language.md (the .graph language), runtime/README.md (trainers)\n";

typedef struct Options {
  const char *input, *output, *emit;
  const char *arch;     // the GPU architecture the CUDA kernels are compiled for
  const char *cpu;      // the LLVM CPU the CPU kernels are compiled for
  int jobs;             // threads for the CPU kernels' compilation
  bool stats;
  bool stats_kernels;   // --stats=kernels: the GPU launches' minimum bytes and FLOPs
  Override overrides[256];
  int noverrides;
  const char *include[64];
  int ninclude;
} Options;

static const char *const stages[] = {"ir", "train-ir", "fused-ir", "kir", "llvm", "cuda", "ptx", "c", "params"};

// A rejected command line's message, which ends the process (held by a global, so that the
// leak checker of the sanitized build sees it reachable).
static Arena *message_arena(void) {
  static Arena *messages;
  return messages ? messages : (messages = arena_new());
}

static void check_stage(const char *emit) {
  for (size_t i = 0; i < sizeof stages / sizeof *stages; i++)
    if (!strcmp(emit, stages[i]))
      return;
  Arena *a = message_arena();
  Nearest n = {.name = emit};
  const char *known = "";
  for (size_t i = 0; i < sizeof stages / sizeof *stages; i++) {
    nearest_offer(&n, stages[i]);
    known = arena_printf(a, "%s%s%s", known, i ? ", " : "", stages[i]);
  }
  fatal("unknown stage '--emit=%s'%s", emit, nearest_hint_and(a, &n, arena_printf(a, "known: %s", known)));
}

static const char *option_hint(const char *arg) {
  static const char *const options[] = {"--emit", "--stats", "--set", "--cpu", "--arch", "--jobs", "--help", "--version"};
  Arena *a = message_arena();
  const char *setting = arena_strndup(a, arg + strspn(arg, "-"), strcspn(arg + strspn(arg, "-"), "="));
  if (recipe_is_setting(setting))
    return arena_printf(a, " ('%s' is a setting of the experiment: --set %s=VALUE)", setting, setting);
  Nearest n = {.name = arg};
  for (size_t i = 0; i < sizeof options / sizeof *options; i++)
    nearest_offer(&n, options[i]);
  return nearest_hint(a, &n);
}

static void parse_set(Options *o, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    fatal("--set takes NAME=VALUE, found '%s'", arg);
  if (o->noverrides == (int)(sizeof o->overrides / sizeof *o->overrides))
    fatal("too many --set options");
  o->overrides[o->noverrides++] = (Override){strndup(arg, (size_t)(eq - arg)), eq + 1};
}

static const char *option_value(int argc, char **argv, int *i, const char *flag) {
  size_t n = strlen(flag);
  if (!strncmp(argv[*i], flag, n) && argv[*i][n] == '=')
    return argv[*i] + n + 1;
  if (*i + 1 >= argc)
    fatal("%s needs a value", flag);
  return argv[++*i];
}

static int parse_jobs(const char *value) {
  char *end;
  long n = strtol(value, &end, 10);
  if (!*value || *end || n < 1 || n > 1024)
    fatal("-j (--jobs) takes a number of threads from 1 to 1024, found '%s'", value);
  return (int)n;
}

// The cores this process may run on (a container's or taskset's limit, not the machine's).
static int default_jobs(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static Options parse_options(int argc, char **argv) {
  Options o = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage, stdout);
      exit(0);
    } else if (!strcmp(a, "--version")) {
      puts("tlc " TLC_VERSION);
      exit(0);
    } else if (!strcmp(a, "--stats")) {
      o.stats = true;
    } else if (!strcmp(a, "--stats=kernels")) {
      o.stats_kernels = true;
    } else if (!strncmp(a, "--emit", 6) && (a[6] == 0 || a[6] == '=')) {
      o.emit = option_value(argc, argv, &i, "--emit");
    } else if (!strncmp(a, "--set", 5) && (a[5] == 0 || a[5] == '=')) {
      parse_set(&o, option_value(argc, argv, &i, "--set"));
    } else if (!strncmp(a, "--cpu", 5) && (a[5] == 0 || a[5] == '=')) {
      o.cpu = option_value(argc, argv, &i, "--cpu");
    } else if (!strncmp(a, "--arch", 6) && (a[6] == 0 || a[6] == '=')) {
      o.arch = option_value(argc, argv, &i, "--arch");
    } else if (!strncmp(a, "-j", 2)) {
      o.jobs = parse_jobs(a[2] ? a + 2 : option_value(argc, argv, &i, "-j"));
    } else if (!strncmp(a, "--jobs", 6) && (a[6] == 0 || a[6] == '=')) {
      o.jobs = parse_jobs(option_value(argc, argv, &i, "--jobs"));
    } else if (!strcmp(a, "-o")) {
      o.output = option_value(argc, argv, &i, "-o");
    } else if (!strncmp(a, "-I", 2)) {
      if (o.ninclude == 63)
        fatal("too many -I options");
      o.include[o.ninclude++] = a[2] ? a + 2 : option_value(argc, argv, &i, "-I");
    } else if (a[0] == '-' && a[1]) {
      fatal("unknown option '%s'%s (try --help)", a, option_hint(a));
    } else if (o.input) {
      fatal("more than one input file ('%s' and '%s')", o.input, a);
    } else {
      o.input = a;
    }
  }
  if (!o.input)
    fatal("no input file\n%s", usage);
  if (o.emit)
    check_stage(o.emit);
  if (!o.arch)
    o.arch = "sm_90";
  if (!o.cpu)
    o.cpu = "native";
  if (!o.jobs)
    o.jobs = default_jobs();
  const char *digits = o.arch + 3;
  if (strncmp(o.arch, "sm_", 3) || !*digits || strspn(digits, "0123456789") != strlen(digits) || atoi(digits) < 50)
    fatal("--arch takes a GPU architecture such as sm_90 or sm_80, found '%s'", o.arch);
  if (o.stats_kernels && (o.stats || o.emit))
    fatal("--stats=kernels prints a table of its own: give it without --stats or --emit");
  if (!o.emit && !o.stats && !o.stats_kernels && !o.output)
    fatal("nothing to do: give -o TRAINER to build a trainer, --emit=STAGE or --stats (try --help)");
  o.include[o.ninclude++] = TLC_GRAPHS_DIR;
  return o;
}

static void write_output(const char *path, const char *data, size_t len) {
  if (!path) {
    fwrite(data, 1, len, stdout);
    return;
  }
  char *tmp = malloc(strlen(path) + 16);
  sprintf(tmp, "%s.tmp%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f)
    fatal("cannot write '%s': %s", path, strerror(errno));
  bool ok = fwrite(data, 1, len, f) == len;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path) != 0) {
    int err = errno;
    remove(tmp);
    fatal("cannot write '%s': %s", path, strerror(err));
  }
  free(tmp);
}

// The kernels of both steps, training then evaluation, in launch order.
static Kernel **all_kernels(Arena *a, const TrainerSpec *t, Kernel **train, Kernel **eval, int *n) {
  // Room for the gather, the data path, the first passes and the runs of updates.
  Kernel **all = arena_alloc(a, sizeof(Kernel *) * (size_t)(3 * (t->train->n + t->eval->n) + 6));
  *n = 0;
  for (int i = 0; i < t->train->n; i++)
    if (train[i])
      all[(*n)++] = train[i];
  for (int i = 0; i < t->eval->n; i++)
    if (eval[i])
      all[(*n)++] = eval[i];
  return all;
}

// Each run of consecutive optimizer updates in the training step is one launch on the GPU
// (kernel_optim_group), numbered after every other; the step launches it where the first of
// them would run. The nodes' own kernels stay in the bundle, unlaunched. Its operands are at
// the GPU plan's offsets (a parameter gradient's differs from the CPU's, where activations
// are bf16), all fp32 as the one launch reads them; an update with a bf16 operand (none
// today: storage.c keeps parameter gradients fp32) keeps its own launch.
// A launch takes at most MAX_GROUP updates: NVRTC's time grows faster than a function's size.
enum { MAX_GROUP = 64 };

static bool groupable(const Node *n, const Kernel *own) {
  if (!kernel_is_update(n))
    return false;
  for (int b = 0; b < kir_nparams(own); b++)
    if (own->bufs[b].type == KT_BF16)
      return false;
  return true;
}

static void group_updates(Arena *a, const TrainerSpec *t, Kernel **kernels, int *n) {
  const Graph *g = t->train;
  Node **run = arena_alloc(a, sizeof(Node *) * (size_t)(g->n + 1));
  int len = 0;
  for (int i = 0; i <= g->n; i++) {
    if (i < g->n && !t->train_gpu[i])
      continue;
    if (i < g->n && groupable(g->nodes[i], t->train_gpu[i])) {
      run[len++] = g->nodes[i];
      if (len < MAX_GROUP)
        continue;
    }
    if (len >= 2) {
      const char *name = arena_printf(a, "k%d_%s_group", run[0]->id, op_info[run[0]->op].name);
      for (int m = 0; m < len; m++) {
        Kernel *own = t->train_gpu[run[m]->id];
        own->merged = true;
        own->merged_first = m == 0;
        own->merged_launch = *n;
      }
      kernels[(*n)++] = kernel_optim_group(a, run, len, t->gpu_plan->train_offset, name);
    }
    len = 0;
  }
}

// TLC_TILE=BMxBN forces one block tile on every tensor-core product: bench/tile_sweep.sh
// builds a trainer per shape with it, to time each (codegen/tile_table.def keeps the fastest).
static TileShape forced_tile(void) {
  const char *v = getenv("TLC_TILE");
  TileShape s = {0, 0};
  char extra;
  if (!v || !*v)
    return s;
  if (sscanf(v, "%dx%d%c", &s.bm, &s.bn, &extra) != 2 || !kernel_tile_valid(s))
    fatal("TLC_TILE=%s: expected BMxBN, a tile of " TILE_SHAPES, v);
  return s;
}

// Tensor-core tiles, and with them bf16 activations (compiler/storage.c), need sm_80 or newer
// and precision "bf16".
static bool gpu_bf16(const char *arch, const Recipe *r) { return atoi(arch + 3) >= 80 && r->precision == PRECISION_BF16; }

// Everything a trainer is made of: both steps, their memory plan and their kernels for each
// device. Tensor-core tiles need sm_80 or newer, and a recipe that allows bf16.
static TrainerSpec trainer_spec(Arena *a, const char *source, const Graph *model, const Recipe *r, const char *arch,
                                const char *cpu_name) {
  TrainerSpec t = {.source = source, .model = model, .recipe = r};
  t.train = train_build(a, model, r, true);
  t.eval = train_build(a, model, r, false);
  KernelTarget cpu = {.lanes = kir_llvm_lanes(cpu_name)}, gpu = {.gpu = true, .tiles = gpu_bf16(arch, r),
                                                              .tile = forced_tile()};
  gpu.bf16_activations = gpu.tiles;
  t.plan = plan_memory(a, t.train, t.eval, false);
  t.gpu_plan = plan_memory(a, t.train, t.eval, gpu.bf16_activations);
  t.train_cpu = kernels_by_node(a, t.train, "", &cpu);
  t.eval_cpu = kernels_by_node(a, t.eval, "eval_", &cpu);
  t.train_gpu = kernels_by_node(a, t.train, "", &gpu);
  t.eval_gpu = kernels_by_node(a, t.eval, "eval_", &gpu);
  int n;
  Kernel **kernels = all_kernels(a, &t, t.train_cpu, t.eval_cpu, &n);
  t.cpu_table = kir_table(a, kernels, n);
  t.feature_node = feature_boundary(a, t.train, r);
  kernels = all_kernels(a, &t, t.train_gpu, t.eval_gpu, &n);
  // A feature cache on the GPU fills the step's starting tensor with one gather: the last
  // launch of the bundle, after both steps, so that their launch numbers stay the CPU's.
  t.feature_gather = -1;
  if (t.feature_node >= 0) {
    t.feature_gather = n;
    kernels[n++] = kernel_feature_gather(a, t.train->nodes[t.feature_node], t.train->batch);
  }
  // The data path on the GPU builds the step's images (both steps take the same shape), for
  // models that take images: gray or RGB.
  Shape in = t.train->images->shape;
  t.augment = -1;
  if (in.c == 1 || in.c == 3) {
    t.augment = n;
    kernels[n++] = kernel_augment(a, in.n, in.c, in.h, in.w, false);
    kernels[n++] = kernel_augment(a, in.n, in.c, in.h, in.w, true);
    kernels[n++] = kernel_jitter_means(a, in.n, in.c, in.h, in.w);
    kernels[n++] = kernel_jitter(a, in.n, in.c, in.h, in.w);
  }
  // Two-pass reductions' first passes come last, so that the steps' launch numbers stay the
  // CPU's; the steps launch each just before its second pass.
  t.pass1 = n;
  for (int i = 0, steps = n; i < steps; i++)
    if (kernels[i]->pass1) {
      kernels[i]->pass1_launch = n;
      kernels[n++] = kernels[i]->pass1;
    }
  group_updates(a, &t, kernels, &n);
  t.program = cuda_program(a, kernels, n);
  return t;
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
    fatal("cannot write '%s': %s", path, strerror(errno));
}

// Runs argv (no shell: paths are passed as they are) and returns its exit status.
static int run_program(const char *argv[]) {
  pid_t pid;
  extern char **environ;
  // posix_spawnp's argv is not const for C's sake; it does not write to it.
  if (posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0)
    fatal("cannot run the C compiler '%s': %s", argv[0], strerror(errno));
  int status;
  if (waitpid(pid, &status, 0) < 0)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Starts NVRTC on the GPU kernels, on a thread of its own while LLVM compiles the CPU ones.
// Without NVRTC on this machine the trainer is built for the CPU only, and tlc says so (NULL).
static CudaCompile *start_bundle(Arena *a, const TrainerSpec *t, const char *arch) {
  if (!nvrtc_version(a)) {
    const char *why = NULL;
    CudaCode none;
    nvrtc_compile(a, "", "probe", arch, &none, &why);
    fprintf(stderr, "tlc: note: the trainer will run on the CPU only: %s\n", why);
    return NULL;
  }
  return cuda_program_compile_start(t->program, arch);
}

// The GPU kernels compiled by NVRTC, as the bundle file the trainer embeds (in dir).
static void finish_bundle(Arena *a, TrainerSpec *t, CudaCompile *compile, const char *arch, const char *dir) {
  if (!compile)
    return;
  const CudaProgram *p = t->program;
  const KernelTable *table = p->table;
  CudaCode code;
  bool cached;
  const char *error = NULL;
  if (cuda_program_compile_finish(compile, a, &code, &cached, &error))
    fatal("%s", error);
  TlcBundleFunction *functions = arena_alloc(a, sizeof *functions * (size_t)(table->nfunctions + 1));
  for (int f = 0; f < table->nfunctions; f++)
    functions[f] = (TlcBundleFunction){table->functions[f]->name, p->function_source[f]};
  TlcBundleLaunch *launches = arena_alloc(a, sizeof *launches * (size_t)(table->nkernels + 1));
  for (int i = 0; i < table->nkernels; i++) {
    const Kernel *k = table->kernels[i];
    launches[i] = (TlcBundleLaunch){k->name, k->comment, (uint32_t)table->function_of[i], k->launch.grid,
                                    k->launch.block, k->launch.shared};
  }
  TlcBundle b = {.arch = arch, .nvrtc = nvrtc_version(a), .prelude = p->prelude, .block = KIR_LOOP_BLOCK,
                 .functions = functions, .nfunctions = table->nfunctions, .launches = launches, .nlaunches = table->nkernels,
                 .ptx = code.ptx, .ptx_size = code.ptx_size, .cubin = (const uint8_t *)code.cubin,
                 .cubin_size = code.cubin_size};
  uint8_t *data = NULL;
  size_t size = 0;
  TlcError err;
  if (tlc_bundle_build(&b, &data, &size, &err))
    fatal("%s", err.msg);
  t->bundle_path = arena_printf(a, "%s/kernels.bundle", dir);
  write_file(t->bundle_path, (const char *)data, size);
  free(data);
  t->bundle_size = size;
}

// The C compiler's command line for the trainer: the loop, the kernels' objects, libtlcrt.
// The runtime's libraries are linked statically, a trainer needs only the C library on the
// machine it is copied to: image decoders (libjpeg-turbo, libpng), matio with the HDF5 it
// reads MAT v7.3 through (and HDF5's szip and libaec filters), zlib, the C++ runtime
// (checkpoints), jansson (safetensors headers).
static const char **link_command(Arena *a, const char *src, const KirObjects *objects, const char *out) {
  static const char *const head[] = {"cc", "-O2", "-std=gnu17", "-I" TLC_RUNTIME_INCLUDE};
  static const char *const libs[] = {TLC_RUNTIME_LIBRARY, "-Wl,-Bstatic", "-lmatio", "-lhdf5_serial", "-lsz", "-laec",
                                     "-lpng16", "-ljpeg", "-lz", "-ljansson", "-lstdc++", "-Wl,-Bdynamic",
                                     "-static-libgcc", "-lpthread", "-lm", "-ldl", "-o"};
  size_t nhead = sizeof head / sizeof *head, nlibs = sizeof libs / sizeof *libs;
  const char **argv = arena_alloc(a, sizeof *argv * (nhead + nlibs + (size_t)objects->n + 3));
  size_t n = 0;
  for (size_t i = 0; i < nhead; i++)
    argv[n++] = head[i];
  argv[n++] = src;
  for (int i = 0; i < objects->n; i++)
    argv[n++] = objects->paths[i];
  for (size_t i = 0; i < nlibs; i++)
    argv[n++] = libs[i];
  argv[n++] = out;
  argv[n] = NULL;
  return argv;
}

// Compiles the kernels through LLVM (while NVRTC compiles the GPU ones) and the generated loop
// with the system C compiler, links them with libtlcrt into path (written under a temporary
// name, then renamed).
static void build_trainer(Arena *a, TrainerSpec *t, const char *path, const char *arch, const char *cpu, int jobs) {
  char dir[] = "/tmp/tlc-build-XXXXXX";
  if (!mkdtemp(dir))
    fatal("cannot create a temporary directory: %s", strerror(errno));
  const char *src = arena_printf(a, "%s/trainer.c", dir);
  CudaCompile *gpu = start_bundle(a, t, arch);
  const char *error = NULL;
  KirObjects objects;
  if (kir_llvm_objects(t->cpu_table->functions, t->cpu_table->nfunctions, cpu, jobs, dir, &objects, a, &error))
    fatal("%s", error);
  finish_bundle(a, t, gpu, arch, dir);
  char *text = NULL;
  size_t len = 0;
  FILE *buf = open_memstream(&text, &len);
  host_c_emit(buf, t);
  fclose(buf);
  write_file(src, text, len);
  free(text);
  const char *tmp = arena_printf(a, "%s.tmp%d", path, (int)getpid());
  if (run_program(link_command(a, src, &objects, tmp)) != 0) {
    remove(tmp);
    fatal("internal error: the C compiler failed on the generated trainer (kept in %s)", dir);
  }
  if (rename(tmp, path) != 0) {
    int err = errno;
    remove(tmp);
    fatal("cannot write '%s': %s", path, strerror(err));
  }
  for (int i = 0; i < objects.n; i++)
    remove(objects.paths[i]);
  remove(src);
  if (t->bundle_path)
    remove(t->bundle_path);
  rmdir(dir);
}

// The kernel IR of every node: the CPU's kernel, then the GPU's where it is laid out otherwise;
// then the GPU's own kernels (the feature-cache gather, the data path's augment).
static void emit_kir(FILE *out, const TrainerSpec *t) {
  const KernelTable *cpu = t->cpu_table, *gpu = t->program->table;
  for (int i = 0; i < cpu->nkernels; i++) {
    kir_print(out, cpu->kernels[i]);
    fputc('\n', out);
    if (!kir_same(cpu->kernels[i], gpu->kernels[i])) {
      fputs("// on the GPU:\n", out);
      kir_print(out, gpu->kernels[i]);
      fputc('\n', out);
    }
  }
  for (int i = cpu->nkernels; i < gpu->nkernels; i++) {
    fputs("// on the GPU only:\n", out);
    kir_print(out, gpu->kernels[i]);
    fputc('\n', out);
  }
}

// The trainer's kernels (training step, then evaluation pass), as kernel IR or as
// optimised LLVM IR.
static void emit_kernels(FILE *out, Arena *a, const TrainerSpec *t, const char *stage, const char *arch,
                         const char *cpu) {
  if (!strcmp(stage, "cuda") || !strcmp(stage, "ptx")) {
    const CudaProgram *p = t->program;
    if (!strcmp(stage, "cuda")) {
      fwrite(p->source, 1, p->source_size, out);
      return;
    }
    CudaCode code;
    bool cached;
    const char *error = NULL;
    if (cuda_program_compile(a, p, arch, &code, &cached, &error))
      fatal("%s", error);
    if (code.log)
      fprintf(stderr, "tlc: warning: NVRTC said about the generated kernels:\n%s\n", code.log);
    // NVRTC's size counts the text's terminating NUL, which is no part of a .ptx file (ptxas
    // stops at it with "Unexpected EOF").
    size_t text = code.ptx_size && !code.ptx[code.ptx_size - 1] ? code.ptx_size - 1 : code.ptx_size;
    fwrite(code.ptx, 1, text, out);
    return;
  }
  if (!strcmp(stage, "kir")) {
    emit_kir(out, t);
    return;
  }
  char path[] = "/tmp/tlc-llvm-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    fatal("cannot create a temporary file: %s", strerror(errno));
  close(fd);
  const char *error = NULL;
  if (kir_llvm_emit(t->cpu_table->functions, t->cpu_table->nfunctions, cpu, NULL, path, a, &error)) {
    remove(path);
    fatal("%s", error);
  }
  FILE *f = fopen(path, "r");
  char chunk[65536];
  size_t got;
  while (f && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
    fwrite(chunk, 1, got, out);
  if (f)
    fclose(f);
  remove(path);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "inspect"))
    return inspect_main(argc - 2, argv + 2);
  if (argc > 1 && !strcmp(argv[1], "report"))
    return report_main(argc - 2, argv + 2);
  Options o = parse_options(argc, argv);
  Arena *a = arena_new();
  Module *m = load_module(a, o.input, o.include, o.ninclude);
  Recipe *r = recipe_load(a, m, o.overrides, o.noverrides);
  Graph *g = elaborate(a, m, r->model, r->batch);
  recipe_bind(a, r, g);

  char *text = NULL;
  size_t len = 0;
  FILE *buf = open_memstream(&text, &len);
  if (!buf)
    fatal("out of memory");
  if (o.emit && !strcmp(o.emit, "ir")) {
    recipe_print(buf, a, r);
    print_ir(buf, a, g);
  } else if (o.emit && !strcmp(o.emit, "train-ir")) {
    print_ir(buf, a, step_build(a, g, r, true));
  } else if (o.emit && !strcmp(o.emit, "fused-ir")) {
    print_ir(buf, a, train_build(a, g, r, true));
  } else if (o.emit && (!strcmp(o.emit, "kir") || !strcmp(o.emit, "llvm") || !strcmp(o.emit, "cuda") ||
                        !strcmp(o.emit, "ptx"))) {
    TrainerSpec t = trainer_spec(a, o.input, g, r, o.arch, o.cpu);
    emit_kernels(buf, a, &t, o.emit, o.arch, o.cpu);
  } else if (o.emit && !strcmp(o.emit, "c")) {
    TrainerSpec t = trainer_spec(a, o.input, g, r, o.arch, o.cpu);
    host_c_emit(buf, &t);
  } else if (o.emit) {
    print_params(buf, g);
  }
  if (o.stats_kernels) {
    TrainerSpec t = trainer_spec(a, o.input, g, r, o.arch, o.cpu);
    print_kernel_stats(buf, &t);
  }
  if (o.stats) {
    Graph *train = train_build(a, g, r, true), *eval = train_build(a, g, r, false);
    print_stats(buf, g, plan_memory(a, train, eval, false), plan_memory(a, train, eval, gpu_bf16(o.arch, r)));
    int boundary = feature_boundary(a, train, r);
    if (boundary >= 0)
      fprintf(buf, "feature cache      the frozen prefix up to %s '%s' runs once per training image (%lld floats each)\n",
              op_info[train->nodes[boundary]->op].name, train->nodes[boundary]->name,
              (long long)(shape_elems(train->nodes[boundary]->shape) / train->batch));
    else
      fputs("feature cache      none (a random transform, a trainable layer or dropout at the input side)\n", buf);
    print_conv_stats(buf, a, train);
  }
  fclose(buf);
  if (!o.emit && !o.stats && !o.stats_kernels) {   // tlc FILE -o TRAINER
    TrainerSpec t = trainer_spec(a, o.input, g, r, o.arch, o.cpu);
    build_trainer(a, &t, o.output, o.arch, o.cpu, o.jobs);
    free(text);
    arena_free(a);
    return 0;
  }
  write_output(o.output, text, len);
  free(text);
  arena_free(a);
  return 0;
}
