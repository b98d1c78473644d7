// tlcrt.h: libtlcrt, the runtime every generated trainer links against. It holds what
// is the same for every experiment: command-line flags, data sets, checkpoints, weights in
// and out (safetensors, .npy), metrics, the CPU thread pool and the random number generator. Nothing here interprets a graph.
//
// Errors: functions return 0 on success and nonzero on failure, with a message in the
// caller's TlcError (TVM's C runtime style). Only the generated main() exits.
#ifndef TLCRT_H
#define TLCRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct TlcError {
  char msg[1024];       // "what failed and where", ready to print after "error: "
} TlcError;

// Formats a message into err and returns -1, so callers can write `return tlc_fail(...)`.
int tlc_fail(TlcError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

//
// rng.c: a small deterministic generator (same seed, same stream, on every machine)
//
typedef struct TlcRng {
  uint64_t s[2];
} TlcRng;

void tlc_rng_seed(TlcRng *r, uint64_t seed);
uint64_t tlc_rng_next(TlcRng *r);
float tlc_rng_uniform(TlcRng *r);         // [0, 1)
float tlc_rng_normal(TlcRng *r);          // mean 0, variance 1
void tlc_rng_shuffle(TlcRng *r, int32_t *items, int64_t n);
uint64_t tlc_rng_below(TlcRng *r, uint64_t bound);  // [0, bound), unbiased; 0 if bound is 0

//
// data_idx.c: IDX files (MNIST, Fashion-MNIST), gzip-compressed or not
//
typedef struct TlcDataset {
  int64_t count;        // images
  int32_t channels, height, width;
  uint8_t *pixels;      // count * channels * height * width, row-major, 0..255
  int32_t *labels;      // count
  int32_t classes;      // 1 + the largest label
} TlcDataset;

// Loads DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; split is "train" or "test".
int tlc_idx_load(const char *dir, const char *split, TlcDataset *out, TlcError *err);
void tlc_dataset_free(TlcDataset *d);

//
// pool.c: the CPU thread pool that runs kernels
//
// fn(ctx, begin, end) is called on disjoint ranges covering [0, n), on every core.
typedef void (*TlcRangeFn)(void *ctx, int64_t begin, int64_t end);
void tlc_parallel_for(int64_t n, TlcRangeFn fn, void *ctx);
void tlc_pool_init(int threads);          // 0: one per core
void tlc_pool_shutdown(void);

//
// checkpoint.cc: checkpoints as FlatBuffers (schema: runtime/checkpoint.fbs)
//
// A checkpoint holds the training position (epoch, step, rng, best metric) and every named
// tensor of the trainer's state. Saving is atomic: the file is written beside PATH, synced
// and renamed over it, so a crash leaves the old checkpoint or the new one, never a torn one.
typedef struct TlcTensorRef {
  const char *name;     // "layer1.0.conv1.weight", unique within one save/load
  int dims;             // 0..4; 0 is a scalar (one value)
  int64_t shape[4];     // shape[0..dims), outermost first
  float *data;          // the caller's memory, prod(shape) floats; read by save, filled by load
} TlcTensorRef;

typedef struct TlcCheckpointInfo {
  const char *graph;    // model name ("resnet18"), informative only
  uint64_t graph_hash;  // tlc_checkpoint_graph_hash of the trainer's tensors
  int32_t epoch;        // epochs completed
  int64_t step;         // optimizer steps taken
  uint64_t rng[2];      // TlcRng.s
  double best_metric;   // best validation accuracy so far
} TlcCheckpointInfo;

// The fingerprint of a set of tensors: FNV-1a 64 of each name and shape, combined so that
// the order does not matter (load matches tensors by name). Data does not enter it.
uint64_t tlc_checkpoint_graph_hash(const TlcTensorRef *tensors, int n);

// Writes info and tensors[0..n) to path atomically (via "path.tmp.<pid>", fsync, rename).
// On failure the previous file at path, if any, is untouched and no temporary file is left.
int tlc_checkpoint_save(const char *path, const TlcCheckpointInfo *info,
                        const TlcTensorRef *tensors, int n, TlcError *err);

// Reads a checkpoint into the caller's tensors. On entry info_out->graph and ->graph_hash
// describe this trainer: a file whose graph_hash differs is refused. The file must hold
// exactly the n tensors named, with the same shapes (in any order). Every check runs before
// anything is copied, so on failure neither the tensors nor *info_out are modified. On success
// every field of *info_out is replaced by the file's; info_out->graph then points to a
// thread-local copy that stays valid until the next tlc_checkpoint_load on the same thread.
int tlc_checkpoint_load(const char *path, TlcCheckpointInfo *info_out,
                        const TlcTensorRef *tensors, int n, TlcError *err);

// Every tensor of a checkpoint, whatever trainer wrote it (for --weights): names, shapes and
// values in new memory, in the file's order, after the same verification as a load. Names
// are unique and every tensor's values match its shape. Free with tlc_tensor_list_free.
typedef struct TlcTensorList {
  TlcTensorRef *tensors;
  int count;
} TlcTensorList;
int tlc_checkpoint_read_tensors(const char *path, TlcTensorList *out, TlcError *err);
void tlc_tensor_list_free(TlcTensorList *list);

//
// atomic_write.c: files written whole or not at all
//
typedef struct TlcBytes {
  const void *data;
  size_t size;
} TlcBytes;

// Writes parts[0..n) one after another to "path.tmp.<pid>", fsyncs it and renames it over
// path. On failure the previous file at path, if any, is untouched and no temporary is left.
int tlc_write_atomic(const char *path, const TlcBytes *parts, int n, TlcError *err);

//
// safetensors.c: the safetensors weight format (https://github.com/huggingface/safetensors)
//
typedef enum { TLC_DTYPE_F32, TLC_DTYPE_F16, TLC_DTYPE_BF16, TLC_DTYPE_F64, TLC_DTYPE_I64 } TlcDtype;

int tlc_dtype_size(TlcDtype d);           // bytes per element
const char *tlc_dtype_name(TlcDtype d);   // "F32", as the format spells it

typedef struct TlcStTensor {
  char *name;           // "layer1.0.conv1.weight"
  TlcDtype dtype;
  int dims;             // 0..4
  int64_t shape[4];
  int64_t count;        // elements: prod(shape)
  int64_t begin, end;   // byte span in the data area; end - begin == count * dtype size
} TlcStTensor;

typedef struct TlcSafetensors {
  const char *path;     // the caller's string, for messages
  TlcStTensor *tensors; // in the header's order, metadata excluded
  int count;
  uint8_t *file;        // the whole file
  int64_t size;
  const uint8_t *data;  // the data area inside file
  int64_t data_bytes;
} TlcSafetensors;

// Reads and checks the whole file (see safetensors.c for every check). On failure err names
// the file and the tensor or field, and *f holds nothing to close.
int tlc_safetensors_open(const char *path, TlcSafetensors *f, TlcError *err);
void tlc_safetensors_close(TlcSafetensors *f);
const TlcStTensor *tlc_safetensors_find(const TlcSafetensors *f, const char *name);   // NULL if absent
// Copies t into dst: count floats (from F32, F16, BF16, F64) or, with as_int, count int64s
// (from I64 only). A dtype of the other kind is an error naming the tensor.
int tlc_safetensors_read(const TlcSafetensors *f, const TlcStTensor *t, void *dst, bool as_int, TlcError *err);
// Whether the file at path starts as a safetensors file does (judged by content, not name).
bool tlc_safetensors_sniff(const char *path);

typedef struct TlcSafetensorsEntry {
  const char *name;
  int dims;
  int64_t shape[4];
  bool is_int;          // I64; else F32
  const void *data;     // prod(shape) int64_t or float values
} TlcSafetensorsEntry;

int64_t tlc_safetensors_entry_bytes(const TlcSafetensorsEntry *e);
// Writes tensors[0..n) in that order, with metadata ("key", "value", ..., NULL; may be NULL)
// under "__metadata__", atomically (tlc_write_atomic). Names must be unique.
int tlc_safetensors_save(const char *path, const TlcSafetensorsEntry *tensors, int n, const char *const *metadata,
                         TlcError *err);

//
// npy.c: NumPy's .npy format, for arrays scripts read back (--logits)
//
// Writes a float32 C-order array of shape [rows, cols] (format version 1.0), atomically.
int tlc_npy_save_f32(const char *path, const float *data, int64_t rows, int64_t cols, TlcError *err);

//
// trainer.c: what a generated trainer's main() calls around its step functions
//
// The generated C file holds the model (a TlcModel), the straight-line step functions
// and main(), whose loop reads:
//
//   TlcRun run;
//   if (tlc_run_start(&run, &model, argc, argv)) return run.status;
//   for (int epoch = run.first_epoch; epoch < run.epochs; epoch++) {
//     tlc_epoch_begin(&run, epoch);
//     while (tlc_train_batch(&run)) { train_step(run.arena); if (tlc_train_batch_done(&run)) return run.status; }
//     while (tlc_eval_batch(&run, TLC_SPLIT_VAL)) { eval_step(run.arena); tlc_eval_batch_done(&run); }
//     if (tlc_epoch_end(&run, epoch)) return run.status;
//   }
//   while (tlc_eval_batch(&run, TLC_SPLIT_TEST)) { eval_step(run.arena); tlc_eval_batch_done(&run); }
//   return tlc_run_finish(&run);

typedef enum { TLC_INIT_ZERO, TLC_INIT_ONE, TLC_INIT_UNIFORM_FAN_IN } TlcInit;

// One tensor of the trainer's state: a parameter, a buffer or an optimizer state.
typedef struct TlcParamInfo {
  const char *name;     // "features.0.0.weight", "features.0.0.weight.momentum_buffer"
  int dims;
  int64_t shape[4];
  int64_t offset;       // byte offset in the arena
  bool is_int;          // int64 elements (num_batches_tracked); else float
  bool trainable;
  TlcInit init;         // UNIFORM_FAN_IN: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default
  int64_t fan_in;
  bool head;            // a parameter of the layer that produces the logits (--weights may re-initialise it)
  bool optim;           // optimizer state: checkpointed, never imported or exported
} TlcParamInfo;

typedef enum { TLC_AUG_NONE, TLC_AUG_HFLIP, TLC_AUG_RANDOM_CROP } TlcAugKind;
typedef struct TlcAugment {
  TlcAugKind kind;
  float p;              // HFLIP: probability
  int32_t size, pad;    // RANDOM_CROP: output side and zero padding on each side
} TlcAugment;

typedef enum { TLC_SCHED_CONSTANT, TLC_SCHED_STEP, TLC_SCHED_MULTISTEP, TLC_SCHED_COSINE } TlcScheduleKind;
typedef struct TlcSchedule {
  TlcScheduleKind kind;
  int32_t step_size;    // STEP
  int32_t milestones[16], nmilestones;   // MULTISTEP
  double gamma;         // STEP, MULTISTEP
  double eta_min_ratio; // COSINE: eta_min / lr
  int32_t warmup;       // epochs of linear warm-up (0: none)
} TlcSchedule;

// Everything the generated code knows about its experiment.
typedef struct TlcModel {
  const char *name;     // "cnn_bn"
  const char *source;   // the .graph it was compiled from
  int64_t batch;
  int32_t channels, height, width, classes;
  int64_t arena_bytes;
  const TlcParamInfo *params;   // every tensor of the state, checkpointed
  int nparams;
  // Byte offsets in the arena of the step's inputs and outputs (train and eval steps
  // share the input buffers).
  int64_t images, labels, seed, lr;            // float images, int64 labels, int64[2] {seed, step}, float[1]
  int64_t train_loss, train_logits;            // float [batch], float [batch, classes]
  int64_t eval_loss, eval_logits;
  // The recipe.
  int32_t epochs;
  uint64_t seed_default;
  const char *data_format;   // "idx"
  const char *data_dir;      // the default of --data
  int32_t val_count;         // images held out of the training file for validation
  float mean[4], std[4];     // per-channel normalisation of pixels scaled to [0, 1]
  const TlcAugment *augment; // training augmentation, in order
  int naugment;
  TlcSchedule schedule;
  const char *weights;       // the default of --weights (the experiment's `weights`); NULL: none
} TlcModel;

typedef enum { TLC_SPLIT_TRAIN, TLC_SPLIT_VAL, TLC_SPLIT_TEST } TlcSplit;

// The state of one run. Fields the generated loop reads are documented; the rest is the
// runtime's own.
typedef struct TlcRun {
  const TlcModel *model;
  char *arena;          // the model's arena (64-byte aligned)
  int first_epoch, epochs;   // resume starts at first_epoch
  int status;           // the exit status to return when a call reports failure
  // Runtime-private from here on.
  TlcDataset train, test;
  int32_t *order;       // the training images' order this epoch
  int64_t ntrain, nval, cursor;
  TlcSplit eval_split;
  int64_t step;
  TlcRng rng;
  uint64_t seed;
  const char *out_dir, *data_dir, *resume, *eval_checkpoint, *device;
  int64_t limit;
  double epoch_loss, epoch_correct, epoch_seen, eval_loss, eval_correct, eval_seen;
  double best_val, train_seconds, epoch_start;
  float lr_factor;
  FILE *metrics;
  int64_t ntest;        // test images used (--limit)
  int64_t val_first;    // index in `train` of the first validation image
  int64_t eval_cursor;  // next image of the split being evaluated
  int64_t eval_real;    // real (not padding) images in the current evaluation batch
  bool eval_active;     // an evaluation pass over eval_split is under way
  int epoch;            // the epoch under way (0-based)
  int epochs_done;      // epochs completed, counting those before a resume
  int threads;          // --threads; 0: one per core
  double epoch_seconds, images_trained;  // this epoch's training time; images trained this run
  char *out_owned;      // the default --out, built from the model name
  char *last_path, *best_path;  // OUT/last.ckpt, OUT/best.ckpt
  const char *last_good;        // the newest checkpoint known good, for the NaN message
  TlcTensorRef *tensors;        // model->params as checkpoint tensors; int64 ones via float copies
  uint64_t graph_hash;          // tlc_checkpoint_graph_hash(tensors)
  int32_t *batch_labels;        // the labels of the batch in the arena (the step may reuse its input)
  uint8_t *scratch;             // two images of bytes for augmentation
  float norm[4][256];           // (pixel / 255 - mean[c]) / std[c] for every pixel value
  const char *weights;          // --weights; NULL: the model's default
  const char *export_path;      // --export: safetensors written at the end
  const char *logits_path;      // --logits: the test split's logits as .npy
  float *test_logits;           // [ntest, classes] when logits_path is set
} TlcRun;

// Parses the trainer's flags (--data --epochs --device --seed --out --resume --limit
// --eval --threads --weights --export --logits, --help), loads the data, allocates and
// initialises the state, then loads --weights into it (or resumes). Returns nonzero after
// printing "error: ..." (run->status is then the exit status), or after --help (status 0).
// --eval FILE loads FILE (a checkpoint, or weights in safetensors) and returns 0 with
// first_epoch == epochs, so the loop goes straight to the test evaluation and
// tlc_run_finish prints the result line.
// A call that reports failure (tlc_run_start, tlc_train_batch_done, tlc_epoch_end) has
// already released the run: main only returns run->status.
int tlc_run_start(TlcRun *run, const TlcModel *model, int argc, char **argv);
void tlc_epoch_begin(TlcRun *run, int epoch);        // shuffles, sets the learning rate
bool tlc_train_batch(TlcRun *run);                   // fills the next batch; false at the end
int tlc_train_batch_done(TlcRun *run);               // loss, accuracy; nonzero on a NaN loss
bool tlc_eval_batch(TlcRun *run, TlcSplit split);
void tlc_eval_batch_done(TlcRun *run);
int tlc_epoch_end(TlcRun *run, int epoch);           // prints, logs, checkpoints
// Writes --export and --logits, prints "result: ...", frees. Returns 0, or run->status
// after printing "error: ..." when a file could not be written.
int tlc_run_finish(TlcRun *run);

#ifdef __cplusplus
}
#endif
#endif
