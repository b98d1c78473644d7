// streams.h: streams, events and graphs of the emulated device (streams.cc), and what the
// driver's other parts (driver.cc) tell them.
#ifndef TLC_EMU_STREAMS_H
#define TLC_EMU_STREAMS_H

#include <functional>
#include <string>

namespace emu {

// One piece of work a stream holds: a launch or a copy. It returns 0, or a CUDA error code
// with *error its message.
using Work = std::function<int(std::string *error)>;

// Runs `work` now on the legacy default stream (stream null: after what blocking streams
// hold), or queues it on `stream`, or records it in the graph that stream is capturing.
// Returns 0 or an error code (set through the driver's failure function).
int stream_submit(void *stream, const std::string &what, Work work);
// The legacy default stream's synchronous operations (a copy, cuCtxSynchronize) start here:
// not while a stream is captured, and after what blocking streams hold. 0 or an error code.
int stream_legacy_point(const std::string &what);
// Every stream's work done (cuCtxSynchronize, cuMemFree); the first failure of queued work.
int streams_drain_all(void);
// The driver's failure: sets what cuGetErrorString returns for code (driver.cc).
int driver_fail(int code, const std::string &message);

}  // namespace emu

#endif
