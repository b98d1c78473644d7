// plan.c: the memory plan. State and inputs get fixed places; activations are placed
// first-fit in schedule order and a block is reused once its last reader has run. A
// block is never reused by a reader of it, so a kernel's output never overlaps its inputs
// (the kernels rely on it: their buffers are noalias).
#include "tlc.h"

#include <stdlib.h>

#include <string.h>

enum { ALIGN = 64 };

static int64_t align_up(int64_t v) { return (v + ALIGN - 1) / ALIGN * ALIGN; }

int64_t node_bytes(const Node *n) { return node_elems(n) * (n->is_int ? 8 : 4); }

typedef enum { STORE_NONE, STORE_STATE, STORE_IO, STORE_OUTPUT, STORE_ACTIVATION, STORE_VIEW } Storage;

// Outputs have fixed places: the host reads them from either device's arena at one offset.
static Storage storage_of(const Graph *g, const Node *n) {
  switch (n->op) {
  case OP_PARAM:
  case OP_STATE: return STORE_STATE;
  case OP_INPUT:
  case OP_LABELS:
  case OP_SEED:
  case OP_LR: return STORE_IO;
  case OP_VIEW: return STORE_VIEW;
  default: return n->writes_inputs ? STORE_NONE : value_read_by_host(g, n) ? STORE_OUTPUT : STORE_ACTIVATION;
  }
}

typedef struct Block {
  int64_t offset, size;
  int last_use;
} Block;

// The index of the last node reading each node; the step's outputs live to the end, and a
// tensor as long as its views are read.
static int *last_uses(Arena *a, const Graph *g) {
  int *last = arena_alloc(a, sizeof(int) * (size_t)g->n);
  for (int i = 0; i < g->n; i++) {
    last[i] = i;
    for (int j = 0; j < g->nodes[i]->nin; j++)
      last[g->nodes[i]->in[j]->id] = i;
  }
  last[g->loss->id] = last[g->logits->id] = g->n;
  for (int i = g->n - 1; i >= 0; i--) {   // a view comes after its source
    const Node *n = g->nodes[i];
    if (n->op == OP_VIEW && last[i] > last[n->in[0]->id])
      last[n->in[0]->id] = last[i];
  }
  return last;
}

// A view lies inside its source, placed before it.
static void place_views(const Graph *g, int64_t *offset, bool bf16) {
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_VIEW)
      offset[i] = offset[n->in[0]->id] + n->attr.view_offset * value_elem_bytes(g, n, bf16);
  }
}

// The outputs one after another: train's and eval's apart, as both steps' are read after them.
static int64_t place_outputs(const Graph *g, int64_t *offset, int64_t base) {
  for (int i = 0; i < g->n; i++)
    if (storage_of(g, g->nodes[i]) == STORE_OUTPUT) {
      offset[i] = base;
      base += align_up(node_bytes(g->nodes[i]));
    }
  return base;
}

// Activations placed greedily by size (as TensorFlow Lite's arena planner does): the largest
// first, each at the lowest offset where it overlaps no placed tensor that is live at the
// same time. Placing in schedule order instead leaves holes too small for the large tensors
// that come later. Returns the bytes they need.
typedef struct Tensor {
  int node, first, last;   // live from the node that writes it to its last reader
  int64_t size;
} Tensor;

static int by_size(const void *a, const void *b) {
  const Tensor *x = a, *y = b;
  if (x->size != y->size)
    return x->size < y->size ? 1 : -1;
  return x->node - y->node;   // a fixed order: the plan is the same at every compile
}

static int by_offset(const void *a, const void *b) {
  const Block *x = a, *y = b;
  return (x->offset > y->offset) - (x->offset < y->offset);
}

