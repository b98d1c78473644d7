// trainer_internal.h: what the trainer's files share and nothing else includes.
//
// The trainer (tlcrt.h, section "trainer.c") is cut by job:
//   trainer.c        the run: start, epochs, metrics lines, the result line, cleanup
//   trainer_flags.c  the command line
//   trainer_state.c  the model description's checks, the arena, initialisation, checkpoints
//   trainer_batch.c  batches: order, augmentation, normalisation, loss and accuracy sums
//   trainer_weights.c  --weights: safetensors or checkpoint tensors into a fresh state
//   trainer_outputs.c  --export and --logits, written when the run ends
#ifndef TLC_TRAINER_INTERNAL_H
#define TLC_TRAINER_INTERNAL_H

#include "tlcrt.h"

// Exit statuses of a trainer. 2 is a usage error, as for most command-line tools.
enum { TRAINER_OK = 0, TRAINER_FAILED = 1, TRAINER_USAGE = 2 };

// trainer_flags.c
// Fills run's options from argv. Returns TRAINER_OK, or the exit status with err filled;
// *help is set when --help printed the usage (then the run ends with status 0).
int trainer_parse_flags(TlcRun *run, int argc, char **argv, bool *help, TlcError *err);

// trainer_state.c
int trainer_check_model(const TlcModel *m, TlcError *err);
int trainer_alloc_state(TlcRun *run, TlcError *err);     // arena, tensor list, fingerprint
void trainer_init_params(TlcRun *run);                   // draws from run->rng, params order
int trainer_load_checkpoint(TlcRun *run, const char *path, TlcError *err);
int trainer_save_checkpoint(TlcRun *run, const char *path, TlcError *err);
void trainer_free_state(TlcRun *run);

// trainer_batch.c
int trainer_alloc_batches(TlcRun *run, TlcError *err);   // order, scratch, normalisation table
void trainer_free_batches(TlcRun *run);

// trainer_weights.c
// Loads a safetensors file or a tlc checkpoint into the model's parameters and buffers,
// all or nothing; a head whose class count differs keeps its initialisation (printed).
int trainer_load_weights(TlcRun *run, const char *path, TlcError *err);

// trainer_outputs.c
int trainer_prepare_outputs(TlcRun *run, TlcError *err);  // checks directories, allocates
void trainer_keep_logits(TlcRun *run);                     // after each test batch
int trainer_write_outputs(TlcRun *run, TlcError *err);     // --export, --logits

// trainer.c
double trainer_now(void);                                // monotonic seconds
void trainer_release(TlcRun *run);                       // frees everything the run holds

#endif
