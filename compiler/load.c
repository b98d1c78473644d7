// load.c: reads the main file and, transitively, its imports. An import is looked up
// beside the importing file, then in each include directory (graphs/ by default).
#include "tlc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// The compiler holds a file's tokens and syntax tree, about 250 bytes per byte of source at
// worst: 1 MiB a file (the zoo's largest is 4 KiB) and 2 MiB for all files of a compilation
// keep any input within a few hundred MB.
enum { MAX_SOURCE_BYTES = 1 << 20, MAX_TOTAL_SOURCE_BYTES = 2 << 20 };

const Source *source_read(Arena *a, const char *path, Span from) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
    const char *why = f ? "it is a directory" : strerror(errno);
    if (f)
      fclose(f);
    if (from.src)
      error_at(from, "cannot read '%s': %s", path, why);
    fatal("cannot read '%s': %s", path, why);
  }
  if (st.st_size > MAX_SOURCE_BYTES) {
    fclose(f);
    if (from.src)
      error_at(from, "'%s' is too large for a .graph file (%lld bytes; the limit is 1 MiB)", path, (long long)st.st_size);
    fatal("'%s' is too large for a .graph file (%lld bytes; the limit is 1 MiB)", path, (long long)st.st_size);
  }
  Source *src = arena_alloc(a, sizeof *src);
  char *text = arena_alloc(a, (size_t)st.st_size + 1);
  src->len = fread(text, 1, (size_t)st.st_size, f);
  fclose(f);
  src->text = text;
  src->path = arena_strdup(a, path);
  return src;
}

typedef struct Loader {
  Arena *arena;
  Module *module;
  int64_t source_bytes;   // read so far, in every file
  const char **dirs;
  int ndirs;
  const char *stack[MAX_IMPORTS];   // canonical paths of the files being loaded (cycles)
  const char *shown[MAX_IMPORTS];   // the same files as the user's imports spell them
  const char *keys[MAX_IMPORTS];    // canonical paths of module->files (diamond imports)
  int depth;
  int cap_files, cap_decls;
} Loader;

static const char *dir_of(Arena *a, const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? arena_strndup(a, path, (size_t)(slash - path)) : ".";
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

static const char *resolve_import(Loader *l, const Decl *imp) {
  const char *name = imp->name;
  if (name[0] == '/')
    return file_exists(name) ? name : NULL;
  const char *here = arena_printf(l->arena, "%s/%s", dir_of(l->arena, imp->home->src->path), name);
  if (file_exists(here))
    return here;
  for (int i = 0; i < l->ndirs; i++) {
    const char *p = arena_printf(l->arena, "%s/%s", l->dirs[i], name);
    if (file_exists(p))
      return p;
  }
  return NULL;
}

static const char *looked_in(Loader *l, const Decl *imp) {
  const char *s = dir_of(l->arena, imp->home->src->path);
  for (int i = 0; i < l->ndirs; i++)
    s = arena_printf(l->arena, "%s, %s", s, l->dirs[i]);
  return s;
}

static bool already_loaded(const Loader *l, const char *key) {
  for (int i = 0; i < l->module->nfiles; i++)
    if (strcmp(l->keys[i], key) == 0)
      return true;
  return false;
}

static void add_decl(Loader *l, Decl *d) {
  Module *m = l->module;
  int i = namemap_get(&m->by_name, d->name);
  if (i >= 0) {
    static Note first;
    first = (Note){.span = m->decls[i]->name_span, .what = "first defined here"};
    diag_set_notes(&first);
    error_at(d->name_span, "'%s' is defined twice", d->name);
  }
  namemap_put(l->arena, &m->by_name, d->name, m->ndecls);
  ARENA_PUSH(l->arena, m->decls, m->ndecls, l->cap_decls, d);
}

static void load_file(Loader *l, const char *path, Span from) {
  char *canon = realpath(path, NULL);
  const char *key = canon ? arena_strdup(l->arena, canon) : path;
  free(canon);
  for (int i = 0; i < l->depth; i++)
    if (strcmp(l->stack[i], key) == 0) {
      const char *cycle = "";
      for (int j = i; j < l->depth; j++)
        cycle = arena_printf(l->arena, "%s%s -> ", cycle, l->shown[j]);
      error_at(from, "import cycle: %s%s", cycle, l->shown[i]);
    }
  if (already_loaded(l, key))
    return;
  if (l->depth == MAX_IMPORTS || l->module->nfiles == MAX_IMPORTS)
    error_at(from, "too many imports (the limit is %d files)", MAX_IMPORTS);
  const Source *src = source_read(l->arena, path, from);
  l->source_bytes += (int64_t)src->len;
  if (l->source_bytes > MAX_TOTAL_SOURCE_BYTES)
    error_at(from, "the files of this compilation hold more than 2 MiB of source, the limit");
  Program *prog = parse_source(l->arena, src);
  l->keys[l->module->nfiles] = key;
  ARENA_PUSH(l->arena, l->module->files, l->module->nfiles, l->cap_files, prog);
  l->shown[l->depth] = path;
  l->stack[l->depth++] = key;
  for (int i = 0; i < prog->n; i++) {
    Decl *d = prog->decls[i];
    if (d->kind == DECL_IMPORT) {
      const char *found = resolve_import(l, d);
      if (!found)
        error_at(d->name_span, "cannot find '%s' (looked in: %s)", d->name, looked_in(l, d));
      load_file(l, found, d->name_span);
    } else if (d->kind == DECL_EXPERIMENT) {
      if (prog != l->module->files[0])
        continue;   // an imported file's experiment is its own, not the importer's
      if (l->module->experiment)
        error_at(d->span, "a file has at most one experiment section");
      l->module->experiment = d;
    } else {
      add_decl(l, d);
    }
  }
  l->depth--;
}

Module *load_module(Arena *a, const char *path, const char **include_dirs, int ninclude) {
  Loader l = {.arena = a, .dirs = include_dirs, .ndirs = ninclude};
  l.module = arena_alloc(a, sizeof *l.module);
  load_file(&l, path, (Span){0});
  return l.module;
}

Decl *module_find(const Module *m, const char *name) {
  int i = namemap_get(&m->by_name, name);
  return i >= 0 ? m->decls[i] : NULL;
}
