// The CUDA kernels and the executor that launches them. Each kernel is a loop around the per-thread bodies
// of lstm_kernels.cuh; native/verify/emulate.cpp runs those bodies in the same phase order on the host.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "check.cuh"
#include "device.h"
#include "launch_loops.h"
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

// ---- launcher ----------------------------------------------------------------------------------------------
// The kernels above as the launcher of launch_loops.h, whose loops (shared with the hostsim build and the
// emulator) decide what is launched.

namespace {

cudaStream_t stream_of(const Stream& s) { return static_cast<cudaStream_t>(s.get()); }

struct DeviceLauncher {
  using Mem = RawMem;
  cudaStream_t s;
  DeviceExec::Mode mode;

  template <class Args>
  launch::RecurrentConfig recurrent_config(launch::Pass pass, const Args& a) const {
    const void* kernel = pass == launch::Pass::Forward ? reinterpret_cast<const void*>(ds::cuda::fwd_persistent_kernel)
                                                       : reinterpret_cast<const void*>(ds::cuda::bwd_persistent_kernel);
    return launch::choose_config(device_info(), a.B, a.H, mode, [kernel](int threads, size_t smem) {
      if (smem > 48 * 1024)
        DS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
      int per_sm = 0;
      DS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
      return per_sm;
    });
  }
  void gemm_kernel(int64_t tm, int64_t tn, const k::GemmArgs<Mem>& g) {
    dim3 grid(static_cast<unsigned>(tm), static_cast<unsigned>(tn));
    dim3 block(k::GEMM_TX, k::GEMM_TY);
    ds::cuda::gemm_kernel<<<grid, block, 0, s>>>(g);
    DS_CUDA_LAUNCHED("gemm_kernel");
  }
  void fwd_persistent_kernel(const launch::RecurrentConfig& c, k::FwdArgs<Mem> a) {
    void* args[] = {&a};
    DS_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(ds::cuda::fwd_persistent_kernel),
                                              dim3(static_cast<unsigned>(c.grid)), dim3(c.threads), args, c.smem, s));
    DS_CUDA_LAUNCHED("fwd_persistent_kernel");
  }
  void fwd_init_kernel(int64_t blocks, int threads, const k::FwdArgs<Mem>& a) {
    ds::cuda::fwd_init_kernel<<<static_cast<unsigned>(blocks), threads, 0, s>>>(a);
    DS_CUDA_LAUNCHED("fwd_init_kernel");
  }
  void fwd_step_kernel(const launch::RecurrentConfig& c, const k::FwdArgs<Mem>& a, int64_t step) {
    ds::cuda::fwd_step_kernel<<<static_cast<unsigned>(c.grid), c.threads, 0, s>>>(a, step);
    DS_CUDA_LAUNCHED("fwd_step_kernel");
  }
  void bwd_persistent_kernel(const launch::RecurrentConfig& c, k::BwdArgs<Mem> a) {
    void* args[] = {&a};
    DS_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(ds::cuda::bwd_persistent_kernel),
                                              dim3(static_cast<unsigned>(c.grid)), dim3(c.threads), args, c.smem, s));
    DS_CUDA_LAUNCHED("bwd_persistent_kernel");
  }
  void bwd_step_kernel(const launch::RecurrentConfig& c, const k::BwdArgs<Mem>& a, int64_t step) {
    ds::cuda::bwd_step_kernel<<<static_cast<unsigned>(c.grid), c.threads, 0, s>>>(a, step);
    DS_CUDA_LAUNCHED("bwd_step_kernel");
  }
  void bwd_finish_kernel(const launch::RecurrentConfig& c, const k::BwdArgs<Mem>& a) {
    ds::cuda::bwd_finish_kernel<<<static_cast<unsigned>(c.grid), c.threads, 0, s>>>(a);
    DS_CUDA_LAUNCHED("bwd_finish_kernel");
  }
  void gather_hprev_kernel(int64_t blocks, int threads, const k::GatherArgs<Mem>& a) {
    ds::cuda::gather_hprev_kernel<<<static_cast<unsigned>(blocks), threads, 0, s>>>(a);
    DS_CUDA_LAUNCHED("gather_hprev_kernel");
  }
  void column_sum_kernel(int64_t blocks, int threads, const float* m, int64_t rows, int64_t cols, float* out) {
    ds::cuda::column_sum_kernel<<<static_cast<unsigned>(blocks), threads, 0, s>>>(m, rows, cols, out);
    DS_CUDA_LAUNCHED("column_sum_kernel");
  }
};

}  // namespace

// ---- executor ------------------------------------------------------------------------------------------------

void DeviceExec::gemm(const k::GemmArgs<RawMem>& g) {
  DeviceLauncher l{stream_of(s_), mode_};
  launch::gemm(l, g);
}

void DeviceExec::forward_recurrent(k::FwdArgs<RawMem> a) {
  DeviceLauncher l{stream_of(s_), mode_};
  if (a.B > 0 && a.H > 0) last_persistent_ = launch::forward_recurrent(l, a);
}

void DeviceExec::backward_recurrent(k::BwdArgs<RawMem> a) {
  DeviceLauncher l{stream_of(s_), mode_};
  if (a.B > 0 && a.H > 0) last_persistent_ = launch::backward_recurrent(l, a);
}

void DeviceExec::gather_hprev(const k::GatherArgs<RawMem>& a) {
  DeviceLauncher l{stream_of(s_), mode_};
  launch::gather_hprev(l, a);
}

void DeviceExec::column_sum(const float* m, int64_t rows, int64_t cols, float* out) {
  DeviceLauncher l{stream_of(s_), mode_};
  launch::column_sum(l, m, rows, cols, out);
}

}  // namespace cuda
}  // namespace ds
