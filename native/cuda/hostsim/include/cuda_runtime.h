// A host stand-in for the part of the CUDA runtime API that native/cuda/runtime.cu uses (the "hostsim" build,
// CMake target deepsentry_hostsim; see native/cuda/hostsim/README.md). It exists so that the HOST side of the CUDA
// path — CudaLstm's argument checks, device-memory handling and pool, streams and events, the launch plans, the
// tfjs `deepsentry-cuda` backend — runs in CI, where there is no GPU. It says nothing about the GPU itself.
//
// What it models, and why each choice:
//   - Device memory is host memory from malloc, filled with 0xFF bytes (float NaN) so that a result read from
//     memory no kernel wrote shows up as NaN. Every allocation is registered: a copy whose device side is not
//     inside one live allocation, or a cudaFree of an unknown pointer, fails with cudaErrorInvalidValue, as
//     the real runtime does for a bad pointer (more strictly: it also catches copies running past the end).
//   - Streams are queues. Copies and kernels (native/cuda/hostsim/device_exec.cpp) are queued on their stream
//     and run only when the host waits for that stream (cudaStreamSynchronize), when another stream waits on an
//     event recorded after them (cudaStreamWaitEvent), or when cudaFree synchronises the device. So host code
//     that reads a result before synchronising, or a second stream that uses the first one's output without an
//     event, gets a wrong (NaN, stale) result here. This is stricter than CUDA's pageable-memory copies, which
//     happen to block the host; the bindings must not rely on that (a pinned buffer would break it).
//   - One device with 4 SMs (small grids keep the host run fast), cooperative launch, and the H100's shared
//     memory limits, so that the persistent kernel's fit check sees a real device's limits.
// Everything runs on the calling thread under one lock, in queue order: nothing here runs concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

typedef int cudaError_t;
enum {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidResourceHandle = 400,
};
struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
enum cudaDeviceAttr { cudaDevAttrCooperativeLaunch = 95, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
#define cudaStreamNonBlocking 1
#define cudaEventDisableTiming 2
struct cudaDeviceProp {
  char name[256];
  int multiProcessorCount;
  int major;
  int minor;
};

namespace ds_hostsim {

constexpr int kSmCount = 4;
constexpr int kSmemPerBlockOptin = 232448;  // bytes, H100 (sm_90)
constexpr int kSmemPerSm = 233472;          // bytes, H100
constexpr int kMaxThreadsPerSm = 2048;
constexpr int kMaxBlocksPerSm = 32;

// A stream: the operations queued on it and not yet run.
struct StreamQ {
  std::deque<std::function<void()>> pending;
  uint64_t queued = 0, done = 0;  // operations ever queued / run: an event is a position in this count
};
struct EventQ {
  StreamQ* stream = nullptr;  // where it was last recorded (null: never recorded, complete)
  uint64_t position = 0;      // the stream's `queued` at the record
};

struct State {
  std::recursive_mutex mu;
  std::map<uintptr_t, size_t> allocations;  // live device allocations: start → bytes
  std::map<StreamQ*, bool> streams;         // live streams
  cudaError_t last_error = cudaSuccess;     // what cudaGetLastError returns (and clears)
};
inline State& state() {
  static State* s = new State();  // never destroyed: buffers may be freed during static destruction
  return *s;
}
inline cudaError_t fail(cudaError_t e) {
  state().last_error = e;
  return e;
}
// Runs a stream's queued operations until `done` reaches `upto`.
inline void run_until(StreamQ* s, uint64_t upto) {
  while (s->done < upto && !s->pending.empty()) {
    std::function<void()> op = std::move(s->pending.front());
    s->pending.pop_front();
    op();
    s->done++;
  }
}
inline void run_all(StreamQ* s) { run_until(s, s->queued); }
// True when [p, p + n) lies inside one live allocation.
inline bool is_device_range(const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto& al = state().allocations;
  auto it = al.upper_bound(a);
  if (it == al.begin()) return false;
  --it;
  return a >= it->first && a - it->first <= it->second && n <= it->second - (a - it->first);
}
// Queues an operation on a stream (the kernels of device_exec.cpp and the copies below).
inline cudaError_t enqueue(cudaStream_t stream, std::function<void()> op) {
  std::lock_guard<std::recursive_mutex> lock(state().mu);
  StreamQ* s = reinterpret_cast<StreamQ*>(stream);
  if (!state().streams.count(s)) return fail(cudaErrorInvalidResourceHandle);
  s->pending.push_back(std::move(op));
  s->queued++;
  return cudaSuccess;
}
// What cudaOccupancyMaxActiveBlocksPerMultiprocessor reports for a kernel of `threads` threads and `smem`
// bytes of dynamic shared memory on the stand-in device (registers are not modelled).
inline int max_active_blocks_per_sm(int threads, size_t smem) {
  int by_threads = kMaxThreadsPerSm / (threads > 0 ? threads : 1);
  int by_smem = smem == 0 ? kMaxBlocksPerSm : static_cast<int>(kSmemPerSm / smem);
  int n = by_threads < by_smem ? by_threads : by_smem;
  return n < kMaxBlocksPerSm ? n : kMaxBlocksPerSm;
}

}  // namespace ds_hostsim

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    default: return "cudaErrorUnknown";
  }
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument (host stand-in: pointer or range is not device memory)";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    default: return "unknown error";
  }
}
inline cudaError_t cudaRuntimeGetVersion(int* v) { *v = 13000; return cudaSuccess; }
inline cudaError_t cudaDriverGetVersion(int* v) { *v = 13000; return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaGetLastError() {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  cudaError_t e = ds_hostsim::state().last_error;
  ds_hostsim::state().last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : ds_hostsim::fail(cudaErrorInvalidValue); }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::memset(p, 0, sizeof(*p));
  std::strcpy(p->name, "host stand-in (no GPU)");
  p->multiProcessorCount = ds_hostsim::kSmCount;
  p->major = 9;
  p->minor = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
  switch (a) {
    case cudaDevAttrCooperativeLaunch: *v = 1; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = ds_hostsim::kSmemPerBlockOptin; return cudaSuccess;
  }
  return ds_hostsim::fail(cudaErrorInvalidValue);
}

