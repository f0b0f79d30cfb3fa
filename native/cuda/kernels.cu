// The CUDA kernels and the executor that launches them. Each kernel is a loop around the per-thread bodies
// of lstm_kernels.cuh; native/verify/emulate.cpp runs those bodies in the same phase order on the host.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "check.cuh"
#include "device.h"
#include "lstm_kernels.cuh"

namespace cg = cooperative_groups;

namespace ds {
namespace cuda {

using k::RawMem;

// ---- kernels --------------------------------------------------------------------------------------------
// Each kernel runs one program of lstm_kernels.cuh with this scheduler: each() is the calling thread's share
// of a phase, the barriers are the hardware's.
template <int kLocals>
struct DeviceSched {
  using Mem = RawMem;
  float* shared0 = nullptr;
  float* shared1 = nullptr;
  float regs[kLocals];  // the thread's private accumulators (registers once inlined)

  __device__ __forceinline__ k::Tid me() const {
    return {static_cast<int64_t>(blockIdx.x), static_cast<int64_t>(blockIdx.y),
            static_cast<int>(threadIdx.y * blockDim.x + threadIdx.x), static_cast<int>(blockDim.x * blockDim.y),
            static_cast<int64_t>(gridDim.x)};
  }
  template <class F>
  __device__ __forceinline__ void each(F f) { f(me()); }
  __device__ __forceinline__ void block_barrier() { __syncthreads(); }
  __device__ __forceinline__ void grid_barrier() { cg::this_grid().sync(); }
  __device__ __forceinline__ float* shared(const k::Tid&, int i) { return i == 0 ? shared0 : shared1; }
  __device__ __forceinline__ float* locals(const k::Tid&) { return regs; }
};

__global__ void __launch_bounds__(k::GEMM_THREADS) gemm_kernel(k::GemmArgs<RawMem> g) {
  __shared__ float As[k::GEMM_BK * k::GEMM_BM];
  __shared__ float Bs[k::GEMM_BK * k::GEMM_BN];
  DeviceSched<k::GEMM_MR * k::GEMM_NR> sc;
  sc.shared0 = As;
  sc.shared1 = Bs;
  k::gemm_program(sc, g);
}

__global__ void fwd_init_kernel(k::FwdArgs<RawMem> a) {
  DeviceSched<1> sc;
  k::fwd_init_program(sc, a);
}

__global__ void fwd_step_kernel(k::FwdArgs<RawMem> a, int64_t s) {
  DeviceSched<1> sc;
  k::fwd_step_program(sc, a, s);
}

__global__ void fwd_persistent_kernel(k::FwdArgs<RawMem> a) {
  extern __shared__ float slice[];
  DeviceSched<1> sc;
  sc.shared0 = slice;
  k::fwd_persistent_program(sc, a);
}

__global__ void bwd_step_kernel(k::BwdArgs<RawMem> a, int64_t s) {
  DeviceSched<1> sc;
  k::bwd_step_program(sc, a, s);
}

__global__ void bwd_finish_kernel(k::BwdArgs<RawMem> a) {
  DeviceSched<1> sc;
  k::bwd_finish_program(sc, a);
}

__global__ void bwd_persistent_kernel(k::BwdArgs<RawMem> a) {
  extern __shared__ float slice[];
  DeviceSched<1> sc;
  sc.shared0 = slice;
  k::bwd_persistent_program(sc, a);
}

__global__ void gather_hprev_kernel(k::GatherArgs<RawMem> a) {
  DeviceSched<1> sc;
  k::gather_hprev_program(sc, a);
}

__global__ void column_sum_kernel(const float* m, int64_t rows, int64_t cols, float* out) {
  DeviceSched<1> sc;
  k::column_sum_program<DeviceSched<1>, RawMem>(sc, m, rows, cols, out);
}

// ---- launch configuration ----------------------------------------------------------------------------------

namespace {

cudaStream_t stream_of(const Stream& s) { return static_cast<cudaStream_t>(s.get()); }

unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

int threads_for_pairs(int64_t pairs) {
  int64_t t = (pairs + 31) / 32 * 32;
  return static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, t)));
}

struct RecurrentConfig {
  bool persistent;
  int64_t U;
  unsigned grid;
  int threads;
  size_t smem;
};

