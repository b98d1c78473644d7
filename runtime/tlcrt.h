// tlcrt.h: libtlcrt, the runtime every generated trainer links against. It holds what
// is the same for every experiment: command-line flags, data sets, checkpoints, metrics,
// the CPU thread pool and the random number generator. Nothing here interprets a graph.
//
// Errors: functions return 0 on success and nonzero on failure, with a message in the
// caller's TlcError (TVM's C runtime style). Only the generated main() exits.
#ifndef TLCRT_H
#define TLCRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#ifdef __cplusplus
}
#endif
#endif
