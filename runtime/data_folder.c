// data_folder.c: torchvision's ImageFolder layout of JPEG and PNG files.
//
// Contract (tlcrt.h, section "data_folder.c"): only names are read here; images are decoded
// by the loader when needed. The files of a class are those torchvision's make_dataset finds:
// every folder under the class folder, links followed, visited in the order of sorted(os.walk())
// (by full path, byte order), each folder's files sorted by name, so sample i and label k mean
// the same in both. Two differences, both on purpose: hidden entries (".x", which are
// editor, notebook and macOS metadata) are skipped, and a folder reached again through a link
// to one of its parents is not walked twice. Files ending in .jpg, .jpeg or .png (any case) are
// listed; those torchvision would also read (.bmp, .ppm, .pgm, .tif, .tiff, .webp) are counted
// for the report, since tlc does not decode them; others are ignored. An empty class folder, or
// class sets that differ between splits, is an error naming the folder and the class. The
// held-out val of a single folder is drawn per class by a TlcRng with a fixed seed: the same
// split for every --seed, so runs with different seeds compare.
#include "tlcrt.h"

#include <ctype.h>
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

static bool has_extension(const char *name, const char *const *exts) {
  const char *dot = strrchr(name, '.');
  for (int i = 0; dot && exts[i]; i++)
    if (!strcasecmp(dot + 1, exts[i]))
      return true;
  return false;
}

static const char *const DECODED_EXTS[] = {"jpg", "jpeg", "png", NULL};
// torchvision's IMG_EXTENSIONS that tlc does not decode.
static const char *const OTHER_EXTS[] = {"bmp", "ppm", "pgm", "tif", "tiff", "webp", NULL};

// A file torchvision would read and tlc cannot: counted, its extension noted once.
static void note_other(TlcData *data, const char *name) {
  const char *ext = strrchr(name, '.');
  data->other_formats++;
  char token[8] = {0};   // ".tif", lower case
  for (int i = 0; ext[i] && i < 7; i++)
    token[i] = (char)tolower((unsigned char)ext[i]);
  size_t n = strlen(token), at = strlen(data->other_exts);
  for (const char *p = data->other_exts; (p = strstr(p, token)); p += n)
    if (p[n] == ',' || p[n] == '\0')
      return;
  if (at + n + 3 < sizeof data->other_exts)
    snprintf(data->other_exts + at, sizeof data->other_exts - at, "%s%s", at ? ", " : "", token);
}

// The sorted names in dir: its sub-folders into dirs and its image files into images (either
// may be NULL); files of the other formats are noted in data when it is given.
static int list(const char *dir, Names *dirs, Names *images, TlcData *data, TlcError *err) {
  if (dirs)
    memset(dirs, 0, sizeof *dirs);
  if (images)
    memset(images, 0, sizeof *images);
  DIR *d = opendir(dir);
  if (!d)
    return tlc_fail(err, "%s: cannot open the folder: %s", dir, strerror(errno));
  struct dirent *e;
  char path[4200];
  int rc = 0;
  while (rc == 0 && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
      rc = tlc_fail(err, "%s/%s: the path is too long", dir, e->d_name);
      continue;
    }
    // An image is listed even when it cannot be opened: the loader then names it and skips it.
    bool folder = is_dir(path);
    Names *into = folder ? dirs : has_extension(e->d_name, DECODED_EXTS) ? images : NULL;
    if (into && names_push(into, e->d_name))
      rc = tlc_fail(err, "%s: out of memory listing the folder", dir);
    else if (!folder && data && has_extension(e->d_name, OTHER_EXTS))
      note_other(data, e->d_name);
  }
  closedir(d);
  for (int k = 0; k < 2; k++) {
    Names *v = k ? images : dirs;
    if (v && rc)
      names_free(v);
    else if (v)
      qsort(v->items, (size_t)v->n, sizeof *v->items, by_name);
  }
  return rc;
}

// The folders on the way down from a class folder, to stop at a link back to one of them.
typedef struct Visiting {
  dev_t dev[64];
  ino_t ino[64];
  int n;
} Visiting;

