// trainer_ahead.c: with CUDA graphs, the next batch goes up while a step runs (gpu_graph.c's
// slots): the pass's next batch or, at its last step, the first batch of the pass that
// follows (an evaluation pass, or the next epoch's training pass), so that no pass but the
// run's first starts by waiting for its batch.
//
// The pass that follows is the one the epoch loop and trainer_eval.c will choose; the next
// epoch's order is drawn from a copy of the run's generator, as tlc_epoch_begin will draw it
// (the generator itself, which checkpoints save, moves only there), its learning rate is the
// schedule's for that epoch, and the loader starts on that pass at once. A batch loaded ahead
// is used only by a step of that very batch (the same split, training or not, epoch and
// samples): a pass guessed wrong (a test pass that the best checkpoint makes unneeded) costs
// one load, and the pass then starts as it would have.
#include "trainer_internal.h"

#include <string.h>

// A pass whose first batch can go up ahead.
typedef struct Pass {
  const TlcDataset *ds;
  bool training;
  int epoch;
  const int32_t *order;   // its samples, n of them (whole batches)
  int64_t n;
} Pass;

bool trainer_ahead_is(const TlcRun *run, const TlcDataset *ds, const int32_t *order, bool training) {
  return run->ahead && run->ahead_ds == ds && run->ahead_training == training && run->ahead_epoch == run->epoch &&
         memcmp(run->ahead_order, order, (size_t)run->model->batch * sizeof *order) == 0;
}

static const TlcDataset *split_data(const TlcRun *run, TlcSplit split) {
  return split == TLC_SPLIT_TEST ? &run->data.test : &run->data.val;
}

// The next batch of the pass under way, when it has one.
static bool rest_of_pass(TlcRun *run, bool training, Pass *p) {
  const TlcModel *m = run->model;
  if (training) {
    *p = (Pass){&run->data.train, true, run->epoch, run->order + run->cursor, 0};
    return run->cursor + m->batch <= run->ntrain;
  }
  *p = (Pass){split_data(run, run->eval_split), false, run->epoch, run->eval_order + run->eval_cursor, 0};
  return run->eval_active && trainer_split_size(run, run->eval_split) - run->eval_cursor > 0;
}

// The pass after the one under way, its order made; false when none follows or it has no
// batch.
static bool next_pass(TlcRun *run, bool training, Pass *p) {
  const TlcModel *m = run->model;
  TlcSplit split;
  if (trainer_eval_after(run, training, &split)) {
    if (trainer_split_size(run, split) == 0)
      return false;
    int64_t n = trainer_eval_order(run, split);
    *p = (Pass){split_data(run, split), false, run->epoch, run->eval_order, n};
    return true;
  }
  int64_t whole = run->ntrain / m->batch * m->batch;
  if (!run->in_epoch || run->epoch + 1 >= run->epochs || whole == 0 || (run->use_features && !run->features_ready))
    return false;
  TlcRng rng = run->rng;
  trainer_epoch_order(&rng, run->next_order, run->ntrain);
  *p = (Pass){&run->data.train, true, run->epoch + 1, run->next_order, whole};
  return true;
}

// The loader starts on the pass whose first batch is about to go up, unless the batches of
// that pass come from the GPU or from cached features.
static void begin_loader(TlcRun *run, const Pass *p) {
  const TlcModel *m = run->model;
  if ((p->training && run->use_features) || !trainer_uses_loader(run, p->training))
    return;
  tlc_loader_begin(run->loader, p->ds, p->order, p->n, p->training ? m->train_transform : m->eval_transform,
                   p->training ? m->ntrain_transform : m->neval_transform, p->epoch);
  run->loader_ahead = true;
}

void trainer_load_ahead(TlcRun *run, bool training) {
  if (run->ahead || run->failed || trainer_stop_requested() || !run->graphs)
    return;
  Pass p;
  bool starts = !rest_of_pass(run, training, &p);
  if (starts) {
    if (!next_pass(run, training, &p))
      return;
    begin_loader(run, &p);
  }
  // The step of a training batch after this one: the next (this one's is run->step).
  int64_t step = run->step + (training ? 1 : 0);
  if (!trainer_load_slot(run, p.ds, p.order, p.training, p.epoch, step, run->ahead_labels, &run->ahead_slot))
    return;
  if (tlc_gpu_slot_send(run->gpu, run->ahead_slot, &run->fail_err) != 0) {
    trainer_loader_failed(run);
    return;
  }
  run->ahead = true;
  run->ahead_ds = p.ds, run->ahead_training = p.training, run->ahead_epoch = p.epoch, run->ahead_starts_pass = starts;
  memcpy(run->ahead_order, p.order, (size_t)run->model->batch * sizeof *p.order);
}

void trainer_ahead_report(const TlcRun *run) {
  if (!run->graphs || run->batches_slotted == 0)
    return;
  printf("cuda graphs: %lld of %lld batches went up while the step before ran, %lld of them the first of a pass\n",
         (long long)run->batches_ahead, (long long)run->batches_slotted,
         (long long)run->passes_ahead);
}
