// The launch loops of the executor operations (native/cuda/lstm_plan.h calls gemm, forward_recurrent,
// backward_recurrent, gather_hprev, column_sum on an executor): which kernel programs of lstm_kernels.cuh
// run, in which order, on which grid. Written once for the three executors that run them:
//   - DeviceExec on a GPU (kernels.cu): each launch is a <<<>>> or cooperative launch of a __global__ kernel;
//   - DeviceExec on the hostsim stand-in runtime (hostsim/device_exec.cpp): each launch is queued on the
//     stream and runs the program for every thread of every block on the host;
//   - EmuExec (native/verify/emulate.cpp): each launch runs the program at once on checked memory.
// A launcher L supplies the kernels — one member per __global__ kernel of kernels.cu, given its grid — and the
// recurrent kernels' launch shape; these functions are the control flow around them, the part the three
// executors used to repeat line for line.
//
// Free of CUDA headers: compiled by nvcc (kernels.cu) and g++ (the two host executors).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "device.h"
#include "lstm_kernels.cuh"

namespace ds {
namespace cuda {
namespace launch {

// The launch shape of a recurrent pass: persistent (one cooperative kernel, `grid` blocks each holding its
// units' recurrent weights in `smem` bytes of shared memory) or one launch per step; U hidden units per block.
struct RecurrentConfig {
  bool persistent;
  int64_t U;
  int64_t grid;
  int threads;
  size_t smem;
};

inline int64_t blocks_for(int64_t n, int threads) { return (n + threads - 1) / threads; }

inline int threads_for_pairs(int64_t pairs) {
  int64_t t = (pairs + 31) / 32 * 32;
  return static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, t)));
}

// How a device (real or stand-in) chooses the shape. Persistent: about one block per SM, each holding
// U = ceil(H / SMs) units' weights (4·H·U floats) in shared memory, if cooperative launch is supported, the
// slice fits and every block can be resident at once — `blocks_per_sm(threads, smem)` is the occupancy
// calculator's answer (it may first raise the kernel's dynamic shared-memory limit). Otherwise per-step
// launches with enough blocks to spread B·H pairs (about 128 pairs per block).
template <class BlocksPerSm>
RecurrentConfig choose_config(const DeviceInfo& d, int64_t B, int64_t H, DeviceExec::Mode mode,
                              BlocksPerSm blocks_per_sm) {
  if (mode != DeviceExec::Mode::PerStep && d.cooperative && d.sm_count > 0) {
    const int64_t U = std::max<int64_t>(1, (H + d.sm_count - 1) / d.sm_count);
    const size_t smem = static_cast<size_t>(k::recurrent_slice_floats(H, U)) * sizeof(float);
    const int threads = threads_for_pairs(B * U);
    if (smem <= d.smem_per_block_optin) {
      const int per_sm = blocks_per_sm(threads, smem);
      const int64_t grid = k::recurrent_blocks(H, U);
      if (per_sm > 0 && grid <= static_cast<int64_t>(per_sm) * d.sm_count) return {true, U, grid, threads, smem};
    }
  }
  if (mode == DeviceExec::Mode::Persistent)
    throw CudaError("the persistent recurrent kernel does not fit on " + d.name + " for hidden size " +
                    std::to_string(H) + " (or cooperative launch is unsupported)");
  RecurrentConfig c{};
  c.persistent = false;
  c.U = std::min<int64_t>(H, std::max<int64_t>(1, 128 / std::max<int64_t>(B, 1)));
  c.grid = k::recurrent_blocks(H, c.U);
  c.threads = threads_for_pairs(B * c.U);
  c.smem = 0;
  return c;
}

enum class Pass { Forward, Backward };

// ---- the loops ------------------------------------------------------------------------------------------

template <class L>
void gemm(L& l, const k::GemmArgs<typename L::Mem>& g) {
  if (g.m == 0 || g.n == 0) return;
  const int64_t tm = k::gemm_tiles_m(g.m), tn = k::gemm_tiles_n(g.n);
  if (tm > 0x7fffffff || tn > 65535)
    throw CudaError("gemm: " + std::to_string(g.m) + "x" + std::to_string(g.n) + " exceeds the grid limits");
  l.gemm_kernel(tm, tn, g);  // blocks of k::GEMM_TX × k::GEMM_TY threads
}

// Returns whether the persistent form ran.
template <class L>
bool forward_recurrent(L& l, k::FwdArgs<typename L::Mem> a) {
  if (a.B == 0 || a.H == 0) return false;
  const RecurrentConfig c = l.recurrent_config(Pass::Forward, a);
  a.U = c.U;
  if (c.persistent) {
    l.fwd_persistent_kernel(c, a);
    return true;
  }
  l.fwd_init_kernel(blocks_for(a.B * a.H, 256), 256, a);
  for (int64_t s = 0; s < a.T; ++s) l.fwd_step_kernel(c, a, s);
  return false;
}

template <class L>
bool backward_recurrent(L& l, k::BwdArgs<typename L::Mem> a) {
  if (a.B == 0 || a.H == 0) return false;
  const RecurrentConfig c = l.recurrent_config(Pass::Backward, a);
  a.U = c.U;
  if (c.persistent) {
    l.bwd_persistent_kernel(c, a);
    return true;
  }
  for (int64_t s = a.T - 1; s >= 0; --s) l.bwd_step_kernel(c, a, s);
  l.bwd_finish_kernel(c, a);
  return false;
}

template <class L>
void gather_hprev(L& l, const k::GatherArgs<typename L::Mem>& a) {
  const int64_t n = a.B * a.T * a.H;
  if (n == 0) return;
  l.gather_hprev_kernel(blocks_for(n, 256), 256, a);
}

template <class L, class In, class Out>
void column_sum(L& l, In m, int64_t rows, int64_t cols, Out out) {
  if (cols == 0) return;
  l.column_sum_kernel(blocks_for(cols, 128), 128, m, rows, cols, out);
}

}  // namespace launch
}  // namespace cuda
}  // namespace ds