// dir and every folder under it, as paths, into out (unsorted).
static int collect_folders(const char *dir, Visiting *v, Names *out, TlcError *err) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return tlc_fail(err, "%s: cannot open the folder: %s", dir, strerror(errno));
  for (int i = 0; i < v->n; i++)
    if (v->dev[i] == st.st_dev && v->ino[i] == st.st_ino)
      return 0;   // a link back up the tree
  if (v->n == 64)
    return tlc_fail(err, "%s: folders nested more than 64 deep", dir);
  if (names_push(out, dir))
    return tlc_fail(err, "%s: out of memory listing the folder", dir);
  Names subs;
  if (list(dir, &subs, NULL, NULL, err))
    return -1;
  v->dev[v->n] = st.st_dev, v->ino[v->n] = st.st_ino, v->n++;
  char path[4200];
  int rc = 0;
  for (int32_t i = 0; rc == 0 && i < subs.n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, subs.items[i]);
    rc = collect_folders(path, v, out, err);
  }
  v->n--;
  names_free(&subs);
  return rc;
}

// The image files of one class, as paths in torchvision's order: folders sorted by path
// (sorted(os.walk())), files by name within each. data->nested counts those below dir.
static int class_files(const char *dir, Names *files, TlcData *data, TlcError *err) {
  memset(files, 0, sizeof *files);
  Names folders = {0};
  Visiting v = {.n = 0};
  int rc = collect_folders(dir, &v, &folders, err);
  if (rc == 0)
    qsort(folders.items, (size_t)folders.n, sizeof *folders.items, by_name);
  char path[8400];
  for (int32_t f = 0; rc == 0 && f < folders.n; f++) {
    Names names;
    if ((rc = list(folders.items[f], NULL, &names, data, err)) != 0)
      break;
    for (int32_t i = 0; rc == 0 && i < names.n; i++) {
      snprintf(path, sizeof path, "%s/%s", folders.items[f], names.items[i]);
      if (names_push(files, path))
        rc = tlc_fail(err, "%s: out of memory listing the images", dir);
    }
    data->nested += f > 0 ? names.n : 0;
    names_free(&names);
  }
  names_free(&folders);
  if (rc)
    names_free(files);
  return rc;
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
static int scan_split(const char *root, const Names *classes, Split *s, TlcData *data, TlcError *err) {
  char dir[4200];
  TlcRng rng;
  tlc_rng_seed(&rng, FOLDER_SPLIT_SEED);
  for (int32_t c = 0; c < classes->n; c++) {
    snprintf(dir, sizeof dir, "%s/%s", root, classes->items[c]);
    Names files;
    if (class_files(dir, &files, data, err))
      return -1;
    if (files.n == 0) {
      names_free(&files);
      return tlc_fail(err, "%s: an empty class folder (no .jpg, .jpeg or .png files in it or below it); remove it "
                      "or add images", dir);
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
      const char *path = files.items[i];
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
  if (list(dir, &got, NULL, NULL, err))
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
  if (scan_split(train, classes, &s, out, err))
    return -1;
  if (has_val) {
    Split v = {.main = &out->val};
    if (same_classes(train, val, classes, err) || scan_split(val, classes, &v, out, err))
      return -1;
    snprintf(out->val_from, sizeof out->val_from, "%.200s", val);
  } else if (s.held) {
    snprintf(out->val_from, sizeof out->val_from, "%g of each class of %.200s", val_split, train);
  }
  if (has_test) {
    Split t = {.main = &out->test};
    return same_classes(train, test, classes, err) || scan_split(test, classes, &t, out, err) ? -1 : 0;
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
  out->test_is_val = true;
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
  if (list(split_folders ? train : dir, &classes, NULL, NULL, err))
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
    rc = scan_split(dir, &classes, &s, out, err) ? -1 : 1;
    if (s.held)
      snprintf(out->val_from, sizeof out->val_from, "%g of each class of %.200s", val_split, dir);
  }
  if (rc == 1)
    rc = test_from_val(dir, out, err);
  snprintf(out->names_from, sizeof out->names_from, "the folder names in %.200s", split_folders ? train : dir);
  out->class_names = classes.items;  // the names move into out
  classes.items = NULL;
  set_classes(out, classes.n);
  return rc;
}
