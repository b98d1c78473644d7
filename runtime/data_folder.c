// data_folder.c: torchvision's ImageFolder layout of JPEG and PNG files.
//
// Contract (tlcrt.h, section "data_folder.c"): only names are read here; images are decoded
// by the loader when needed. Classes and files are sorted by name in byte order, as
// torchvision's sorted() does, so label k means the same class in both. Hidden entries (".x")
// are skipped, and files whose extension is not .jpg, .jpeg or .png (any case) are ignored.
// An empty class folder, or class sets that differ between splits, is an error naming the
// folder and the class. The held-out val of a single folder is drawn per class by a TlcRng
// with a fixed seed: the same split for every --seed, so runs with different seeds compare.
#include "tlcrt.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const uint64_t FOLDER_SPLIT_SEED = 0x5eed0f01d;

typedef struct Names {
  char **items;
  int32_t n, cap;
} Names;

static void names_free(Names *v) {
  tlc_strings_free(v->items, v->n);
  memset(v, 0, sizeof *v);
}

static int names_push(Names *v, const char *s) {
  if (v->n == v->cap) {
    int32_t cap = v->cap ? 2 * v->cap : 64;
    char **items = realloc(v->items, (size_t)cap * sizeof *items);
    if (!items)
      return -1;
    v->items = items, v->cap = cap;
  }
  if (!(v->items[v->n] = strdup(s)))
    return -1;
  v->n++;
  return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

// The sorted names in dir: sub-folders (dirs true) or image files.
static int list(const char *dir, bool dirs, Names *out, TlcError *err) {
  memset(out, 0, sizeof *out);
  DIR *d = opendir(dir);
  if (!d)
    return tlc_fail(err, "%s: cannot open the folder: %s", dir, strerror(errno));
  struct dirent *e;
  char path[4200];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    // An image is listed even when it cannot be opened: the loader then names it and skips it.
    bool keep = dirs ? is_dir(path) : is_image_name(e->d_name) && !is_dir(path);
    if (keep && names_push(out, e->d_name)) {
      closedir(d);
      names_free(out);
      return tlc_fail(err, "%s: out of memory listing the folder", dir);
    }
  }
  closedir(d);
  qsort(out->items, (size_t)out->n, sizeof *out->items, by_name);
  return 0;
}

// Appends one path and label to d.
static int add_sample(TlcDataset *d, int64_t *cap, const char *path, int32_t label) {
  if (d->count == *cap) {
    int64_t grown = *cap ? 2 * *cap : 256;
    char **paths = realloc(d->paths, (size_t)grown * sizeof *paths);
    if (paths)
      d->paths = paths;
    int32_t *labels = realloc(d->labels, (size_t)grown * sizeof *labels);
    if (labels)
      d->labels = labels;
    if (!paths || !labels)
      return -1;
    *cap = grown;
  }
  if (!(d->paths[d->count] = strdup(path)))
    return -1;
  d->labels[d->count++] = label;
  return 0;
}

typedef struct Split {
  TlcDataset *main, *held;   // held: where a val_split fraction goes, or NULL
  int64_t main_cap, held_cap;
  double fraction;
} Split;

// Adds the files of root/<class> for every class; an empty class folder is an error.
static int scan_split(const char *root, const Names *classes, Split *s, TlcError *err) {
  char dir[4200], path[8400];
  TlcRng rng;
  tlc_rng_seed(&rng, FOLDER_SPLIT_SEED);
  for (int32_t c = 0; c < classes->n; c++) {
    snprintf(dir, sizeof dir, "%s/%s", root, classes->items[c]);
    Names files;
    if (list(dir, false, &files, err))
      return -1;
    if (files.n == 0) {
      names_free(&files);
      return tlc_fail(err, "%s: an empty class folder (no .jpg, .jpeg or .png files); remove it or add images", dir);
    }
    int32_t *pick = malloc((size_t)files.n * sizeof *pick);
    int32_t held = s->held ? (int32_t)(s->fraction * files.n + 0.5) : 0;
    for (int32_t i = 0; pick && i < files.n; i++)
      pick[i] = i;
    if (pick && held)
      tlc_rng_shuffle(&rng, pick, files.n);
    // The held-out files are the shuffle's last ones, kept in name order within each part.
    for (int32_t i = 0; pick && i < files.n; i++) {
      bool out = false;
      for (int32_t j = files.n - held; j < files.n && !out; j++)
        out = pick[j] == i;
      snprintf(path, sizeof path, "%s/%s", dir, files.items[i]);
      if (out ? add_sample(s->held, &s->held_cap, path, c) : add_sample(s->main, &s->main_cap, path, c)) {
        free(pick);
        pick = NULL;
      }
    }
    names_free(&files);
    if (!pick)
      return tlc_fail(err, "%s: out of memory listing the images", dir);
    free(pick);
  }
  return 0;
}

