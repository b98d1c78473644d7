// trainer_internal.h: what the trainer's files share and nothing else includes.
//
// The trainer (tlcrt.h, section "trainer.c") is cut by job:
//   trainer.c        the run: start, epochs, metrics lines, the result line, cleanup
//   trainer_flags.c  the command line
//   trainer_state.c  the model description's checks, the arena, initialisation, checkpoints
//   trainer_data.c   the data: loading, checks against the model, the report, the loader
//   trainer_batch.c  batches from the loader, loss and accuracy sums
//   trainer_device.c the device the steps run on, and the copies to and from a GPU
//   trainer_features.c  training from cached features of a frozen prefix
//   trainer_weights.c  --weights: safetensors or checkpoint tensors into a fresh state
//   trainer_outputs.c  --export and --logits, written when the run ends
//   trainer_predict.c  --predict: image files as the test split, one line of top classes each
//   trainer_stop.c   Ctrl-C and SIGTERM: last.ckpt saved, the command that resumes printed
//   trainer_profile.c  --profile: every kernel of every step timed, where the time went
//   trainer_eval.c   which evaluation passes run when (validation, test, best weights), their figures
//   trainer_summary.c  OUT/run.json and OUT/confusion.tsv, for tlc report
#ifndef TLC_TRAINER_INTERNAL_H
#define TLC_TRAINER_INTERNAL_H

#include "tlcrt.h"

// Exit statuses of a trainer. 2 is a usage error, as for most command-line tools.
enum { TRAINER_OK = 0, TRAINER_FAILED = 1, TRAINER_USAGE = 2 };

// The default budget of the decoded-image cache: ImageFolder sets of a few thousand
// photographs (hymenoptera, hotdog) fit; Flowers102 at full size (about 7 GB) does not.
enum { TRAINER_CACHE_MB = 2048 };
// Device memory the feature cache leaves free by default (--gpu-cache-mb sets the budget
// outright): the driver takes more at a launch that needs more local memory per thread than
// any before it, and a launch it cannot serve fails.
enum { TRAINER_GPU_RESERVE_MB = 512 };

// trainer_flags.c
// Fills run's options from argv. Returns TRAINER_OK, or the exit status with err filled;
// *help is set when --help printed the usage (then the run ends with status 0).
int trainer_parse_flags(TlcRun *run, int argc, char **argv, bool *help, TlcError *err);

// trainer_state.c
int trainer_check_model(const TlcModel *m, TlcError *err);
int trainer_alloc_state(TlcRun *run, TlcError *err);     // arena, tensor list, fingerprint
void trainer_init_params(TlcRun *run);                   // draws from run->rng, params order
int trainer_load_checkpoint(TlcRun *run, const char *path, TlcError *err);
// best.ckpt's tensors into the state (and onto the GPU), nothing else of the run; *epoch is
// the epoch they are of.
int trainer_load_best(TlcRun *run, int *epoch, TlcError *err);
// in_epoch: the run stops inside run->epoch; the images done and the epoch's sums are saved.
// A failed save says that the previous file is intact.
int trainer_save_checkpoint(TlcRun *run, const char *path, bool in_epoch, TlcError *err);
void trainer_free_state(TlcRun *run);

// trainer_batch.c
int32_t trainer_argmax(const float *logits, int32_t classes);   // the first maximum
int trainer_alloc_batches(TlcRun *run, TlcError *err);   // the training order, evaluation order, labels
void trainer_free_batches(TlcRun *run);
void trainer_begin_training_pass(TlcRun *run);           // the loader starts on this epoch's order
int64_t trainer_split_size(const TlcRun *run, TlcSplit split);
// Whether a pass's batches need the loader: not when the GPU builds them, unless
// --check-gpu-data compares them with the loader's.
bool trainer_uses_loader(const TlcRun *run, bool training);
// run->eval_order for split, in data-set order padded to whole batches with its last image;
// returns its length.
int64_t trainer_eval_order(TlcRun *run, TlcSplit split);
// With CUDA graphs: the batch of ds's samples order[0..batch) at epoch, the step-th training
// step's (for its {seed, step}), into the next slot, which then also holds that epoch's
// learning rate: the loader's images and labels, the labels of a batch from cached features
// (its rows are gathered on the device), or the labels and the choices the GPU builds the
// batch from. False (and run->failed) on a failure.
bool trainer_load_slot(TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training, int epoch,
                       int64_t step, int32_t *labels, int *slot_used);
