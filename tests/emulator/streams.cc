// streams.cc: streams, events and CUDA graphs on the emulated device, built to catch a missing
// synchronisation. Work queued on a stream of one's own (a launch, an asynchronous copy, a
// graph) runs at the latest moment CUDA allows, not when it is queued: when the host waits
// for it (cuStreamSynchronize, cuEventSynchronize, cuCtxSynchronize, cuMemFree), or when
// work that must follow it runs (a later piece of the same stream, or of a stream that
// cuStreamWaitEvent made wait for it). So a kernel that reads a buffer another stream has not
// been made to finish writing reads what was there before, and a copy from pinned memory
// that the host overwrites before waiting for it copies the new bytes: a trainer that
// forgets a wait computes another result. TLC_EMU_DROP_WAITS=K makes cuStreamWaitEvent do
// nothing from its K-th call on (1: every call), a planted missing wait for the tests to catch.
//
// The legacy default stream (a null stream) runs its work at once, after what blocking
// streams (created without CU_STREAM_NON_BLOCKING) hold. A stream being captured records its
// work in a graph instead of running it; cuGraphLaunch queues the graph's pieces, in order,
// as one piece of work. While a stream is captured, the default stream's synchronous calls
// fail (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) and void the capture, as CUDA's do. The first
// failure of queued work stays, and every later wait returns it.
#include "streams.h"

#include "driver_api.h"

#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace {

enum : int {
  kSuccess = 0, kInvalidValue = 1, kInvalidHandle = 400, kIllegalState = 401, kNotSupported = 801,
  kCaptureUnsupported = 900, kCaptureInvalidated = 901,
};

struct Piece {
  std::string what;
  emu::Work work;
};

struct Graph {
  std::vector<Piece> pieces;
};

struct Stream {
  bool blocking;
  std::deque<Piece> queue;
  unsigned long long queued = 0, done = 0;   // pieces ever queued; those run
  Graph *capture = nullptr;                 // recording, not running
  bool capture_void = false;                // a prohibited call happened during the capture
};

struct Event {
  Stream *stream = nullptr;   // recorded on this stream after its piece number `seq`; null: done
  unsigned long long seq = 0;
};

struct State {
  std::recursive_mutex mutex;
  std::set<Stream *> streams;
  std::set<Event *> events;
  std::set<Graph *> graphs, execs;
  int sticky_code = 0;        // the first failure of queued work
  std::string sticky_message;
};

State &state() {
  static State *s = new State;   // never destroyed, as the driver's own state
  return *s;
}

// TLC_EMU_DROP_WAITS=K: cuStreamWaitEvent does nothing from its K-th call on (1: ever).
bool drop_wait() {
  static const unsigned long long first = [] {
    const char *v = std::getenv("TLC_EMU_DROP_WAITS");
    char *end = nullptr;
    unsigned long long k = v && *v ? std::strtoull(v, &end, 10) : 0;
    return k > 0 && !*end ? k : ~0ull;
  }();
  static unsigned long long calls = 0;
  return ++calls >= first;
}

Stream *stream_of(void *handle) {
  auto *s = static_cast<Stream *>(handle);
  return state().streams.count(s) ? s : nullptr;
}

Event *event_of(void *handle) {
  auto *e = static_cast<Event *>(handle);
  return state().events.count(e) ? e : nullptr;
}

int sticky() {
  State &st = state();
  return st.sticky_code ? emu::driver_fail(st.sticky_code, st.sticky_message) : kSuccess;
}

// Runs s's pieces up to number `upto` (those queued before it), in order.
void drain(Stream *s, unsigned long long upto) {
  State &st = state();
  while (s->done < upto && !s->queue.empty()) {
    Piece p = std::move(s->queue.front());
    s->queue.pop_front();
    s->done++;
    if (st.sticky_code)
      continue;   // after a failure the device runs nothing more
    std::string error;
    int code = p.work(&error);
    if (code) {
      st.sticky_code = code;
      st.sticky_message = p.what + ": " + error;
    }
  }
}

void drain_blocking() {
  for (Stream *s : state().streams)
    if (s->blocking)
      drain(s, s->queued);
}

bool capturing() {
  for (Stream *s : state().streams)
    if (s->capture)
      return true;
  return false;
}

// A synchronous call while a stream is captured: refused, and the capture is void.
int refuse_during_capture(const std::string &what) {
  for (Stream *s : state().streams)
    if (s->capture)
      s->capture_void = true;
  return emu::driver_fail(kCaptureUnsupported, what + " while a stream is being captured into a graph (CUDA "
                                                      "refuses it, and the capture is void)");
}

}  // namespace