// Every split's classes must be those of the training folder.
static int same_classes(const char *train_dir, const char *dir, const Names *want, TlcError *err) {
  Names got;
  if (list(dir, true, &got, err))
    return -1;
  int rc = 0;
  for (int32_t i = 0, j = 0; rc == 0 && (i < want->n || j < got.n);) {
    int cmp = i == want->n ? 1 : j == got.n ? -1 : strcmp(want->items[i], got.items[j]);
    if (cmp < 0)
      rc = tlc_fail(err, "%s has class '%s' but %s has no folder of that name (the splits must have the same "
                    "classes)", train_dir, want->items[i], dir);
    else if (cmp > 0)
      rc = tlc_fail(err, "%s has class '%s' but %s has no folder of that name (the splits must have the same "
                    "classes)", dir, got.items[j], train_dir);
    i += cmp <= 0, j += cmp >= 0;
  }
  names_free(&got);
  return rc;
}

static void set_classes(TlcData *out, int32_t n) {
  out->classes = n;
  out->train.classes = out->val.classes = out->test.classes = n;
}

// DIR/train with optional DIR/val and DIR/test.
static int load_split_folders(const char *dir, double val_split, TlcData *out, const Names *classes, TlcError *err) {
  char train[4200], val[4200], test[4200];
  snprintf(train, sizeof train, "%s/train", dir);
  snprintf(val, sizeof val, "%s/val", dir);
  snprintf(test, sizeof test, "%s/test", dir);
  bool has_val = is_dir(val), has_test = is_dir(test);
  Split s = {.main = &out->train, .held = has_val || val_split <= 0 ? NULL : &out->val, .fraction = val_split};
  if (scan_split(train, classes, &s, err))
    return -1;
  if (has_val) {
    Split v = {.main = &out->val};
    if (same_classes(train, val, classes, err) || scan_split(val, classes, &v, err))
      return -1;
    snprintf(out->val_from, sizeof out->val_from, "%.200s", val);
  } else if (s.held) {
    snprintf(out->val_from, sizeof out->val_from, "%g of each class of %.200s", val_split, train);
  }
  if (has_test) {
    Split t = {.main = &out->test};
    return same_classes(train, test, classes, err) || scan_split(test, classes, &t, err) ? -1 : 0;
  }
  return 1;  // no test folder
}

// test is a copy of val when the data set has no test folder (hymenoptera has train and val).
static int test_from_val(const char *dir, TlcData *out, TlcError *err) {
  if (out->val.count == 0)
    return tlc_fail(err, "%s: no test split: there is no test/ or val/ folder and val_split is 0", dir);
  TlcDataset *t = &out->test;
  t->count = out->val.count;
  t->paths = tlc_strings_dup((const char *const *)out->val.paths, (int32_t)out->val.count);
  t->labels = malloc((size_t)t->count * sizeof *t->labels);
  if (!t->paths || !t->labels) {
    free(t->labels);
    tlc_strings_free(t->paths, (int32_t)t->count);
    memset(t, 0, sizeof *t);
    return tlc_fail(err, "out of memory");
  }
  memcpy(t->labels, out->val.labels, (size_t)t->count * sizeof *t->labels);
  return 0;
}

int tlc_image_folder_load(const char *dir, double val_split, bool need_train, TlcData *out, TlcError *err) {
  (void)need_train;  // listing names is cheap: every split is listed, so class sets are checked
  char train[4200];
  snprintf(train, sizeof train, "%s/train", dir);
  bool split_folders = is_dir(train);
  if (!is_dir(dir))
    return tlc_fail(err, "%s: not a folder (image_folder data: DIR/<class>/*.jpg, or DIR/train/<class>/...)", dir);
  Names classes;
  if (list(split_folders ? train : dir, true, &classes, err))
    return -1;
  if (classes.n == 0) {
    names_free(&classes);
    return tlc_fail(err, "%s: no class folders (image_folder data: DIR/<class>/*.jpg, or DIR/train/<class>/...)",
                    split_folders ? train : dir);
  }
  set_classes(out, classes.n);
  int rc;
  if (split_folders) {
    rc = load_split_folders(dir, val_split, out, &classes, err);
  } else {
    Split s = {.main = &out->train, .held = val_split > 0 ? &out->val : NULL, .fraction = val_split};
    rc = scan_split(dir, &classes, &s, err) ? -1 : 1;
    if (s.held)
      snprintf(out->val_from, sizeof out->val_from, "%g of each class of %.200s", val_split, dir);
  }
  if (rc == 1)
    rc = test_from_val(dir, out, err);
  out->class_names = classes.items;  // the names move into out
  classes.items = NULL;
  set_classes(out, classes.n);
  return rc;
}