// A failure of the loader (or of a batch's copy): the pass ends, run->failed; returns false.
bool trainer_loader_failed(TlcRun *run);

// trainer_ahead.c
// While a step runs on the GPU: the pass's next batch, or the first batch of the pass that
// follows, loaded into the other slot and sent up. A failure is reported where the batch
// would have been loaded.
void trainer_load_ahead(TlcRun *run, bool training);
// Whether the batch loaded ahead is ds's samples order[0..batch) of this epoch, training or not.
bool trainer_ahead_is(const TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training);
void trainer_ahead_report(const TlcRun *run);   // how many batches went up ahead, at the end

// trainer_data.c
int trainer_load_data(TlcRun *run, TlcError *err);       // returns a status: the splits, checked and reported
int trainer_start_loader(TlcRun *run, TlcError *err);    // threads, the decoded cache, OUT/samples.png
// Counts of image files converted to the model's channels and over PIL's warning size: once
// at the start when every file was decoded into the cache, else at the end (at_start false).
void trainer_report_files(const TlcRun *run, bool at_start);
void trainer_free_data(TlcRun *run);

// trainer_device.c
int trainer_open_device(TlcRun *run, TlcError *err);     // after the state is loaded
void trainer_report_graphs(const TlcRun *run);           // after the data path and the feature cache
int trainer_state_to_host(TlcRun *run, TlcError *err);   // before the state is saved
int trainer_state_to_device(TlcRun *run, TlcError *err); // after it is loaded, and landed
// The device memory, in MB, that the feature cache or the decoded images may take, and how
// that was found (for the messages): flag_mb (the value of `flag`) when given, else the
// device's free memory less TRAINER_GPU_RESERVE_MB. A negative budget fits nothing.
double trainer_gpu_budget(TlcRun *run, int64_t flag_mb, const char *flag, char *how, size_t len);

// trainer_features.c
// Sets run->use_features: the model has a cache, nothing rules it out, it fits the budget of
// its device (and, on a GPU, is allocated there); prints which, and why not.
void trainer_start_features(TlcRun *run);
// At each training pass of a cached run: the prefix over the training split the first time,
// then (on a GPU) the epoch's order up.
int trainer_begin_cached_pass(TlcRun *run, TlcError *err);
// The batch at cursor from the cache (on a GPU, its gather launched); -1 on a GPU error.
int trainer_cached_batch(TlcRun *run, TlcError *err);
void trainer_cached_labels(const TlcRun *run, const int32_t *order, int32_t *labels);   // of order[0..batch)

// trainer_gpu_data.c
// Decides whether batches are built on the GPU (a GPU, transforms its kernel runs, every
// image decoded in memory, within the device's budget), uploads the images, and prints
// which splits it serves, the bytes it holds, or why not (a device that cannot hold them
// too: the run goes on with the CPU's batches). Nonzero only when host memory runs out.
int trainer_start_gpu_data(TlcRun *run, TlcError *err);
// Whether the training (else evaluation) batches come from the GPU.
bool trainer_gpu_data_serves(const TlcRun *run, bool training);
// Builds the batch of ds's samples order[0..batch) in the device arena under the training
// (else evaluation) transforms, their random choices those of run->epoch, with their labels
// in run->batch_labels. With --check-gpu-data it also compares it with the batch the loader
// wrote into the host arena.
int trainer_gpu_data_batch(TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training, TlcError *err);
// Draws the next batch's table of the pass under way while the GPU runs the step just
// launched (the loader's prefetch, for the GPU's data path); the next call of
// trainer_gpu_data_batch takes it when it is for the same samples.
void trainer_gpu_data_prefetch(TlcRun *run, bool training);
// With CUDA graphs: draws the table of ds's samples order[0..batch) at epoch into the
// extra bytes of gpu_graph.c's slot `slot`, the labels into labels; returns the slot's
// input region (NULL, err set, on a failure). trainer_gpu_data_launch then builds it.
char *trainer_gpu_data_fill(TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training, int epoch,
                            int slot, int32_t *labels, TlcError *err);
