// kernels_optim.c: the optimizer steps, as torch.optim defines them. The learning rate
// is the configured one times the schedule's factor for this step (the lr tensor, set by
// the training loop); Adam's step count is the seed tensor's second element.
#include "lower.h"

#include <math.h>

// sgd_update(p, g, lr[, buf]): g += wd p; buf = mu buf + g; p -= lr (nesterov ? g + mu buf : buf)
Kernel *kernel_sgd_update(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  const OptAttrs *o = &n->attr.opt;
  int i;
  KStmt *all = kernel_loop(kb, k->body, "i", shape_elems(n->shape), &i);
  KExpr *p = kir_load(k, kb->in[0], kir_ref(k, i));
  int g = kir_var(k, "g", KT_F32);
  kir_assign(k, all, g, kir_load(k, kb->in[1], kir_ref(k, i)));
  if (o->weight_decay)
    kir_assign(k, all, g, kir_binary(k, KB_ADD, kir_ref(k, g), kir_binary(k, KB_MUL, kir_float(k, o->weight_decay), p)));
  KExpr *step = kir_ref(k, g);
  if (n->nin == 4) {
    KExpr *buf = kir_binary(k, KB_ADD, kir_binary(k, KB_MUL, kir_float(k, o->momentum), kir_load(k, kb->in[3], kir_ref(k, i))),
                            kir_ref(k, g));
    kir_store(k, all, kb->in[3], kir_ref(k, i), buf);
    KExpr *now = kir_load(k, kb->in[3], kir_ref(k, i));
    step = o->nesterov ? kir_binary(k, KB_ADD, kir_ref(k, g), kir_binary(k, KB_MUL, kir_float(k, o->momentum), now)) : now;
  }
  KExpr *lr = kir_binary(k, KB_MUL, kir_float(k, o->lr), kir_load(k, kb->in[2], kir_int(k, 0)));
  kir_store(k, all, kb->in[0], kir_ref(k, i), kir_binary(k, KB_SUB, p, kir_binary(k, KB_MUL, lr, step)));
  return k;
}

// adam_update(p, g, lr, m, v, seed): Adam, or AdamW when the decay is decoupled.
Kernel *kernel_adam_update(KernelBuilder *kb) {
  Kernel *k = kb->k;
  const Node *n = kb->node;
  const OptAttrs *o = &n->attr.opt;
  int i;
  KStmt *all = kernel_loop(kb, k->body, "i", shape_elems(n->shape), &i);
  int p = kir_var(k, "p", KT_F32), g = kir_var(k, "g", KT_F32);
  kir_assign(k, all, p, kir_load(k, kb->in[0], kir_ref(k, i)));
  kir_assign(k, all, g, kir_load(k, kb->in[1], kir_ref(k, i)));
  KExpr *lr = kir_binary(k, KB_MUL, kir_float(k, o->lr), kir_load(k, kb->in[2], kir_int(k, 0)));
  if (o->weight_decay && o->decoupled)
    kir_assign(k, all, p, kir_binary(k, KB_MUL, kir_ref(k, p),
                                     kir_binary(k, KB_SUB, kir_float(k, 1), kir_binary(k, KB_MUL, lr, kir_float(k, o->weight_decay)))));
  else if (o->weight_decay)
    kir_assign(k, all, g, kir_binary(k, KB_ADD, kir_ref(k, g), kir_binary(k, KB_MUL, kir_float(k, o->weight_decay), kir_ref(k, p))));
  KExpr *m = kir_binary(k, KB_ADD, kir_binary(k, KB_MUL, kir_float(k, o->beta1), kir_load(k, kb->in[3], kir_ref(k, i))),
                        kir_binary(k, KB_MUL, kir_float(k, 1 - o->beta1), kir_ref(k, g)));
  KExpr *v = kir_binary(k, KB_ADD, kir_binary(k, KB_MUL, kir_float(k, o->beta2), kir_load(k, kb->in[4], kir_ref(k, i))),
                        kir_binary(k, KB_MUL, kir_float(k, 1 - o->beta2), kir_binary(k, KB_MUL, kir_ref(k, g), kir_ref(k, g))));
  kir_store(k, all, kb->in[3], kir_ref(k, i), m);
  kir_store(k, all, kb->in[4], kir_ref(k, i), v);
  // Bias corrections 1 - beta^t, with t the step count (1 on the first step).
  KExpr *t = kir_cast(k, KT_F32, kir_load(k, kb->in[5], kir_int(k, 1)));
  KExpr *c1 = kir_binary(k, KB_SUB, kir_float(k, 1), kir_unary(k, KU_EXP, kir_binary(k, KB_MUL, t, kir_float(k, log(o->beta1)))));
  KExpr *c2 = kir_binary(k, KB_SUB, kir_float(k, 1), kir_unary(k, KU_EXP, kir_binary(k, KB_MUL, t, kir_float(k, log(o->beta2)))));
  KExpr *mhat = kir_binary(k, KB_DIV, kir_load(k, kb->in[3], kir_ref(k, i)), c1);
  KExpr *vhat = kir_binary(k, KB_DIV, kir_load(k, kb->in[4], kir_ref(k, i)), c2);
  KExpr *denom = kir_binary(k, KB_ADD, kir_unary(k, KU_SQRT, vhat), kir_float(k, o->eps));
  kir_store(k, all, kb->in[0], kir_ref(k, i), kir_binary(k, KB_SUB, kir_ref(k, p), kir_binary(k, KB_MUL, lr, kir_binary(k, KB_DIV, mhat, denom))));
  return k;
}
