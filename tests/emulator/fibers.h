// fibers.h: user-mode contexts, one per CUDA thread that can wait for others. Switching is a
// few instructions on x86-64 (fibers.cc); other architectures use ucontext, whose
// swapcontext makes a system call for the signal mask and is many times slower.
#ifndef TLC_EMU_FIBERS_H
#define TLC_EMU_FIBERS_H

#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emu {

struct Fiber {
#if defined(__x86_64__)
  void *sp = nullptr;   // the saved stack pointer; the registers lie on that stack
#else
  ucontext_t context;
#endif
};

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