// Persistent: about one block per SM, each holding U = ceil(H / SMs) units' weights (4·H·U floats) in shared
// memory, if cooperative launch is supported, the slice fits and every block can be resident at once.
// Otherwise per-step launches with enough blocks to spread B·H pairs (about 128 pairs per block).
template <class Kernel>
RecurrentConfig choose_config(Kernel kernel, int64_t B, int64_t H, DeviceExec::Mode mode) {
  const DeviceInfo& d = device_info();
  RecurrentConfig c{};
  if (mode != DeviceExec::Mode::PerStep && d.cooperative && d.sm_count > 0) {
    const int64_t U = std::max<int64_t>(1, (H + d.sm_count - 1) / d.sm_count);
    const size_t smem = static_cast<size_t>(k::recurrent_slice_floats(H, U)) * sizeof(float);
    const int threads = threads_for_pairs(B * U);
    if (smem <= d.smem_per_block_optin) {
      if (smem > 48 * 1024)
        DS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(smem)));
      int per_sm = 0;
      DS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
      const int64_t grid = k::recurrent_blocks(H, U);
      if (per_sm > 0 && grid <= static_cast<int64_t>(per_sm) * d.sm_count)
        return {true, U, static_cast<unsigned>(grid), threads, smem};
    }
  }
  if (mode == DeviceExec::Mode::Persistent)
    throw CudaError("the persistent recurrent kernel does not fit on " + d.name + " for hidden size " +
                    std::to_string(H) + " (or cooperative launch is unsupported)");
  c.persistent = false;
  c.U = std::min<int64_t>(H, std::max<int64_t>(1, 128 / std::max<int64_t>(B, 1)));
  c.grid = static_cast<unsigned>(k::recurrent_blocks(H, c.U));
  c.threads = threads_for_pairs(B * c.U);
  c.smem = 0;
  return c;
}

}  // namespace

// ---- executor ------------------------------------------------------------------------------------------------
// EmuExec (emulate.cpp) and hostsim's DeviceExec (hostsim/device_exec.cpp) repeat these launch loops on the
// host on purpose, line for line: they check this launch sequence, and cannot share code with it (<<<>>> and
// cooperative launches here, a host scheduler per launch there). Change the three together.

void DeviceExec::gemm(const k::GemmArgs<RawMem>& g) {
  if (g.m == 0 || g.n == 0) return;
  const int64_t tm = k::gemm_tiles_m(g.m), tn = k::gemm_tiles_n(g.n);
  if (tm > 0x7fffffff || tn > 65535)
    throw CudaError("gemm: " + std::to_string(g.m) + "x" + std::to_string(g.n) + " exceeds the grid limits");
  dim3 grid(static_cast<unsigned>(tm), static_cast<unsigned>(tn));
  dim3 block(k::GEMM_TX, k::GEMM_TY);
  gemm_kernel<<<grid, block, 0, stream_of(s_)>>>(g);
  DS_CUDA_LAUNCHED("gemm_kernel");
}

void DeviceExec::forward_recurrent(k::FwdArgs<RawMem> a) {
  if (a.B == 0 || a.H == 0) return;
  RecurrentConfig c = choose_config(fwd_persistent_kernel, a.B, a.H, mode_);
  a.U = c.U;
  last_persistent_ = c.persistent;
  if (c.persistent) {
    void* args[] = {&a};
    DS_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(fwd_persistent_kernel),
                                              dim3(c.grid), dim3(c.threads), args, c.smem, stream_of(s_)));
    DS_CUDA_LAUNCHED("fwd_persistent_kernel");
    return;
  }
  fwd_init_kernel<<<blocks_for(a.B * a.H, 256), 256, 0, stream_of(s_)>>>(a);
  DS_CUDA_LAUNCHED("fwd_init_kernel");
  for (int64_t s = 0; s < a.T; ++s) {
    fwd_step_kernel<<<c.grid, c.threads, 0, stream_of(s_)>>>(a, s);
    DS_CUDA_LAUNCHED("fwd_step_kernel");
  }
}

void DeviceExec::backward_recurrent(k::BwdArgs<RawMem> a) {
  if (a.B == 0 || a.H == 0) return;
  RecurrentConfig c = choose_config(bwd_persistent_kernel, a.B, a.H, mode_);
  a.U = c.U;
  last_persistent_ = c.persistent;
  if (c.persistent) {
    void* args[] = {&a};
    DS_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(bwd_persistent_kernel),
                                              dim3(c.grid), dim3(c.threads), args, c.smem, stream_of(s_)));
    DS_CUDA_LAUNCHED("bwd_persistent_kernel");
    return;
  }
  for (int64_t s = a.T - 1; s >= 0; --s) {
    bwd_step_kernel<<<c.grid, c.threads, 0, stream_of(s_)>>>(a, s);
    DS_CUDA_LAUNCHED("bwd_step_kernel");
  }
  bwd_finish_kernel<<<c.grid, c.threads, 0, stream_of(s_)>>>(a);
  DS_CUDA_LAUNCHED("bwd_finish_kernel");
}

void DeviceExec::gather_hprev(const k::GatherArgs<RawMem>& a) {
  const int64_t n = a.B * a.T * a.H;
  if (n == 0) return;
  gather_hprev_kernel<<<blocks_for(n, 256), 256, 0, stream_of(s_)>>>(a);
  DS_CUDA_LAUNCHED("gather_hprev_kernel");
}

void DeviceExec::column_sum(const float* m, int64_t rows, int64_t cols, float* out) {
  if (cols == 0) return;
  column_sum_kernel<<<blocks_for(cols, 128), 128, 0, stream_of(s_)>>>(m, rows, cols, out);
  DS_CUDA_LAUNCHED("column_sum_kernel");
}

}  // namespace cuda
}  // namespace ds
