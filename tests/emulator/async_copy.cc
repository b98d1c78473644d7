// async_copy.cc: cp.async.cg.shared.global (16 bytes) and cp.async.ca.shared.global (8 bytes)
// with commit_group and wait_group, per thread as
// the PTX ISA defines them (section "Data Movement and Conversion Instructions: cp.async",
// and the commit_group and wait_group sections after it): a copy belongs to the group the
// thread's next commit_group closes; wait_group N returns once at most the N most recent
// committed groups are pending. A copy here happens at the latest moment the ISA allows (when
// a wait_group that covers its group returns), and its destination bytes are poisoned
// (all ones: NaN as float or bf16) when it is issued, so reading the destination before the
// wait, or from another thread without a barrier after it, reads NaN.
#include <cstring>

#include "block.h"
#include "profile.h"

namespace emu {

namespace {

std::string address_text(const void *p) {
  char text[32];
  snprintf(text, sizeof text, "%p", p);
  return text;
}

void perform(const std::vector<AsyncCopy> &group) {
  for (const AsyncCopy &c : group) {
    std::memcpy(c.shared, c.global, static_cast<std::size_t>(c.src_bytes));
    std::memset(c.shared + c.src_bytes, 0, static_cast<std::size_t>(c.size - c.src_bytes));
  }
}

// A copy of size bytes (16: cp.async.cg, 8: cp.async.ca), both addresses aligned to it;
// site is the program's instruction, for profiling.
void issue(void *shared, const void *global, int size, int src_bytes, const void *site) {
  Worker &w = worker();
  Thread &t = *w.current;
  std::string what = "cp.async of " + std::to_string(size) + " bytes";
  if (src_bytes < 0 || src_bytes > size)
    block_fail(w, kLaunchFailed, where(w, t) + ": " + what + " with src-size " + std::to_string(src_bytes) +
                                     "; it must be 0 to " + std::to_string(size));
  if (reinterpret_cast<std::uintptr_t>(shared) % size ||
      (src_bytes && reinterpret_cast<std::uintptr_t>(global) % size))
    block_fail(w, kMisaligned, where(w, t) + ": " + what + " from " + address_text(global) + " to " +
                                   address_text(shared) + ": both addresses must be " + std::to_string(size) +
                                   "-byte aligned");
  if (!in_shared_memory(w, shared, size))
    block_fail(w, kIllegalAddress, where(w, t) + ": cp.async destination " + address_text(shared) +
                                       " is not in shared memory");
  std::memset(shared, 0xff, static_cast<std::size_t>(size));
  if (profiling())
    profile_access(global, static_cast<unsigned>(src_bytes), 0, site);
  t.open_copies.push_back(
      {static_cast<unsigned char *>(shared), static_cast<const unsigned char *>(global), size, src_bytes});
}

}  // namespace

void async_copy_reset(Thread &t) {
  t.open_copies.clear();
  t.copy_groups.clear();
}

// The call's return address tells the program's copy instructions apart (profile.cc).
void api_cp_async16(void *shared, const void *global, int src_bytes) {
  issue(shared, global, 16, src_bytes, __builtin_return_address(0));
}
void api_cp_async8(void *shared, const void *global, int src_bytes) {
  issue(shared, global, 8, src_bytes, __builtin_return_address(0));
}

void api_cp_async_commit(void) {
  Thread &t = *worker().current;
  t.copy_groups.push_back(std::move(t.open_copies));   // an empty group is a group too
  t.open_copies.clear();
}

void api_cp_async_wait(int pending) {
  Thread &t = *worker().current;
  while (t.copy_groups.size() > static_cast<std::size_t>(pending)) {
    perform(t.copy_groups.front());
    t.copy_groups.pop_front();
  }
}

}  // namespace emu
