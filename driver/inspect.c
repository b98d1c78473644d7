// inspect.c: `tlc inspect TRAINER [KERNEL] [--ptx]`, the GPU kernels inside a built trainer.
// The bundle lives in the trainer's ELF section .tlc_bundle; it is found through the
// section headers, every offset checked against the file, then verified as a FlatBuffer.
#include "tlc.h"
#include "driver.h"
#include "tlcrt.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *read_whole(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fatal("cannot open '%s': %s", path, strerror(errno));
  unsigned char *data = NULL;
  size_t cap = 0, len = 0, got;
  do {
    if (len == cap && !(data = realloc(data, cap = cap ? 2 * cap : 1 << 20)))
      fatal("out of memory reading '%s'", path);
    got = fread(data + len, 1, cap - len, f);
    len += got;
  } while (got > 0);
  bool failed = ferror(f);
  fclose(f);
  if (failed)
    fatal("cannot read '%s'", path);
  *size = len;
  return data;
}

static bool inside(size_t size, uint64_t offset, uint64_t len) { return offset <= size && len <= size - offset; }

// The bytes of section `name`, or NULL when the file has no such section.
static const unsigned char *elf_section(const char *path, const unsigned char *data, size_t size, const char *name,
                                        size_t *len) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)data;
  if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
    fatal("'%s' is not a trainer built by tlc (not a 64-bit ELF executable)", path);
  if (eh->e_shentsize != sizeof(Elf64_Shdr) || !inside(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) ||
      eh->e_shstrndx >= eh->e_shnum || eh->e_shoff % 8)
    fatal("'%s' is damaged: its ELF section table is out of bounds", path);
  const Elf64_Shdr *sections = (const Elf64_Shdr *)(data + eh->e_shoff);
  const Elf64_Shdr *names = &sections[eh->e_shstrndx];
  if (!inside(size, names->sh_offset, names->sh_size))
    fatal("'%s' is damaged: its section names are out of bounds", path);
  for (int i = 0; i < eh->e_shnum; i++) {
    const Elf64_Shdr *s = &sections[i];
    size_t want = strlen(name) + 1;
    if (s->sh_name >= names->sh_size || names->sh_size - s->sh_name < want ||
        memcmp(data + names->sh_offset + s->sh_name, name, want))
      continue;
    if (s->sh_type != SHT_PROGBITS || !inside(size, s->sh_offset, s->sh_size))
      fatal("'%s' is damaged: section %s is out of bounds", path, name);
    *len = s->sh_size;
    return data + s->sh_offset;
  }
  return NULL;
}

static void list_kernels(const char *path, const TlcBundle *b) {
  printf("%s: %d kernel launches, %d distinct functions; NVRTC %s, cubin for %s (%zu bytes), PTX (%zu bytes), "
         "%d threads per block\n\n",
         path, b->nlaunches, b->nfunctions, b->nvrtc, b->arch, b->cubin_size, b->ptx_size, b->block);
  printf("%5s  %-44s %9s  %s\n", "#", "kernel (function when shared)", "blocks", "what it computes");
  for (int i = 0; i < b->nlaunches; i++) {
    const TlcBundleLaunch *l = &b->launches[i];
    const char *f = b->functions[l->function].name;
    char label[256];
    snprintf(label, sizeof label, "%s%s%s", l->kernel, strcmp(f, l->kernel) ? " = " : "", strcmp(f, l->kernel) ? f : "");
    printf("%5d  %-44s %9lld  %s\n", i, label, (long long)l->grid, l->comment);
  }
  printf("\n`tlc inspect %s KERNEL` prints a kernel's CUDA C; add --ptx for its PTX.\n", path);
}

// A kernel by its own name or its function's: the function's index, or -1.
static int find_function(const TlcBundle *b, const char *name) {
  for (int i = 0; i < b->nfunctions; i++)
    if (!strcmp(b->functions[i].name, name))
      return i;
  for (int i = 0; i < b->nlaunches; i++)
    if (!strcmp(b->launches[i].kernel, name))
      return (int)b->launches[i].function;
  return -1;
}

// The PTX of one entry: from its .entry line to the closing brace of its body.
static void print_ptx(const TlcBundle *b, const char *function) {
  const char *ptx = b->ptx;
  char *key = malloc(strlen(function) + 32);
  sprintf(key, ".entry %s(", function);
  const char *start = strstr(ptx, key);
  free(key);
  const char *end = start ? strstr(start, "\n}\n") : NULL;
  if (!start || !end)
    fatal("the PTX has no entry %s", function);
  while (start > ptx && start[-1] != '\n')
    start--;
  fwrite(start, 1, (size_t)(end + 3 - start), stdout);
}

int inspect_main(int argc, char **argv) {
  const char *path = NULL, *kernel = NULL;
  bool ptx = false;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--ptx"))
      ptx = true;
    else if (argv[i][0] == '-')
      fatal("tlc inspect: unknown option '%s' (usage: tlc inspect TRAINER [KERNEL] [--ptx])", argv[i]);
    else if (!path)
      path = argv[i];
    else if (!kernel)
      kernel = argv[i];
    else
      fatal("tlc inspect: too many arguments (usage: tlc inspect TRAINER [KERNEL] [--ptx])");
  }
  if (!path)
    fatal("usage: tlc inspect TRAINER [KERNEL] [--ptx]");
  size_t size, len = 0;
  unsigned char *data = read_whole(path, &size);
  const unsigned char *section = elf_section(path, data, size, ".tlc_bundle", &len);
  if (!section)
    fatal("'%s' has no GPU kernels: it is not a tlc trainer, or tlc built it without NVRTC (CPU only)", path);
  // The FlatBuffers verifier wants its buffer aligned as the writer aligned it.
  void *aligned = aligned_alloc(16, (len + 15) / 16 * 16);
  memcpy(aligned, section, len);
  TlcBundle b;
  TlcError err;
  if (tlc_bundle_read(aligned, len, &b, &err))
    fatal("%s: %s", path, err.msg);
  if (!kernel) {
    list_kernels(path, &b);
  } else {
    int f = find_function(&b, kernel);
    if (f < 0)
      fatal("%s has no kernel '%s' (`tlc inspect %s` lists them)", path, kernel, path);
    if (ptx)
      print_ptx(&b, b.functions[f].name);
    else
      fputs(b.functions[f].source, stdout);
  }
  tlc_bundle_free(&b);
  free(aligned);
  free(data);
  return 0;
}
