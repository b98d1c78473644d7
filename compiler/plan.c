// plan.c: the memory plan. State and inputs get fixed places; activations are placed
// first-fit in schedule order and a block is reused once its last reader has run. A
// block is never reused by a reader of it, so a kernel's output never overlaps its inputs
// (the kernels rely on it: their buffers are noalias).
#include "tlc.h"

#include <string.h>

enum { ALIGN = 64 };

static int64_t align_up(int64_t v) { return (v + ALIGN - 1) / ALIGN * ALIGN; }

int64_t node_bytes(const Node *n) { return node_elems(n) * (n->is_int ? 8 : 4); }

typedef enum { STORE_NONE, STORE_STATE, STORE_IO, STORE_ACTIVATION, STORE_VIEW } Storage;

static Storage storage_of(const Node *n) {
  switch (n->op) {
  case OP_PARAM:
  case OP_STATE: return STORE_STATE;
  case OP_INPUT:
  case OP_LABELS:
  case OP_SEED:
  case OP_LR: return STORE_IO;
  case OP_VIEW: return STORE_VIEW;
  default: return n->writes_inputs ? STORE_NONE : STORE_ACTIVATION;
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
static void place_views(const Graph *g, int64_t *offset) {
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_VIEW)
      offset[i] = offset[n->in[0]->id] + n->attr.view_offset * (n->is_int ? 8 : 4);
  }
}

// First-fit placement of the activations of g; returns the bytes they need.
static int64_t place_activations(Arena *a, const Graph *g, int64_t *offset) {
  int *last = last_uses(a, g);
  Block *live = arena_alloc(a, sizeof(Block) * (size_t)(g->n + 1));
  int nlive = 0;
  int64_t top = 0;
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (storage_of(n) != STORE_ACTIVATION)
      continue;
    int keep = 0;
    for (int j = 0; j < nlive; j++)
      if (live[j].last_use >= i)
        live[keep++] = live[j];
    nlive = keep;
    int64_t size = align_up(node_bytes(n)), at = 0;
    for (bool moved = true; moved;) {   // the lowest offset that overlaps no live block
      moved = false;
      for (int j = 0; j < nlive; j++)
        if (at < live[j].offset + live[j].size && live[j].offset < at + size) {
          at = live[j].offset + live[j].size;
          moved = true;
        }
    }
    live[nlive++] = (Block){at, size, last[i]};
    offset[i] = at;
    if (at + size > top)
      top = at + size;
  }
  return top;
}

// State tensors are shared by name between the training step and the evaluation pass.
static int64_t place_named(Arena *a, const Graph *g, Storage kind, int64_t *offset, NameMap *names,
                           int64_t **slots, int *nslots, int *cap, int64_t base) {
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    if (storage_of(n) != kind)
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

MemPlan *plan_memory(Arena *a, const Graph *train, const Graph *eval) {
  MemPlan *p = arena_alloc(a, sizeof *p);
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
  int64_t *act_train = arena_alloc(a, sizeof(int64_t) * (size_t)train->n);
  int64_t *act_eval = arena_alloc(a, sizeof(int64_t) * (size_t)eval->n);
  p->train_bytes = place_activations(a, train, act_train);
  p->eval_bytes = place_activations(a, eval, act_eval);
  for (int i = 0; i < train->n; i++)
    if (storage_of(train->nodes[i]) == STORE_ACTIVATION)
      p->train_offset[i] = end + act_train[i];
  for (int i = 0; i < eval->n; i++)
    if (storage_of(eval->nodes[i]) == STORE_ACTIVATION)
      p->eval_offset[i] = end + act_eval[i];
  place_views(train, p->train_offset);
  place_views(eval, p->eval_offset);
  p->total_bytes = end + (p->train_bytes > p->eval_bytes ? p->train_bytes : p->eval_bytes);
  return p;
}
