// schedule.c: the scheduling pass, after fusion: how the step's work is laid out over
// threads and in time (a schedule in Halide's sense), not what it computes. A convolution's
// weight gradient is split into chunks of rows summed apart, a choice of parallelism like a
// kernel's launch shape; its input gradient's weights are transposed once a step into the
// layout the CPU's product reads in place, and a strided convolution's input split by
// stride phase for its products, choices of layout; then the nodes are put in an order
// where each comes after what it reads, which fusion may have broken (a residual or folded
// statistics made after the node that now reads them).
#include "tlc.h"

// A convolution's weight gradient sums over every output position, and the CPU's product
// (codegen/kernels_conv_cpu_dw.c) has a parallel task per tile of 128 (or 256) output channels by 256
// of (input channel, tap): a layer with few channels has only a few. Its images are then cut
// into chunks summed apart and added up after (sum_chunks), for at least 16 tasks, within
// 32 MiB of partial sums; the chunks divide the batch. (Rows ordered by position, on small
// images, have channels enough and are not cut.) A fixed split, not one per thread: the
// sums come out the same on any number of threads.
static int64_t weight_grad_chunks(const Node *dw) {
  const Node *conv = dw->forward;
  if (conv->attr.conv.groups != 1 || conv_by_position(conv))
    return 1;
  const Shape x = dw->in[1]->shape;
  int64_t size = shape_elems(dw->shape), taps = conv->attr.conv.kernel * conv->attr.conv.kernel;
  int64_t tiles = conv_dw_by_patch(conv) ? (x.c * taps + CONV_DW_PATCH_ROWS - 1) / CONV_DW_PATCH_ROWS
                                         : (dw->shape.n + 127) / 128 * ((x.c * taps + 255) / 256);
  int64_t most = (32 << 20) / (size * 4);
  int64_t chunks = 1;
  while (chunks * tiles < 16 && chunks < most) {
    int64_t next = chunks + 1;
    while (next <= x.n && x.n % next)
      next++;
    if (next > x.n || next > most)
      break;
    chunks = next;
  }
  return chunks;
}

// The node reading the partial sums of dw, which becomes [chunks, dw's size], and that its
// readers read instead.
static Node *sum_chunks(Arena *a, Node *dw, int64_t chunks) {
  Node *sum = arena_alloc(a, sizeof *sum);
  sum->op = OP_SUM_CHUNKS;
  sum->shape = dw->shape;
  sum->forward = dw->forward;
  sum->name = dw->name;
  sum->span = dw->span;
  sum->trains = dw->trains;
  sum->in[sum->nin++] = dw;
  dw->shape = shape2(chunks, shape_elems(dw->shape));
  return sum;
}

// made, a layout of one of reader's inputs, becomes its last input.
static void add_input(Node *reader, Node *made, const char *what) {
  if (reader->nin == MAX_INPUTS)
    fatal("internal error: %s has no room for its %s", reader->name, what);
  reader->in[reader->nin++] = made;
}

// The weights of a convolution's input gradient (groups == 1) laid out [CI, KH, KW, CO], made just
// before it, once a step: the CPU's product (codegen/kernels_conv_cpu_dx.c) reads them in place as
// A[ci, (tap, co)], a step's rows side by side, where in w's own layout a step's values are
// CI*KH*KW floats apart and had to be gathered for every task and block of the product
// (VGG-11-BN's input gradients took 0.73x their time). The GPU's kernels read w itself.
static Node *weight_t(Arena *a, Node *dx) {
  Node *w = dx->in[1], *t = arena_alloc(a, sizeof *t);
  t->op = OP_CONV2D_WEIGHT_T;
  t->shape = shape4(w->shape.c, w->shape.h, w->shape.w, w->shape.n);
  t->forward = dx->forward;
  t->name = dx->name;
  t->span = dx->span;
  t->in[t->nin++] = w;
  add_input(dx, t, "transposed weights");
  return t;
}

// A strided convolution's input split by stride phase (conv_reads_phases): [N, C*s*s, H/s,
// W/s], plane (n, ci, rh*s + rw) holding x[n, ci, qh*s + rh, qw*s + rw], zeros past the image.
// Made just before each CPU product that gathers from it, the forward pass and the weight
// gradient, as its last input: two copies a step of a tensor the products read 9 to 147
// times, each no longer alive than its reader (a copy kept from the forward pass would add
// the input's size to the peak of the backward pass). The GPU's kernels read x itself.
static Node *phases(Arena *a, Node *reader, Node *x) {
  const Node *conv = reader->forward;
  int64_t s = conv->attr.conv.stride;
  Node *p = arena_alloc(a, sizeof *p);
  p->op = OP_CONV2D_PHASES;
  p->shape = shape4(x->shape.n, x->shape.c * s * s, (x->shape.h + s - 1) / s, (x->shape.w + s - 1) / s);
  p->attr = conv->attr;
  p->forward = conv;
  p->name = reader->name;
  p->span = reader->span;
  p->in[p->nin++] = x;
  add_input(reader, p, "input by stride phase");
  return p;
}

