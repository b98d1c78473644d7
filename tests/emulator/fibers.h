// fibers.h: user-mode contexts, one per CUDA thread that can wait for others. Switching is a
// few instructions on x86-64 (fibers.cc); other architectures use ucontext, whose
// swapcontext makes a system call for the signal mask and is many times slower. x86-64 can
// use ucontext too (TLC_EMU_SWITCH=ucontext), so that the fallback is tested where CI runs.
#ifndef TLC_EMU_FIBERS_H
#define TLC_EMU_FIBERS_H

#include <ucontext.h>

#include <cstddef>

namespace emu {

struct Fiber {
  void *sp = nullptr;   // x86-64: the saved stack pointer; the registers lie on that stack
  ucontext_t context;   // elsewhere, or with TLC_EMU_SWITCH=ucontext
};

// Chooses ucontext over the x86-64 switch (before any fiber starts); the only choice elsewhere.
void fiber_use_ucontext(bool yes);

// A stack for fibers: mapped on first use, with an inaccessible page below it, so an
// overflow faults (and is reported as such) instead of writing over another stack.
struct Stack {
  void *base = nullptr;   // the guard page's address
  std::size_t size = 0;   // usable bytes above the guard page
  bool contains(const void *p) const;
  bool in_guard(const void *p) const;
};
bool stack_map(Stack *s, std::size_t size);
void stack_unmap(Stack *s);

// Prepares f to run fn(arg) on the stack when first switched to; fn must never return
// (a finished thread switches away for good).
void fiber_start(Fiber *f, const Stack &stack, void (*fn)(void *), void *arg);
// Saves the running context in from and continues to.
void fiber_switch(Fiber *from, Fiber *to);

}  // namespace emu

#endif