// Launches the kernels that build the batch of slot `slot` into the arena's images, reading
// its table where the slot holds it on the device (between tlc_gpu_step_begin and the graph).
void trainer_gpu_data_launch(TlcRun *run, int slot);
void trainer_free_gpu_data(TlcRun *run);

// gpu_check.c
// Runs calls[0..n) on both devices, comparing; verbose lists every kernel. Nonzero (err set)
// on a GPU error or a mismatch.
int trainer_check_step(TlcRun *run, const TlcKernelCall *calls, int n, const char *what, bool verbose,
                       TlcError *err);
// The GPU's launches for one call of a step's table: its first pass, then its kernel, on the
// whole arena for a run of updates (none at the run's other calls).
void trainer_launch_call(TlcGpu *gpu, const TlcKernelCall *c);

// trainer_weights.c
// Loads a safetensors file or a tlc checkpoint into the model's parameters and buffers,
// all or nothing; a head whose class count differs keeps its initialisation (printed).
int trainer_load_weights(TlcRun *run, const char *path, TlcError *err);

// trainer_outputs.c
int trainer_prepare_outputs(TlcRun *run, TlcError *err);  // checks directories, allocates
void trainer_keep_logits(TlcRun *run);                     // after each test batch
int trainer_write_outputs(TlcRun *run, TlcError *err);     // --export, --logits

// trainer_predict.c
// With --predict: the class names if the data set loads (else "class K"), the images decoded
// into run->data.test (an error names a file that does not decode).
int trainer_predict_load(TlcRun *run, TlcError *err);
// After the loader exists: every image through the evaluation transforms once (a too-small
// image is an error naming it).
int trainer_predict_check(TlcRun *run, TlcError *err);
// One "predict:" line per image from run->test_logits.
int trainer_print_predictions(const TlcRun *run, TlcError *err);

// trainer_stop.c
void trainer_stop_install(void);        // SIGINT and SIGTERM ask the run to stop
void trainer_stop_remove(void);         // the handlers before install
bool trainer_stop_requested(void);
// Saves last.ckpt (in_epoch: inside run->epoch; else it is saved already), prints how to
// resume, releases the run; returns 1 with run->status 128 + the signal.
int trainer_stop(TlcRun *run, bool in_epoch);

// trainer_eval.c
void trainer_eval_init(TlcRun *run);
void trainer_eval_epoch_begin(TlcRun *run);
// The split of the evaluation pass that follows the pass under way (a training pass, else an
// evaluation pass), as tlc_next_eval will choose it; false when a training pass or none follows.
bool trainer_eval_after(const TlcRun *run, bool training, TlcSplit *split);

// trainer_profile.c
int trainer_profile_step(TlcRun *run, const TlcSteps *steps, bool training, TlcError *err);
void trainer_profile_report(TlcRun *run);   // when the run ends
void trainer_profile_free(TlcRun *run);

// trainer_summary.c
// The figures of the result line.
typedef struct TrainerResult {
  double test_acc, test_loss, images_per_s;
  const char *tested;   // "best", "last" or "checkpoint"
  int64_t skipped;      // image files that could not be decoded
} TrainerResult;
// The confusion matrix allocated; a training run's earlier run.json and confusion.tsv removed.
int trainer_summary_start(TlcRun *run, TlcError *err);
void trainer_count_confusion(TlcRun *run);   // after each evaluation batch
int trainer_write_summary(const TlcRun *run, const TrainerResult *r, TlcError *err);   // when the run ends

// trainer.c
// An epoch's training order: 0..n-1 shuffled by rng (tlc_epoch_begin, and trainer_ahead.c's
// draw of the next epoch's from a copy of the generator, which must agree).
void trainer_epoch_order(TlcRng *rng, int32_t *order, int64_t n);
double trainer_now(void);                                // monotonic seconds
float trainer_lr_factor(const TlcRun *run, int epoch);   // the schedule's (and --lr's) factor at epoch
void trainer_release(TlcRun *run);                       // frees everything the run holds

#endif
