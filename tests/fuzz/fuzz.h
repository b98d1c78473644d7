// fuzz.h: what the harnesses of the runtime's readers (tests/fuzz/fuzz_*.c) share. Each harness
// defines fuzz_one, which hands one input to a reader through libtlcrt's public API and checks
// the reader's contract on the outcome; fuzz_main.c supplies main().
//
// A harness runs as AFL++ runs it, `fuzz_X FILE` (in a persistent loop when afl-clang-fast
// built it), and as CI replays a corpus, `fuzz_X DIR|FILE...`, every file in turn. An input the
// reader refuses with a message naming it is a success; a broken contract ends the process
// (fuzz_require aborts, as a sanitizer report does), which is what AFL++ counts as a crash.
#ifndef TLC_FUZZ_H
#define TLC_FUZZ_H

#include "tlcrt.h"

#include <stddef.h>
#include <stdint.h>

// One input: its path (the readers take files) and its bytes.
void fuzz_one(const char *path, const uint8_t *bytes, size_t size);

// Aborts with the message when cond is false: the reader broke its contract on this input.
#define fuzz_require(cond, ...) ((cond) ? (void)0 : fuzz_abort(__FILE__, __LINE__, #cond, __VA_ARGS__))
_Noreturn void fuzz_abort(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// A refusal must say what was refused: a message that names `what` (the file or directory).
void fuzz_refused(const TlcError *err, const char *what);

// A directory of this process's own, for readers of several files (created on first use,
// removed at exit).
const char *fuzz_scratch(void);
// Writes bytes to fuzz_scratch()/name, replacing it; with bytes NULL, removes it.
void fuzz_put(const char *name, const uint8_t *bytes, size_t size);

// Inputs of the readers that take two files: a 4-byte little-endian length n, then n bytes of
// the first file (fewer if the input ends), then the second file. An input under 4 bytes is
// two empty files.
typedef struct FuzzParts {
  const uint8_t *first, *second;
  size_t first_size, second_size;
} FuzzParts;
FuzzParts fuzz_split(const uint8_t *bytes, size_t size);

// Reads every byte, so that a buffer shorter than its stated size shows under AddressSanitizer;
// the result keeps the compiler from dropping the reads.
uint64_t fuzz_touch(const void *bytes, size_t size);

#endif