inline cudaError_t cudaMalloc(void** p, size_t n) {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  *p = std::malloc(n ? n : 1);
  if (!*p) return ds_hostsim::fail(cudaErrorMemoryAllocation);
  std::memset(*p, 0xff, n);  // NaN in every float: unwritten results are visible
  ds_hostsim::state().allocations[reinterpret_cast<uintptr_t>(*p)] = n;
  return cudaSuccess;
}
// Like the real cudaFree, synchronises the device first (runs every stream's queue).
inline cudaError_t cudaFree(void* p) {
  auto& st = ds_hostsim::state();
  std::lock_guard<std::recursive_mutex> lock(st.mu);
  if (!p) return cudaSuccess;
  for (auto& kv : st.streams) ds_hostsim::run_all(kv.first);
  auto it = st.allocations.find(reinterpret_cast<uintptr_t>(p));
  if (it == st.allocations.end()) return ds_hostsim::fail(cudaErrorInvalidValue);
  st.allocations.erase(it);
  std::free(p);
  return cudaSuccess;
}
// The device side must lie in one live allocation (checked when queued, which is when CUDA checks it); the
// copy itself runs when the stream's queue is run.
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind kind, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  const void* dev = kind == cudaMemcpyHostToDevice ? d : s;
  if ((kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToHost) || !ds_hostsim::is_device_range(dev, n))
    return ds_hostsim::fail(cudaErrorInvalidValue);
  return ds_hostsim::enqueue(stream, [d, s, n]() { std::memcpy(d, s, n); });
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, int) {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  auto* q = new ds_hostsim::StreamQ();
  ds_hostsim::state().streams[q] = true;
  *s = reinterpret_cast<cudaStream_t>(q);
  return cudaSuccess;
}
// Work still queued completes (as on the device), then the stream is gone.
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  auto* q = reinterpret_cast<ds_hostsim::StreamQ*>(s);
  if (!ds_hostsim::state().streams.erase(q)) return ds_hostsim::fail(cudaErrorInvalidResourceHandle);
  ds_hostsim::run_all(q);
  delete q;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  auto* q = reinterpret_cast<ds_hostsim::StreamQ*>(s);
  if (!ds_hostsim::state().streams.count(q)) return ds_hostsim::fail(cudaErrorInvalidResourceHandle);
  ds_hostsim::run_all(q);
  return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, int) {
  *e = reinterpret_cast<cudaEvent_t>(new ds_hostsim::EventQ());
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<ds_hostsim::EventQ*>(e);
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  auto* q = reinterpret_cast<ds_hostsim::StreamQ*>(s);
  if (!ds_hostsim::state().streams.count(q)) return ds_hostsim::fail(cudaErrorInvalidResourceHandle);
  auto* ev = reinterpret_cast<ds_hostsim::EventQ*>(e);
  ev->stream = q;
  ev->position = q->queued;
  return cudaSuccess;
}
// Everything queued on the event's stream before its record runs now, so it precedes whatever `s` queues next
// (and nothing else is ordered: `s`'s own earlier operations stay queued).
inline cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  auto* q = reinterpret_cast<ds_hostsim::StreamQ*>(s);
  if (!ds_hostsim::state().streams.count(q)) return ds_hostsim::fail(cudaErrorInvalidResourceHandle);
  auto* ev = reinterpret_cast<ds_hostsim::EventQ*>(e);
  if (ev->stream && ds_hostsim::state().streams.count(ev->stream)) ds_hostsim::run_until(ev->stream, ev->position);
  return cudaSuccess;
}
