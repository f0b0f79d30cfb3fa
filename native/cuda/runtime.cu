// CUDA runtime plumbing: status, device properties, the memory pool, streams, events and copies.
// Only the runtime API, with cudart linked statically, so the addon loads where there is no driver.
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "check.cuh"
#include "device.h"

namespace ds {
namespace cuda {

std::string error_text(const char* what, int code) {
  cudaError_t e = static_cast<cudaError_t>(code);
  return std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e) + " (" +
         std::to_string(code) + ")";
}

[[noreturn]] void throw_cuda(const char* what, int code) { throw CudaError(error_text(what, code)); }

RuntimeStatus runtime_status() {
  RuntimeStatus st;
  int v = 0;
  if (cudaRuntimeGetVersion(&v) == cudaSuccess) st.runtime_version = v;
  v = 0;
  if (cudaDriverGetVersion(&v) == cudaSuccess) st.driver_version = v;  // 0 when there is no driver
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    st.error = error_text("cudaGetDeviceCount", e);
    cudaGetLastError();  // clear the sticky-free error so later calls report their own
    return st;
  }
  st.device_count = n;
  if (n == 0) st.error = "cudaGetDeviceCount: no CUDA device";
  return st;
}

static DeviceInfo query_device() {
  DeviceInfo d;
  int n = 0;
  DS_CUDA_CHECK(cudaGetDeviceCount(&n));
  if (n == 0) throw CudaError("cudaGetDeviceCount: no CUDA device");
  DS_CUDA_CHECK(cudaSetDevice(0));
  cudaDeviceProp p;
  DS_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  d.device = 0;
  d.sm_count = p.multiProcessorCount;
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  int coop = 0;
  DS_CUDA_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, 0));
  d.cooperative = coop != 0;
  int optin = 0;
  DS_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  d.smem_per_block_optin = static_cast<size_t>(optin);
  return d;
}

const DeviceInfo& device_info() {
  // Queried once; a failure is not cached, so it is reported again (with its CUDA error) on the next call.
  static std::mutex mu;
  static DeviceInfo* info = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!info) info = new DeviceInfo(query_device());  // never freed: outlives every user at exit
  return *info;
}

// ---- pool ------------------------------------------------------------------------------------------------
size_t pool_size_class(size_t bytes) {
  size_t c = 256;
  while (c < bytes) c <<= 1;
  return c;
}

namespace {
struct Pool {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_lists;
  PoolStats stats;
};
// Never destroyed: at process exit the CUDA runtime may already be torn down, and cudaFree would fail.
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}
}  // namespace

DeviceBuffer device_alloc(size_t bytes) {
  if (bytes == 0) return DeviceBuffer();
  const size_t cls = pool_size_class(bytes);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.free_lists.find(cls);
    if (it != p.free_lists.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      p.stats.bytes_cached -= cls;
      p.stats.bytes_in_use += cls;
      p.stats.reuses++;
      return DeviceBuffer(ptr, cls);
    }
  }
  device_info();  // selects device 0; throws the CUDA error when there is none
  void* ptr = nullptr;
  cudaError_t e = cudaMalloc(&ptr, cls);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    pool_trim();
    e = cudaMalloc(&ptr, cls);
  }
  if (e != cudaSuccess) throw_cuda(("cudaMalloc(" + std::to_string(cls) + " bytes)").c_str(), e);
  std::lock_guard<std::mutex> lock(p.mu);
  p.stats.bytes_in_use += cls;
  p.stats.mallocs++;
  return DeviceBuffer(ptr, cls);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    DeviceBuffer old(std::move(*this));
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (!ptr_) return;
  // Back to its size class. Work queued on other streams may still use it: every user synchronises its
  // stream before its buffers go out of scope (the bindings do), so reuse cannot overlap.
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  p.free_lists[bytes_].push_back(ptr_);
  p.stats.bytes_in_use -= bytes_;
  p.stats.bytes_cached += bytes_;
}

PoolStats pool_stats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.stats;
}

void pool_trim() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  for (auto& kv : p.free_lists) {
    for (void* ptr : kv.second) {
      cudaFree(ptr);  // a failure here only leaks; nothing useful to report to the caller
      p.stats.bytes_cached -= kv.first;
    }
    kv.second.clear();
  }
  cudaGetLastError();
}

// ---- streams, events, copies -------------------------------------------------------------------------------
Stream::Stream() {
  device_info();
  cudaStream_t s = nullptr;
  DS_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  s_ = s;
}
Stream::~Stream() {
  if (s_) cudaStreamDestroy(static_cast<cudaStream_t>(s_));
}
void Stream::synchronize(const char* what) const {
  cudaError_t e = cudaStreamSynchronize(static_cast<cudaStream_t>(s_));
  if (e != cudaSuccess) throw_cuda((std::string("cudaStreamSynchronize after ") + what).c_str(), e);
}

void Stream::wait_quietly() const noexcept {
  cudaStreamSynchronize(static_cast<cudaStream_t>(s_));
  cudaGetLastError();
}

Event::Event() {
  cudaEvent_t e = nullptr;
  DS_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  e_ = e;
}
Event::~Event() {
  if (e_) cudaEventDestroy(static_cast<cudaEvent_t>(e_));
}
void Event::record(const Stream& s) {
  DS_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e_), static_cast<cudaStream_t>(s.get())));
}
void Event::wait_on(const Stream& s) const {
  DS_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(s.get()), static_cast<cudaEvent_t>(e_), 0));
}

void copy_to_device(void* dst, const void* src, size_t bytes, const Stream& s) {
  if (bytes == 0) return;
  DS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(s.get())));
}
void copy_to_host(void* dst, const void* src, size_t bytes, const Stream& s) {
  if (bytes == 0) return;
  DS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(s.get())));
}

}  // namespace cuda
}  // namespace ds
