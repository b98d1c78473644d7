// atomic_write.c: files users keep (exported weights, logits) are written whole or not at all.
//
// Contract (tlcrt.h, section "atomic_write.c"): the parts go to "path.tmp.<pid>", which is
// synced and renamed over path, then the directory is synced. On any failure the temporary
// file is removed and whatever was at path before is untouched: a full disk (ENOSPC from the
// write, the sync or the close) costs the new file only. Checkpoints are written through it too.
#include "tlcrt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const uint8_t *bytes, size_t size) {
  while (size > 0) {
    ssize_t w = write(fd, bytes, size);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    bytes += w;
    size -= (size_t)w;
  }
  return 0;
}

// Makes the rename durable. Best effort: some file systems refuse fsync on a directory,
// and by then the new file is complete either way.
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir)
    return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

// Writes every part and syncs; returns the failing step's name, or NULL.
static const char *fill(int fd, const TlcBytes *parts, int nparts) {
  for (int i = 0; i < nparts; i++)
    if (write_all(fd, parts[i].data, parts[i].size) != 0)
      return "write";
  return fsync(fd) != 0 ? "sync" : NULL;
}

int tlc_write_atomic(const char *path, const TlcBytes *parts, int nparts, TlcError *err) {
  size_t len = strlen(path) + 32;
  char *tmp = malloc(len);
  if (!tmp)
    return tlc_fail(err, "%s: out of memory", path);
  // The pid keeps two processes writing the same file from sharing a temporary.
  snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    int saved = errno;
    tlc_fail(err, "%s: cannot create %s: %s", path, tmp, strerror(saved));
    free(tmp);
    return -1;
  }
  const char *failed = fill(fd, parts, nparts);
  int saved = errno;
  if (close(fd) != 0 && !failed)
    failed = "close", saved = errno;
  if (!failed && rename(tmp, path) != 0)
    failed = "rename", saved = errno;
  if (failed) {
    unlink(tmp);
    tlc_fail(err, "%s: cannot %s %s: %s", path, failed, tmp, strerror(saved));
    free(tmp);
    return -1;
  }
  free(tmp);
  sync_parent_dir(path);
  return 0;
}