namespace emu {

int stream_submit(void *stream, const std::string &what, Work work) {
  State &st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  if (!stream) {
    if (capturing())
      return refuse_during_capture(what + " on the default stream");
    drain_blocking();
    if (int code = sticky())
      return code;
    std::string error;
    int code = work(&error);
    return code ? driver_fail(code, what + ": " + error) : kSuccess;
  }
  Stream *s = stream_of(stream);
  if (!s)
    return driver_fail(kInvalidHandle, what + " on a stream that cuStreamCreate did not make (or that was destroyed)");
  if (s->capture) {
    s->capture->pieces.push_back({what, std::move(work)});
    return kSuccess;
  }
  s->queue.push_back({what, std::move(work)});
  s->queued++;
  return kSuccess;
}

int stream_legacy_point(const std::string &what) {
  State &st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  if (capturing())
    return refuse_during_capture(what);
  drain_blocking();
  return sticky();
}

int streams_drain_all(void) {
  State &st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  if (capturing())
    return refuse_during_capture("waiting for the whole device");
  for (Stream *s : st.streams)
    drain(s, s->queued);
  return sticky();
}

}  // namespace emu

extern "C" {

#define TLC_EMU_EXPORT __attribute__((visibility("default")))

// CU_STREAM_NON_BLOCKING (1): no implicit order with the legacy default stream.
TLC_EMU_EXPORT CUresult cuStreamCreate(void **stream, unsigned flags) {
  if (!stream)
    return kInvalidValue;
  if (flags > 1)
    return emu::driver_fail(kInvalidValue, "cuStreamCreate takes flags 0 or CU_STREAM_NON_BLOCKING (1), not " +
                                               std::to_string(flags));
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  auto *s = new Stream;
  s->blocking = flags == 0;
  state().streams.insert(s);
  *stream = s;
  return kSuccess;
}

// The stream's work still runs (CUDA finishes it after the call returns).
TLC_EMU_EXPORT CUresult cuStreamDestroy_v2(void *stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  Stream *s = stream_of(stream);
  if (!s)
    return emu::driver_fail(kInvalidHandle, "cuStreamDestroy of a stream that cuStreamCreate did not make");
  if (s->capture)
    return emu::driver_fail(kIllegalState, "cuStreamDestroy of a stream being captured");
  drain(s, s->queued);
  state().streams.erase(s);
  for (Event *e : state().events)
    if (e->stream == s)
      e->stream = nullptr;   // what it marks is done
  delete s;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuStreamSynchronize(void *stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!stream)
    return static_cast<CUresult>(emu::streams_drain_all());
  Stream *s = stream_of(stream);
  if (!s)
    return emu::driver_fail(kInvalidHandle, "cuStreamSynchronize of a stream that cuStreamCreate did not make");
  if (s->capture)
    return refuse_during_capture("cuStreamSynchronize of the stream being captured");
  drain(s, s->queued);
  return sticky();
}

// The stream's later work waits for what the event marks (nothing, if it was never
// recorded): a piece that, when it runs, first runs the other stream up to the mark.
TLC_EMU_EXPORT CUresult cuStreamWaitEvent(void *stream, void *event, unsigned flags) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  Event *e = event_of(event);
  if (!e)
    return emu::driver_fail(kInvalidHandle, "cuStreamWaitEvent on an event that cuEventCreate did not make");
  if (flags)
    return emu::driver_fail(kInvalidValue, "cuStreamWaitEvent takes flags 0");
  if (drop_wait() || !e->stream)
    return kSuccess;
  Stream *other = e->stream;
  unsigned long long mark = e->seq;
  if (!stream) {
    if (capturing())
      return refuse_during_capture("cuStreamWaitEvent on the default stream");
    drain(other, mark);
    return kSuccess;
  }
  Stream *s = stream_of(stream);
  if (!s)
    return emu::driver_fail(kInvalidHandle, "cuStreamWaitEvent on a stream that cuStreamCreate did not make");
  if (s->capture)
    return emu::driver_fail(kNotSupported, "the emulator does not capture cuStreamWaitEvent into a graph");
  return static_cast<CUresult>(emu::stream_submit(stream, "a wait for an event", [other, mark](std::string *) {
    if (state().streams.count(other))
      drain(other, mark);
    return 0;
  }));
}

