// Host-side view of the CUDA device, free of CUDA headers so that the N-API code (*.cpp, compiled by g++)
// can use it: errors, the device memory pool, streams and events, and the executor that launches the
// kernels of lstm_kernels.cuh. Implemented in runtime.cu and kernels.cu.
//
// Every CUDA runtime call is checked; a failure throws CudaError naming the call and the CUDA error
// (name, text, number). The bindings turn it into a JS DeepSentryError with code DS_CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "lstm_kernels.cuh"

namespace ds {
namespace cuda {

class CudaError : public std::runtime_error {
 public:
  explicit CudaError(const std::string& what) : std::runtime_error(what) {}
};

// What the runtime says about CUDA here; never throws (error says why CUDA cannot be used, empty if it can).
struct RuntimeStatus {
  int device_count = 0;
  int runtime_version = 0;
  int driver_version = 0;
  std::string error;
};
RuntimeStatus runtime_status();

// Device 0's properties that the kernels' launch choices depend on. Throws CudaError when no device.
struct DeviceInfo {
  int device = 0;
  int sm_count = 0;
  bool cooperative = false;        // cudaDevAttrCooperativeLaunch
  size_t smem_per_block_optin = 0;  // largest dynamic shared memory one block may request
  std::string name;
  int cc_major = 0, cc_minor = 0;
};
const DeviceInfo& device_info();

// ---- memory pool --------------------------------------------------------------------------------------
// Buffers come from a caching pool: sizes are rounded up to a power of two (at least 256 bytes), a freed
// buffer goes back to its size class and the next request of that class reuses it without cudaMalloc /
// cudaFree (which synchronise the device). When cudaMalloc fails the cache is released and the call retried
// once. Thread-safe.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  ~DeviceBuffer();
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }  // the size class (>= the request)
  explicit operator bool() const { return ptr_ != nullptr; }

 private:
  friend DeviceBuffer device_alloc(size_t bytes);
  DeviceBuffer(void* p, size_t b) : ptr_(p), bytes_(b) {}
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};
DeviceBuffer device_alloc(size_t bytes);  // bytes 0 gives an empty buffer

struct PoolStats {
  size_t bytes_in_use = 0, bytes_cached = 0, mallocs = 0, reuses = 0;
};
PoolStats pool_stats();
void pool_trim();  // cudaFree every cached (unused) buffer

// Size classes of the pool (exposed for the host tests of the rounding).
size_t pool_size_class(size_t bytes);

// ---- streams, events, copies ---------------------------------------------------------------------------
using StreamHandle = void*;  // a cudaStream_t
class Stream {
 public:
  Stream();  // non-blocking stream on device 0
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  StreamHandle get() const { return s_; }
  void synchronize(const char* what) const;  // waits; checks errors of all work queued so far
  void wait_quietly() const noexcept;          // waits, ignoring errors (unwinding after a failure)

 private:
  StreamHandle s_ = nullptr;
};

// Declared after a call's device buffers: if the call fails half-way, waits for the work already queued on
// the streams before those buffers go back to the pool (so a later call cannot get memory a kernel still uses).
class QuiesceOnExit {
 public:
  QuiesceOnExit(const Stream* a, const Stream* b) : a_(a), b_(b) {}
  ~QuiesceOnExit() {
    if (a_) a_->wait_quietly();
    if (b_) b_->wait_quietly();
  }
  QuiesceOnExit(const QuiesceOnExit&) = delete;
  QuiesceOnExit& operator=(const QuiesceOnExit&) = delete;

 private:
  const Stream* a_;
  const Stream* b_;
};

class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(const Stream& s);
  void wait_on(const Stream& s) const;  // s waits for the last record

 private:
  void* e_ = nullptr;
};

void copy_to_device(void* dst, const void* src, size_t bytes, const Stream& s);
void copy_to_host(void* dst, const void* src, size_t bytes, const Stream& s);

// ---- the kernel executor (native/cuda/lstm_plan.h) --------------------------------------------------------
// Launches on one stream. The recurrent passes run as one persistent cooperative kernel that keeps this
// block's recurrent weights in shared memory for all steps when the device supports cooperative launch and
// the grid fits on it at once; otherwise as one launch per step reading the weights from global memory (L2).
class DeviceExec {
 public:
  using Mem = k::RawMem;
  enum class Mode { Auto, Persistent, PerStep };
  DeviceExec(const Stream& s, Mode mode) : s_(s), mode_(mode) {}
  void set_dx_order(const Event* wait_before, Event* signal_after) {
    wait_ = wait_before;
    signal_ = signal_after;
  }

  void gemm(const k::GemmArgs<Mem>& g);
  void forward_recurrent(k::FwdArgs<Mem> a);
  void backward_recurrent(k::BwdArgs<Mem> a);
  void gather_hprev(const k::GatherArgs<Mem>& a);
  void column_sum(const float* m, int64_t rows, int64_t cols, float* out);
  void before_dx() {
    if (wait_) wait_->wait_on(s_);
  }
  void after_dx() {
    if (signal_) signal_->record(s_);
  }
  bool last_persistent() const { return last_persistent_; }  // which form the last recurrent pass used

 private:
  const Stream& s_;
  Mode mode_;
  const Event* wait_ = nullptr;
  Event* signal_ = nullptr;
  bool last_persistent_ = false;
};

}  // namespace cuda
}  // namespace ds
