// data_flowers102.c: Oxford Flowers102 (Nilsback and Zisserman, 2008) in its published layout.
//
// Contract (tlcrt.h, section "data_flowers102.c"): DIR/imagelabels.mat holds `labels`
// (1..102, one per image), DIR/setid.mat holds `trnid`, `valid` and `tstid` (1-based image
// numbers), and image k is DIR/jpg/image_%05d.jpg. The .mat files are read with matio (MAT
// v4, v5, compressed v5 and v7.3); any numeric class is accepted as long as every value is a
// whole number in range, else the error names the file, the variable and the element. The
// class names are not in the data set's files; the table below is the one the community
// uses (label k is row k - 1).
#include "tlcrt.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <matio.h>

// FLOWERS_MAX_VALUES: the most values a variable may hold, 122 times the 8,189 images of the
// data set. matio allocates a variable's data as its header claims, before reading it: a
// 200-byte file claimed 12.5 GB (found by fuzzing, docs/fuzzing.md).
enum { FLOWERS_CLASSES = 102, FLOWERS_MAX_VALUES = 1000000 };

static const char *const FLOWERS_NAMES[FLOWERS_CLASSES] = {
    "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold",
    "tiger lily", "moon orchid", "bird of paradise", "monkshood", "globe thistle", "snapdragon", "colt's foot",
    "king protea", "spear thistle", "yellow iris", "globe-flower", "purple coneflower", "peruvian lily",
    "balloon flower", "giant white arum lily", "fire lily", "pincushion flower", "fritillary", "red ginger",
    "grape hyacinth", "corn poppy", "prince of wales feathers", "stemless gentian", "artichoke", "sweet william",
    "carnation", "garden phlox", "love in the mist", "mexican aster", "alpine sea holly", "ruby-lipped cattleya",
    "cape flower", "great masterwort", "siam tulip", "lenten rose", "barbeton daisy", "daffodil", "sword lily",
    "poinsettia", "bolero deep blue", "wallflower", "marigold", "buttercup", "oxeye daisy", "common dandelion",
    "petunia", "wild pansy", "primula", "sunflower", "pelargonium", "bishop of llandaff", "gaura", "geranium",
    "orange dahlia", "pink-yellow dahlia", "cautleya spicata", "japanese anemone", "black-eyed susan",
    "silverbush", "californian poppy", "osteospermum", "spring crocus", "bearded iris", "windflower",
    "tree poppy", "gazania", "azalea", "water lily", "rose", "thorn apple", "morning glory", "passion flower",
    "lotus", "toad lily", "anthurium", "frangipani", "clematis", "hibiscus", "columbine", "desert-rose",
    "tree mallow", "magnolia", "cyclamen", "watercress", "canna lily", "hippeastrum", "bee balm", "ball moss",
    "foxglove", "bougainvillea", "camellia", "mallow", "mexican petunia", "bromelia", "blanket flower",
    "trumpet creeper", "blackberry lily",
};

// matio reports through a log function; it is kept quiet (our error names the file instead).
static void matio_quiet(int level, char *message) { (void)level, (void)message; }

// Element i of a numeric matio variable as a double; false for a non-numeric class.
static bool element(const matvar_t *v, size_t i, double *out) {
  switch (v->class_type) {
  case MAT_C_DOUBLE: *out = ((const double *)v->data)[i]; return true;
  case MAT_C_SINGLE: *out = ((const float *)v->data)[i]; return true;
  case MAT_C_INT8: *out = ((const int8_t *)v->data)[i]; return true;
  case MAT_C_UINT8: *out = ((const uint8_t *)v->data)[i]; return true;
  case MAT_C_INT16: *out = ((const int16_t *)v->data)[i]; return true;
  case MAT_C_UINT16: *out = ((const uint16_t *)v->data)[i]; return true;
  case MAT_C_INT32: *out = ((const int32_t *)v->data)[i]; return true;
  case MAT_C_UINT32: *out = ((const uint32_t *)v->data)[i]; return true;
  case MAT_C_INT64: *out = (double)((const int64_t *)v->data)[i]; return true;
  case MAT_C_UINT64: *out = (double)((const uint64_t *)v->data)[i]; return true;
  default: return false;
  }
}

// The values a variable's dimensions claim, SIZE_MAX past it.
static size_t values(const matvar_t *v) {
  size_t count = 1;
  for (int d = 0; d < v->rank; d++) {
    if (v->dims[d] != 0 && count > SIZE_MAX / v->dims[d])
      return SIZE_MAX;
    count *= v->dims[d];
  }
  return count;
}

