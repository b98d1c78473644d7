// trainer_eval.c: which evaluation passes run when, and their figures. After an epoch's
// training pass: the validation split (the test split when there is none, said to be no
// held-out score) and, every test_every epochs, the test split. After the epochs: the test
// split with the last weights (unless the last epoch just tested them) and then, when a
// best-on-validation checkpoint was kept at another epoch, with its weights: the figure the
// write-ups report, which --export and --logits then hold too.
#include "trainer_internal.h"

#include <math.h>
#include <stdio.h>

typedef enum { PASS_VAL, PASS_TEST, PASS_TEST_LAST, PASS_TEST_BEST } EvalPass;

static bool has_validation(const TlcRun *run) { return run->nval > 0; }

void trainer_eval_epoch_begin(TlcRun *run) {
  run->in_epoch = true;
  run->val_loss = run->val_acc = run->epoch_test_loss = run->epoch_test_acc = NAN;
}

static void plan(TlcRun *run) {
  run->nplan = run->next_plan = 0;
  if (run->in_epoch) {
    bool tests = !has_validation(run) ||
                 (run->model->test_every > 0 && (run->epoch + 1) % run->model->test_every == 0);
    if (has_validation(run))
      run->plan[run->nplan++] = PASS_VAL;
    if (tests)
      run->plan[run->nplan++] = PASS_TEST;
    return;
  }
  if (run->last_tested_epoch != run->epochs_done || run->eval_checkpoint)
    run->plan[run->nplan++] = PASS_TEST_LAST;
  if (run->best_val >= 0 && !run->eval_checkpoint)
    run->plan[run->nplan++] = PASS_TEST_BEST;
}

// The figures of the pass that just ended.
static void record(TlcRun *run) {
  double loss = run->eval_seen > 0 ? run->eval_loss / run->eval_seen : NAN;
  double acc = run->eval_seen > 0 ? run->eval_correct / run->eval_seen : NAN;
  switch ((EvalPass)run->eval_pass) {
  case PASS_VAL: run->val_loss = loss, run->val_acc = acc; break;
  case PASS_TEST:
    run->epoch_test_loss = loss, run->epoch_test_acc = acc;
    run->last_test_loss = loss, run->last_test_acc = acc;
    run->last_tested_epoch = run->epoch + 1;
    break;
  case PASS_TEST_LAST: run->last_test_loss = loss, run->last_test_acc = acc; break;
  case PASS_TEST_BEST: run->best_test_loss = loss, run->best_test_acc = acc; break;
  }
  run->eval_pass = -1;
}

// best.ckpt's weights in place of the last ones; false when they are the last ones (nothing
// to test again) or cannot be read (said, and the last figures stand).
static bool load_best(TlcRun *run) {
  TlcError err;
  if (trainer_load_best(run, &run->best_epoch, &err) != 0) {
    printf("test: the last weights are reported: %s\n", err.msg);
    return false;
  }
  if (run->best_epoch == run->epochs_done) {
    run->best_test_loss = run->last_test_loss, run->best_test_acc = run->last_test_acc;
    return false;
  }
  printf("test: best.ckpt (epoch %d, validation accuracy %.2f%%)\n", run->best_epoch, 100 * run->best_val);
  return true;
}

bool tlc_next_eval(TlcRun *run, TlcSplit *split) {
  if (run->failed || trainer_stop_requested())
    return false;
  if (run->eval_pass >= 0)
    record(run);
  else
    plan(run);
  while (run->next_plan < run->nplan) {
    EvalPass pass = (EvalPass)run->plan[run->next_plan++];
    if (pass == PASS_TEST_BEST && !load_best(run))
      continue;
    run->eval_pass = pass;
    *split = pass == PASS_VAL ? TLC_SPLIT_VAL : TLC_SPLIT_TEST;
    return true;
  }
  run->nplan = run->next_plan = 0;
  return false;
}

bool trainer_eval_after(const TlcRun *run, bool training, TlcSplit *split) {
  if (training) {   // the epoch's first: as plan() makes it
    *split = has_validation(run) ? TLC_SPLIT_VAL : TLC_SPLIT_TEST;
    return true;
  }
  if (run->next_plan < run->nplan) {   // the phase's next (unless a best that is the last is skipped)
    *split = run->plan[run->next_plan] == PASS_VAL ? TLC_SPLIT_VAL : TLC_SPLIT_TEST;
    return true;
  }
  // After the last epoch's passes, the test of the run's end: with the last weights unless the
  // epoch tested them, with the best ones when they are others. Either reads the same batches.
  *split = TLC_SPLIT_TEST;
  return run->in_epoch && run->epoch + 1 >= run->epochs && run->ntest > 0;
}

void trainer_eval_init(TlcRun *run) {
  run->eval_pass = -1;
  run->last_tested_epoch = -1;
  run->best_epoch = -1;
  run->last_test_loss = run->last_test_acc = run->best_test_loss = run->best_test_acc = NAN;
  run->val_loss = run->val_acc = run->epoch_test_loss = run->epoch_test_acc = NAN;
}
