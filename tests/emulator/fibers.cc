// fibers.cc: see fibers.h. On x86-64 a switch saves the callee-saved registers and the
// floating-point control words (MXCSR, x87) on the running stack, swaps stack pointers and
// restores the same from the other stack: what the System V ABI says survives a call.
#include "fibers.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace emu {

namespace {
std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

#if defined(__x86_64__)
bool with_ucontext = false;
#endif

// makecontext passes int arguments only: the pointers travel in halves.
void trampoline(unsigned fn_hi, unsigned fn_lo, unsigned arg_hi, unsigned arg_lo) {
  auto fn = reinterpret_cast<void (*)(void *)>((static_cast<std::uintptr_t>(fn_hi) << 32) | fn_lo);
  auto arg = reinterpret_cast<void *>((static_cast<std::uintptr_t>(arg_hi) << 32) | arg_lo);
  fn(arg);
  __builtin_trap();
}

void ucontext_start(Fiber *f, const Stack &stack, void (*fn)(void *), void *arg) {
  getcontext(&f->context);
  f->context.uc_stack.ss_sp = static_cast<char *>(stack.base) + page_size();
  f->context.uc_stack.ss_size = stack.size;
  f->context.uc_link = nullptr;
  auto fp = reinterpret_cast<std::uintptr_t>(fn), ap = reinterpret_cast<std::uintptr_t>(arg);
  makecontext(&f->context, reinterpret_cast<void (*)()>(trampoline), 4, static_cast<unsigned>(fp >> 32),
              static_cast<unsigned>(fp), static_cast<unsigned>(ap >> 32), static_cast<unsigned>(ap));
}
}  // namespace

void fiber_use_ucontext(bool yes) {
#if defined(__x86_64__)
  with_ucontext = yes;
#else
  (void)yes;
#endif
}

bool stack_map(Stack *s, std::size_t size) {
  std::size_t page = page_size();
  size = (size + page - 1) / page * page;
  void *p = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return false;
  if (mprotect(p, page, PROT_NONE) != 0) {
    munmap(p, size + page);
    return false;
  }
  s->base = p;
  s->size = size;
  return true;
}

void stack_unmap(Stack *s) {
  if (s->base)
    munmap(s->base, s->size + page_size());
  s->base = nullptr;
}

bool Stack::contains(const void *p) const {
  auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(base);
  return base && a >= b && a < b + page_size() + size;
}

bool Stack::in_guard(const void *p) const {
  auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(base);
  return base && a >= b && a < b + page_size();
}

#if defined(__x86_64__)

extern "C" void tlc_emu_fiber_switch(void **save_sp, void *load_sp);
extern "C" void tlc_emu_fiber_entry(void);

// tlc_emu_fiber_switch(save_sp, load_sp): pushes rbp, rbx, r12-r15 and the control words,
// stores rsp in *save_sp, loads load_sp and pops the same from there. A new fiber's stack is
// laid out (fiber_start) so that the pops land in tlc_emu_fiber_entry with r12 = arg and
// r13 = fn, and rsp 16-byte aligned as a call requires.
__asm__(
    ".text\n"
    ".globl tlc_emu_fiber_switch\n"
    ".hidden tlc_emu_fiber_switch\n"
    ".type tlc_emu_fiber_switch, @function\n"
    "tlc_emu_fiber_switch:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  subq $8, %rsp\n"
    "  stmxcsr (%rsp)\n"
    "  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n"
    "  fldcw 4(%rsp)\n"
    "  addq $8, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size tlc_emu_fiber_switch, .-tlc_emu_fiber_switch\n"
    ".globl tlc_emu_fiber_entry\n"
    ".hidden tlc_emu_fiber_entry\n"
    ".type tlc_emu_fiber_entry, @function\n"
    "tlc_emu_fiber_entry:\n"
    "  movq %r12, %rdi\n"
    "  callq *%r13\n"
    "  ud2\n"
    ".size tlc_emu_fiber_entry, .-tlc_emu_fiber_entry\n");

void fiber_start(Fiber *f, const Stack &stack, void (*fn)(void *), void *arg) {
  if (with_ucontext) {
    ucontext_start(f, stack, fn, arg);
    return;
  }
  auto top = (reinterpret_cast<std::uintptr_t>(stack.base) + page_size() + stack.size) & ~std::uintptr_t{15};
  auto *slot = reinterpret_cast<std::uint64_t *>(top);
  std::uint32_t control[2] = {0, 0};
  __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(control[0]), "=m"(control[1]));
  slot[-1] = 0;                                                      // padding: entry sees rsp % 16 == 0
  slot[-2] = 0;
  slot[-3] = reinterpret_cast<std::uint64_t>(&tlc_emu_fiber_entry);  // ret
  slot[-4] = 0;                                                      // rbp
  slot[-5] = 0;                                                      // rbx
  slot[-6] = reinterpret_cast<std::uint64_t>(arg);                   // r12
  slot[-7] = reinterpret_cast<std::uint64_t>(fn);                    // r13
  slot[-8] = 0;                                                      // r14
  slot[-9] = 0;                                                      // r15
  std::memcpy(&slot[-10], control, sizeof control);                  // mxcsr, x87 control word
  f->sp = &slot[-10];
}

void fiber_switch(Fiber *from, Fiber *to) {
  if (with_ucontext)
    swapcontext(&from->context, &to->context);
  else
    tlc_emu_fiber_switch(&from->sp, to->sp);
}

#else

void fiber_start(Fiber *f, const Stack &stack, void (*fn)(void *), void *arg) { ucontext_start(f, stack, fn, arg); }

void fiber_switch(Fiber *from, Fiber *to) { swapcontext(&from->context, &to->context); }

#endif

}  // namespace emu
