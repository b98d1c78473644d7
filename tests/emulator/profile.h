// profile.h: TLC_EMU_PROFILE=FILE, what each launch moves through device memory and how many
// tensor-core instructions it issues (profile.cc), for a roofline estimate of the GPU's time.
#ifndef TLC_EMU_PROFILE_H
#define TLC_EMU_PROFILE_H

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "launch.h"

namespace emu {

struct Worker;

// Whether TLC_EMU_PROFILE names a file: read once. Off, nothing below is called.
bool profiling();
// The compiler that counts best when TLC_EMU_CXX names none: clang++ if it is on PATH (it
// instruments the accesses left after optimisation; GCC drops the check of a store to an
// address it has just loaded, so a read-modify-write would count no write), else fallback.
std::string profile_compiler(const std::string &fallback);
// The compiler flags that make a program report every load and store (device.h's
// TLC_EMU_PROFILE section); part of the program's cache key.
std::vector<std::string> profile_flags(const std::string &cxx);
// Before a launch: the device allocations, [start, end), where an access counts.
void profile_begin(std::vector<std::pair<std::uintptr_t, std::uintptr_t>> allocations);
// Before each block: whether its accesses are logged (TLC_EMU_PROFILE_BLOCKS samples the first
// warp of a few blocks spread evenly; the rest run unlogged and the counts are scaled to the
// whole launch).
void profile_block_begin(const Launch &l, unsigned long long linear);
// One access of the running thread (the program's instrumentation and cp.async call it).
void profile_access(const void *address, unsigned size, int write, const void *site);
// One lane's part of a warp's mma instruction.
void profile_mma_lane();
// At the end of each block: its warps' accesses folded into the launch's counts.
void profile_block_end(Worker &w);
// After the launch: its line in the file.
void profile_end(const Launch &l);

// abi.h's table entry.
void api_access(const void *address, unsigned size, int write, const void *site);

}  // namespace emu

#endif
