// features.c: where a training step can start from cached features. When everything
// between the images and some tensor is frozen and deterministic, that tensor is the same
// for an image at every epoch: the trainer computes it once per training image and the
// step starts from there (DESIGN.md: "the head trains on cached features").
#include "tlc.h"

// The transforms that draw nothing at random: an image looks the same at every epoch.
static bool deterministic_transforms(const Recipe *r) {
  for (int i = 0; i < r->train_transform.n; i++)
    if (r->train_transform.items[i].random)
      return false;
  return true;
}

// varies[i]: node i changes during training or across a batch: it depends on a trainable
// parameter, optimizer state, labels, the learning rate or the random seed (dropout), on
// batch statistics, or it writes its inputs. from_images[i]: it depends on the images.
static void classify(Arena *a, const Graph *g, bool **varies_out, bool **from_images_out) {
  bool *varies = arena_alloc(a, (size_t)g->n), *from_images = arena_alloc(a, (size_t)g->n);
  for (int i = 0; i < g->n; i++) {
    const Node *n = g->nodes[i];
    bool v = n->writes_inputs;
    switch (n->op) {
    case OP_PARAM: v |= !(n->param->frozen || n->param->buffer); break;
    case OP_STATE: case OP_LABELS: case OP_LR: case OP_SEED: case OP_BN_STATS: v = true; break;
    default: break;
    }
    from_images[i] = n == g->images;
    for (int j = 0; j < n->nin; j++) {
      v |= varies[n->in[j]->id];
      from_images[i] |= from_images[n->in[j]->id];
    }
    varies[i] = v;
  }
  *varies_out = varies;
  *from_images_out = from_images;
}

int feature_boundary(Arena *a, const Graph *train, const Recipe *r) {
  if (!deterministic_transforms(r))
    return -1;
  bool *varies, *from_images;
  classify(a, train, &varies, &from_images);
  // The boundary: the one image-dependent, unvarying tensor that varying kernels read.
  int boundary = -1;
  for (int i = 0; i < train->n; i++) {
    const Node *n = train->nodes[i];
    if (!varies[i])
      continue;
    for (int j = 0; j < n->nin; j++) {
      const Node *in = n->in[j];
      if (varies[in->id] || !from_images[in->id] || in->id == boundary)
        continue;
      if (boundary >= 0)   // two tensors cross from the prefix: not one cache
        return -1;
      boundary = in->id;
    }
  }
  if (boundary < 0 || train->nodes[boundary] == train->images || train->nodes[boundary]->is_int ||
      train->nodes[boundary]->shape.d[0] != train->batch)
    return -1;
  // The prefix is every kernel up to the boundary; the step that starts from the cache runs
  // the others, after filling the boundary. So no varying kernel may come before it (it
  // could reuse the boundary's memory), and no kernel of the prefix may feed the rest but
  // through the boundary (its output would not be there).
  bool frozen_layer = false;   // a prefix without one saves nothing
  for (int i = 0; i < train->n; i++) {
    const Node *n = train->nodes[i];
    if (i < boundary && n->nin && varies[i])
      return -1;
    for (int j = 0; i <= boundary && j < n->nin; j++)
      frozen_layer |= n->in[j]->op == OP_PARAM && !n->in[j]->param->buffer;
    for (int j = 0; i > boundary && j < n->nin; j++)
      if (n->in[j]->nin && n->in[j]->id < boundary)
        return -1;
  }
  return frozen_layer ? boundary : -1;
}