static int64_t place_activations(Arena *a, const Graph *g, int64_t *offset, bool bf16) {
  int *last = last_uses(a, g);
  Tensor *t = arena_alloc(a, sizeof(Tensor) * (size_t)(g->n + 1));
  int n = 0;
  for (int i = 0; i < g->n; i++)
    if (storage_of(g, g->nodes[i]) == STORE_ACTIVATION)
      t[n++] = (Tensor){i, i, last[i], align_up(value_bytes(g, g->nodes[i], bf16))};
  qsort(t, (size_t)n, sizeof *t, by_size);
  Tensor *placed = arena_alloc(a, sizeof(Tensor) * (size_t)(n + 1));
  Block *overlapping = arena_alloc(a, sizeof(Block) * (size_t)(n + 1));
  int64_t *at = arena_alloc(a, sizeof(int64_t) * (size_t)(n + 1)), top = 0;
  for (int i = 0; i < n; i++) {
    int m = 0;
    for (int j = 0; j < i; j++)   // placed tensors live at the same time as t[i]
      if (placed[j].first <= t[i].last && t[i].first <= placed[j].last)
        overlapping[m++] = (Block){at[j], placed[j].size, 0};
    qsort(overlapping, (size_t)m, sizeof *overlapping, by_offset);
    int64_t where = 0;
    for (int j = 0; j < m; j++) {   // the first gap that fits
      if (overlapping[j].offset - where >= t[i].size)
        break;
      if (overlapping[j].offset + overlapping[j].size > where)
        where = overlapping[j].offset + overlapping[j].size;
    }
    placed[i] = t[i];
    at[i] = where;
    offset[t[i].node] = where;
    if (where + t[i].size > top)
      top = where + t[i].size;
  }
  return top;
}

// State tensors are shared by name between the training step and the evaluation pass.
static int64_t place_named(Arena *a, const Graph *g, Storage kind, int64_t *offset, NameMap *names,
                           int64_t **slots, int *nslots, int *cap, int64_t base) {
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (storage_of(g, n) != kind)
      continue;
    int at = namemap_get(names, n->name);
    if (at < 0) {
      int64_t where = base;
      base += align_up(node_bytes(n));
      ARENA_PUSH(a, *slots, *nslots, *cap, where);
      at = *nslots - 1;
      namemap_put(a, names, n->name, at);
    }
    offset[i] = (*slots)[at];
  }
  return base;
}

MemPlan *plan_memory(Arena *a, const Graph *train, const Graph *eval, bool bf16) {
  MemPlan *p = arena_alloc(a, sizeof *p);
  p->bf16 = bf16;
  p->train_offset = arena_alloc(a, sizeof(int64_t) * (size_t)train->n);
  p->eval_offset = arena_alloc(a, sizeof(int64_t) * (size_t)eval->n);
  for (int i = 0; i < train->n; i++)
    p->train_offset[i] = -1;
  for (int i = 0; i < eval->n; i++)
    p->eval_offset[i] = -1;
  NameMap names = {0};
  int64_t *slots = NULL;
  int nslots = 0, cap = 0;
  int64_t end = place_named(a, train, STORE_STATE, p->train_offset, &names, &slots, &nslots, &cap, 0);
  end = place_named(a, eval, STORE_STATE, p->eval_offset, &names, &slots, &nslots, &cap, end);
  p->state_bytes = end;
  end = place_named(a, train, STORE_IO, p->train_offset, &names, &slots, &nslots, &cap, end);
  end = place_named(a, eval, STORE_IO, p->eval_offset, &names, &slots, &nslots, &cap, end);
  p->io_bytes = end - p->state_bytes;
  int64_t outputs = end;
  end = place_outputs(eval, p->eval_offset, place_outputs(train, p->train_offset, end));
  p->output_bytes = end - outputs;
  int64_t *act_train = arena_alloc(a, sizeof(int64_t) * (size_t)train->n);
  int64_t *act_eval = arena_alloc(a, sizeof(int64_t) * (size_t)eval->n);
  p->train_bytes = place_activations(a, train, act_train, bf16);
  p->eval_bytes = place_activations(a, eval, act_eval, bf16);
  for (int i = 0; i < train->n; i++)
    if (storage_of(train, train->nodes[i]) == STORE_ACTIVATION)
      p->train_offset[i] = end + act_train[i];
  for (int i = 0; i < eval->n; i++)
    if (storage_of(eval, eval->nodes[i]) == STORE_ACTIVATION)
      p->eval_offset[i] = end + act_eval[i];
  place_views(train, p->train_offset, bf16);
  place_views(eval, p->eval_offset, bf16);
  p->total_bytes = end + (p->train_bytes > p->eval_bytes ? p->train_bytes : p->eval_bytes);
  return p;
}