// The node reading phases of x: a convolution's forward pass (x its first input) or weight
// gradient (its second).
static Node *phases_read(Node *n) {
  if (!n->forward || n->forward->op != OP_CONV2D || !conv_reads_phases(n->forward))
    return NULL;
  return n->op == OP_CONV2D ? n->in[0] : n->op == OP_CONV2D_DW ? n->in[1] : NULL;
}

static void set_nodes(Graph *g, Node **nodes, int n, int cap) {
  g->nodes = nodes;
  g->n = n;
  g->cap = cap;
  for (int i = 0; i < n; i++)
    nodes[i]->id = i;
}

// The nodes the schedule adds: a weight gradient's chunks summed after it, an input
// gradient's weights transposed before it, a strided convolution's input split by phase
// before its forward pass and weight gradient.
static void add_nodes(Arena *a, Graph *g) {
  int cap = 3 * g->n + 1, n = 0;
  Node **nodes = arena_alloc(a, sizeof(Node *) * (size_t)cap), **sum_of = arena_alloc(a, sizeof(Node *) * (size_t)cap);
  for (int i = 0; i < g->n; i++) {
    Node *x = g->nodes[i];
    for (int j = 0; j < x->nin; j++)
      if (sum_of[x->in[j]->id])
        x->in[j] = sum_of[x->in[j]->id];
    if (x->op == OP_CONV2D_DX && x->attr.conv.groups == 1)
      nodes[n++] = weight_t(a, x);
    Node *image = phases_read(x);
    if (image)
      nodes[n++] = phases(a, x, image);
    nodes[n++] = x;
    int64_t chunks = x->op == OP_CONV2D_DW ? weight_grad_chunks(x) : 0;
    if (chunks >= 2)
      nodes[n++] = sum_of[i] = sum_chunks(a, x, chunks);
  }
  set_nodes(g, nodes, n, cap);
}

// A min-heap of node ids: the ready node first in the given order.
typedef struct Ready {
  int *ids;
  int n;
} Ready;

static void ready_push(Ready *r, int id) {
  int i = r->n++;
  for (; i > 0 && r->ids[(i - 1) / 2] > id; i = (i - 1) / 2)
    r->ids[i] = r->ids[(i - 1) / 2];
  r->ids[i] = id;
}

static int ready_pop(Ready *r) {
  int top = r->ids[0], last = r->ids[--r->n], i = 0;
  for (;;) {
    int child = 2 * i + 1;
    if (child >= r->n)
      break;
    if (child + 1 < r->n && r->ids[child + 1] < r->ids[child])
      child++;
    if (r->ids[child] >= last)
      break;
    r->ids[i] = r->ids[child];
    i = child;
  }
  r->ids[i] = last;
  return top;
}

// Every node after what it reads: of the nodes whose inputs are all computed, the first in
// the given order runs next (Kahn's algorithm), so an order that is already valid stays as
// it is and a node that reads a later one moves just after it.
static void order(Arena *a, Graph *g) {
  int n = g->n, *waiting = arena_alloc(a, sizeof(int) * (size_t)n);
  int *first = arena_alloc(a, sizeof(int) * (size_t)(n + 1)), *readers = NULL;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < g->nodes[i]->nin; j++)
      first[g->nodes[i]->in[j]->id + 1]++;
  for (int i = 0; i < n; i++)
    first[i + 1] += first[i];
  readers = arena_alloc(a, sizeof(int) * (size_t)(first[n] + 1));
  int *filled = arena_alloc(a, sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++) {
    const Node *x = g->nodes[i];
    waiting[i] = x->nin;
    for (int j = 0; j < x->nin; j++)
      readers[first[x->in[j]->id] + filled[x->in[j]->id]++] = i;
  }
  Ready ready = {arena_alloc(a, sizeof(int) * (size_t)n), 0};
  for (int i = 0; i < n; i++)
    if (!waiting[i])
      ready_push(&ready, i);
  Node **nodes = arena_alloc(a, sizeof(Node *) * (size_t)n);
  int placed = 0;
  while (ready.n) {
    int i = ready_pop(&ready);
    nodes[placed++] = g->nodes[i];
    for (int r = first[i]; r < first[i + 1]; r++)
      if (--waiting[readers[r]] == 0)
        ready_push(&ready, readers[r]);
  }
  if (placed != n)
    fatal("internal error: the training step of %s has a cycle", g->model);
  set_nodes(g, nodes, n, n);
}

void schedule_step(Arena *a, Graph *g) {
  add_nodes(a, g);
  order(a, g);
}
