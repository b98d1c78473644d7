// launch.h: one kernel launch and the OS threads that run its blocks (launch.cc).
#ifndef TLC_EMU_LAUNCH_H
#define TLC_EMU_LAUNCH_H

#include <cstddef>
#include <string>

#include "abi.h"

namespace emu {

struct Program;

struct Launch {
  const Program *program;
  const TlcEmuKernel *kernel;
  TlcEmuDim grid, block;
  unsigned shared_bytes;          // dynamic shared memory per block
  void **params;
  unsigned long long number;      // this process's launches before it: part of every block's order
  unsigned long long seed;        // TLC_EMU_SEED
  bool all_fibers;                // TLC_EMU_FIBERS=1: every kernel on fibers, whatever its source
};

// Runs every block; returns "" or the first failure's message, with *code the CUDA error.
std::string launch_run(const Launch &l, int *code);
// The emulator's settings from the environment, read once.
struct Settings {
  unsigned long long seed;
  bool all_fibers;
  int threads;                    // OS threads that run blocks
  std::size_t stack_bytes;        // per fiber
  bool stats;
  bool ucontext;                  // TLC_EMU_SWITCH=ucontext: the portable fiber switch
};
const Settings &settings();
// TLC_EMU_STATS=1: what the launches cost, printed when the process ends.
void stats_print(void);

}  // namespace emu

#endif
