// program.h: a CUDA program made runnable on the CPU: its text with the kernel table
// appended (scan.cc finds the kernels), compiled by the system C++ compiler into a shared
// object, cached, and loaded (program.cc).
#ifndef TLC_EMU_PROGRAM_H
#define TLC_EMU_PROGRAM_H

#include <cstddef>
#include <string>
#include <vector>

#include "abi.h"

namespace emu {

struct Program {
  void *handle = nullptr;
  std::string origin;                    // where the text came from, for messages
  const TlcEmuKernel *kernels = nullptr; // ended by a null name
  TlcEmuThread **(*slot)(void) = nullptr;
  std::size_t tls_size = 0;              // its thread-local block (every kernel's static __shared__ variables)
};

// What the emulator reads in the program's text.
struct KernelInfo {
  std::string name;
  bool can_sync;   // names a barrier or warp operation, directly or through what it calls
  std::size_t static_shared;   // the bytes of its own static __shared__ declarations
};
// The extern "C" __global__ functions of the text, in order. A text it cannot follow (braces
// that do not balance) gives every kernel can_sync, which is always safe.
std::vector<KernelInfo> scan_kernels(const std::string &text);

// Compiles (or finds in the cache) and loads the text; include_dir is searched for the
// text's own #include "..." files. nullptr with *error on failure.
Program *program_load(const std::string &text, const std::string &origin, const std::string &include_dir,
                      std::string *error);
void program_unload(Program *p);
const TlcEmuKernel *program_kernel(const Program *p, const char *name);

// The text of the trainer running this process: the prelude and every function of the kernel
// bundle in its ELF section .tlc_bundle. "" with *error when there is none.
std::string bundle_source(std::string *error);

}  // namespace emu

#endif