// Reads variable `name` of path as whole numbers in [lo, hi] into new memory.
static int read_ints(const char *path, const char *name, int64_t lo, int64_t hi, int32_t **out, int64_t *n,
                     TlcError *err) {
  mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
  if (!mat)
    return tlc_fail(err, "%s: cannot open as a MAT file (missing, unreadable or not a MAT file)", path);
  matvar_t *v = Mat_VarReadInfo(mat, name);
  size_t count = v ? values(v) : 0;
  if (v && count <= FLOWERS_MAX_VALUES) {
    Mat_VarFree(v);
    v = Mat_VarRead(mat, name);
  }
  Mat_Close(mat);
  if (!v)
    return tlc_fail(err, "%s: has no variable '%s'", path, name);
  if (count > FLOWERS_MAX_VALUES) {
    Mat_VarFree(v);
    return tlc_fail(err, "%s: variable '%s' claims %zu values; Flowers102 has 8,189 images (at most %d allowed)",
                    path, name, count, FLOWERS_MAX_VALUES);
  }
  count = values(v);
  int rc = 0;
  double x = 0;
  if (v->isComplex || !v->data || count == 0 || v->nbytes < count * Mat_SizeOfClass(v->class_type) ||
      !element(v, 0, &x))
    rc = tlc_fail(err, "%s: variable '%s' is not a non-empty real numeric array", path, name);
  *out = rc ? NULL : malloc(count * sizeof **out);
  if (!rc && !*out)
    rc = tlc_fail(err, "%s: out of memory for '%s'", path, name);
  for (size_t i = 0; !rc && i < count; i++) {
    element(v, i, &x);
    if (!(x >= (double)lo && x <= (double)hi && x == floor(x)))
      rc = tlc_fail(err, "%s: %s[%zu] is %g; expected a whole number from %lld to %lld", path, name, i, x,
                    (long long)lo, (long long)hi);
    else
      (*out)[i] = (int32_t)x;
  }
  Mat_VarFree(v);
  if (rc) {
    free(*out);
    *out = NULL;
  }
  *n = (int64_t)count;
  return rc;
}

// The images ids[0..n) (1-based) as a file list with 0-based labels.
static int make_split(const char *dir, const int32_t *ids, int64_t n, const int32_t *labels, TlcDataset *d,
                      TlcError *err) {
  d->paths = calloc((size_t)n, sizeof *d->paths);
  d->labels = malloc((size_t)n * sizeof *d->labels);
  if (!d->paths || !d->labels)
    return tlc_fail(err, "out of memory");
  char path[4200];
  for (int64_t i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/jpg/image_%05d.jpg", dir, ids[i]);
    if (!(d->paths[i] = strdup(path)))
      return tlc_fail(err, "out of memory");
    d->count = i + 1;
    d->labels[i] = labels[ids[i] - 1] - 1;
  }
  d->classes = FLOWERS_CLASSES;
  return 0;
}

int tlc_flowers102_load(const char *dir, bool need_train, TlcData *out, TlcError *err) {
  Mat_LogInitFunc("tlc", matio_quiet);
  char labels_path[4200], setid_path[4200];
  snprintf(labels_path, sizeof labels_path, "%s/imagelabels.mat", dir);
  snprintf(setid_path, sizeof setid_path, "%s/setid.mat", dir);
  int32_t *labels = NULL, *ids[3] = {NULL, NULL, NULL};
  int64_t nlabels = 0, nids[3] = {0, 0, 0};
  static const char *const vars[3] = {"trnid", "valid", "tstid"};
  TlcDataset *splits[3] = {&out->train, &out->val, &out->test};
  int rc = read_ints(labels_path, "labels", 1, FLOWERS_CLASSES, &labels, &nlabels, err);
  for (int s = need_train ? 0 : 2; rc == 0 && s < 3; s++)
    rc = read_ints(setid_path, vars[s], 1, nlabels, &ids[s], &nids[s], err);
  for (int s = need_train ? 0 : 2; rc == 0 && s < 3; s++)
    rc = make_split(dir, ids[s], nids[s], labels, splits[s], err);
  free(labels);
  for (int s = 0; s < 3; s++)
    free(ids[s]);
  if (rc)
    return -1;
  snprintf(out->val_from, sizeof out->val_from, "setid.mat's valid");
  snprintf(out->names_from, sizeof out->names_from, "the built-in list (the data set's files have none)");
  out->classes = FLOWERS_CLASSES;
  out->class_names = tlc_strings_dup(FLOWERS_NAMES, FLOWERS_CLASSES);
  return out->class_names ? 0 : tlc_fail(err, "out of memory");
}