// CU_STREAM_CAPTURE_MODE_GLOBAL (0), THREAD_LOCAL (1) or RELAXED (2); the emulator refuses
// the default stream's synchronous calls during any capture, from any thread.
TLC_EMU_EXPORT CUresult cuStreamBeginCapture_v2(void *stream, int mode) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  if (!stream)
    return emu::driver_fail(kCaptureUnsupported, "the legacy default stream cannot be captured into a graph");
  Stream *s = stream_of(stream);
  if (!s)
    return emu::driver_fail(kInvalidHandle, "cuStreamBeginCapture on a stream that cuStreamCreate did not make");
  if (mode < 0 || mode > 2)
    return emu::driver_fail(kInvalidValue, "cuStreamBeginCapture: no capture mode " + std::to_string(mode));
  if (s->capture)
    return emu::driver_fail(kIllegalState, "cuStreamBeginCapture on a stream already being captured");
  s->capture = new Graph;
  s->capture_void = false;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuStreamEndCapture(void *stream, void **graph) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  Stream *s = stream_of(stream);
  if (!s || !graph)
    return emu::driver_fail(kInvalidValue, "cuStreamEndCapture without a stream or a place for the graph");
  if (!s->capture)
    return emu::driver_fail(kIllegalState, "cuStreamEndCapture on a stream that is not being captured");
  Graph *g = s->capture;
  s->capture = nullptr;
  *graph = nullptr;
  if (s->capture_void) {
    delete g;
    return emu::driver_fail(kCaptureInvalidated, "the capture was void: a synchronous call came during it");
  }
  state().graphs.insert(g);
  *graph = g;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuEventCreate(void **event, unsigned flags) {
  if (!event)
    return kInvalidValue;
  if (flags & ~7u)
    return emu::driver_fail(kInvalidValue, "cuEventCreate: unknown flags " + std::to_string(flags));
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  auto *e = new Event;
  state().events.insert(e);
  *event = e;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuEventDestroy_v2(void *event) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  Event *e = event_of(event);
  if (!e)
    return emu::driver_fail(kInvalidHandle, "cuEventDestroy of an event that cuEventCreate did not make");
  state().events.erase(e);
  delete e;
  return kSuccess;
}

// The event marks what the stream holds now.
TLC_EMU_EXPORT CUresult cuEventRecord(void *event, void *stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  Event *e = event_of(event);
  if (!e)
    return emu::driver_fail(kInvalidHandle, "cuEventRecord of an event that cuEventCreate did not make");
  if (!stream) {
    if (int code = emu::stream_legacy_point("cuEventRecord on the default stream"))
      return code;
    e->stream = nullptr;
    return kSuccess;
  }
  Stream *s = stream_of(stream);
  if (!s)
    return emu::driver_fail(kInvalidHandle, "cuEventRecord on a stream that cuStreamCreate did not make");
  if (s->capture)
    return emu::driver_fail(kNotSupported, "the emulator does not capture cuEventRecord into a graph");
  e->stream = s;
  e->seq = s->queued;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuEventSynchronize(void *event) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  Event *e = event_of(event);
  if (!e)
    return emu::driver_fail(kInvalidHandle, "cuEventSynchronize of an event that cuEventCreate did not make");
  if (e->stream)
    drain(e->stream, e->seq);
  return sticky();
}

// An executable graph is a copy of the graph's pieces: the graph may go, the copy stays.
TLC_EMU_EXPORT CUresult cuGraphInstantiateWithFlags(void **exec, void *graph, unsigned long long flags) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  auto *g = static_cast<Graph *>(graph);
  if (!exec || !state().graphs.count(g))
    return emu::driver_fail(kInvalidValue, "cuGraphInstantiate of a graph that cuStreamEndCapture did not make");
  if (flags)
    return emu::driver_fail(kInvalidValue, "the emulator instantiates graphs with flags 0 only");
  auto *copy = new Graph(*g);
  state().execs.insert(copy);
  *exec = copy;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuGraphLaunch(void *exec, void *stream) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  auto *g = static_cast<Graph *>(exec);
  if (!state().execs.count(g))
    return emu::driver_fail(kInvalidHandle, "cuGraphLaunch of a graph that cuGraphInstantiate did not make");
  Stream *s = stream ? stream_of(stream) : nullptr;
  if (s && s->capture)
    return emu::driver_fail(kNotSupported, "the emulator does not capture a graph's launch into another graph");
  std::vector<Piece> pieces = g->pieces;   // what it is now, whatever happens to the graph later
  return static_cast<CUresult>(emu::stream_submit(stream, "a graph", [pieces](std::string *error) {
    for (const Piece &p : pieces) {
      std::string e;
      if (int code = p.work(&e)) {
        *error = p.what + ": " + e;
        return code;
      }
    }
    return 0;
  }));
}

TLC_EMU_EXPORT CUresult cuGraphExecDestroy(void *exec) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  auto *g = static_cast<Graph *>(exec);
  if (!state().execs.erase(g))
    return emu::driver_fail(kInvalidHandle, "cuGraphExecDestroy of a graph that cuGraphInstantiate did not make");
  delete g;
  return kSuccess;
}

TLC_EMU_EXPORT CUresult cuGraphDestroy(void *graph) {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  auto *g = static_cast<Graph *>(graph);
  if (!state().graphs.erase(g))
    return emu::driver_fail(kInvalidHandle, "cuGraphDestroy of a graph that cuStreamEndCapture did not make");
  delete g;
  return kSuccess;
}

}  // extern "C"
