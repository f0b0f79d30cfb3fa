// DeviceExec (native/cuda/device.h) for the hostsim build: the kernel programs of lstm_kernels.cuh run on the
// host, for every thread of every block, phase by phase, queued on their stream of the stand-in runtime
// (include/cuda_runtime.h). It replaces kernels.cu, which only nvcc compiles; everything else in the addon —
// cuda_binding.cpp, runtime.cu, lstm_plan.h — is the real code. It checks the host side of the CUDA path,
// not the GPU: the kernels' own correctness on the host is what the emulator (native/verify/emulate.cpp) checks.
//
// Why this is not emulate.cpp's EmuExec / EmuSched, which also run these programs on the host:
//   - EmuSched's memory is the emulator's checked memory (CheckedMem: bounds, exactly-once, race tracking on
//     buffers it owns and sizes); DeviceExec is called with plain device pointers (RawMem) into buffers whose
//     sizes only the pool knows, and the programs take shared memory as the same pointer type as global
//     memory, so a RawMem program cannot be run on EmuSched's checked shared arrays.
//   - EmuExec's launch geometry (units per block, threads, persistent or not) is set by each test; here it is
//     chosen as kernels.cu chooses it on a device, from the device's properties — that choice is what this
//     build exists to exercise.
// So the scheduler below is the plain version of EmuSched (same loop order: blocks y, x, then threads), and
// the launch loops and choose_config are kernels.cu's, line for line: change them together with kernels.cu
// (and with EmuExec, which mirrors the same loops).
#include <cuda_runtime.h>

#include <algorithm>
#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "check.cuh"
#include "device.h"
#include "lstm_kernels.cuh"

namespace ds {
namespace cuda {

using k::RawMem;

namespace {

// One launch: gx × gy blocks of `threads` threads. Each block gets its own shared arrays and each thread its
// own locals, filled with NaN so that a program reading shared memory or a register before writing it fails.
// A phase (each) runs every thread of every block in turn, so the barriers between phases need no work.
struct HostSched {
  using Mem = RawMem;
  int64_t gx, gy;
  int threads;
  std::vector<size_t> shared_floats;  // size of each shared array of a block
  std::vector<std::vector<float>> shared_mem;  // [block * arrays + i]
  int nlocals;
  std::vector<float> local_regs;

  HostSched(int64_t x, int64_t y, int th, std::vector<size_t> shared, int locals)
      : gx(x), gy(y), threads(th), shared_floats(std::move(shared)), nlocals(locals) {
    shared_mem.resize(static_cast<size_t>(gx * gy) * shared_floats.size());
    for (size_t i = 0; i < shared_mem.size(); ++i) shared_mem[i].assign(shared_floats[i % shared_floats.size()], NAN);
    local_regs.assign(static_cast<size_t>(gx * gy * threads * nlocals), NAN);
  }
  int64_t block_of(const k::Tid& t) const { return t.by * gx + t.bx; }
  template <class F>
  void each(F f) {
    for (int64_t by = 0; by < gy; ++by)
      for (int64_t bx = 0; bx < gx; ++bx)
        for (int tid = 0; tid < threads; ++tid) f(k::Tid{bx, by, tid, threads, gx});
  }
  void block_barrier() {}
  void grid_barrier() {}
  float* shared(const k::Tid& t, int i) {
    return shared_mem[static_cast<size_t>(block_of(t)) * shared_floats.size() + i].data();
  }
  float* locals(const k::Tid& t) { return &local_regs[static_cast<size_t>((block_of(t) * threads + t.tid) * nlocals)]; }
};

cudaStream_t stream_of(const Stream& s) { return static_cast<cudaStream_t>(s.get()); }

// Queues one launch on the stream: `program(sched)` runs when the stream's queue runs. The arguments are
// captured by value, as a kernel launch copies its parameters.
template <class Program>
void launch(const Stream& s, const char* name, int64_t gx, int64_t gy, int threads, std::vector<size_t> shared,
            int locals, Program program) {
  if (gx < 1 || gy < 1 || gx > 0x7fffffff || gy > 65535 || threads < 1 || threads > 1024)
    throw_cuda((std::string("launch of ") + name).c_str(), cudaErrorInvalidValue);
  DS_CUDA_CHECK(ds_hostsim::enqueue(stream_of(s), [=]() {
    HostSched sc(gx, gy, threads, shared, locals);
    program(sc);
  }));
}

// Every pointer a kernel is given must point into live device memory (or be null where the kernel allows it):
// a host pointer or a freed buffer handed to a kernel faults on a GPU (cudaErrorIllegalAddress at the next
// synchronisation); here it is refused at the launch, naming the kernel and the argument. Only the start is
// checked (the kernels' extents are the emulator's business). The lists below name every pointer field of
// the argument structs of lstm_kernels.cuh: a field added there must be added here.
struct PtrArg {
  const char* name;
  const void* p;
};
void check_pointers(const char* kernel, std::initializer_list<PtrArg> args) {
  std::lock_guard<std::recursive_mutex> lock(ds_hostsim::state().mu);
  for (const PtrArg& a : args)
    if (a.p && !ds_hostsim::is_device_range(a.p, 0))
      throw CudaError(std::string("launch of ") + kernel + ": argument " + a.name +
                      " is not device memory (host stand-in check)");
}
void check_fwd(const char* kernel, const k::FwdArgs<RawMem>& a) {
  check_pointers(kernel, {{"xproj", a.xproj}, {"bias", a.bias}, {"R", a.R}, {"lengths", a.lengths}, {"h0", a.h0},
                          {"c0", a.c0}, {"hbuf", a.hbuf}, {"cbuf", a.cbuf}, {"y", a.y}, {"gates", a.gates},
                          {"cells", a.cells}, {"h_out", a.h_out}, {"c_out", a.c_out}});
}
void check_bwd(const char* kernel, const k::BwdArgs<RawMem>& a) {
  check_pointers(kernel, {{"R", a.R}, {"lengths", a.lengths}, {"gates", a.gates}, {"cells", a.cells}, {"c0", a.c0},
                          {"dy", a.dy}, {"dh_out", a.dh_out}, {"dc_out", a.dc_out}, {"dpre", a.dpre},
                          {"dcbuf", a.dcbuf}, {"dh0", a.dh0}, {"dc0", a.dc0}});
}

int64_t blocks_for(int64_t n, int threads) { return (n + threads - 1) / threads; }

// ---- kernels.cu's launch configuration, on the stand-in device's properties -----------------------------
int threads_for_pairs(int64_t pairs) {
  int64_t t = (pairs + 31) / 32 * 32;
  return static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, t)));
}

struct RecurrentConfig {
  bool persistent;
  int64_t U;
  int64_t grid;
  int threads;
  size_t smem;
};

RecurrentConfig choose_config(int64_t B, int64_t H, DeviceExec::Mode mode) {
  const DeviceInfo& d = device_info();
  RecurrentConfig c{};
  if (mode != DeviceExec::Mode::PerStep && d.cooperative && d.sm_count > 0) {
    const int64_t U = std::max<int64_t>(1, (H + d.sm_count - 1) / d.sm_count);
    const size_t smem = static_cast<size_t>(k::recurrent_slice_floats(H, U)) * sizeof(float);
    const int threads = threads_for_pairs(B * U);
    if (smem <= d.smem_per_block_optin) {
      // kernels.cu raises the kernel's dynamic shared-memory limit above 48 KiB here; nothing to do on the host.
      const int per_sm = ds_hostsim::max_active_blocks_per_sm(threads, smem);
      const int64_t grid = k::recurrent_blocks(H, U);
      if (per_sm > 0 && grid <= static_cast<int64_t>(per_sm) * d.sm_count) return {true, U, grid, threads, smem};
    }
  }
  if (mode == DeviceExec::Mode::Persistent)
    throw CudaError("the persistent recurrent kernel does not fit on " + d.name + " for hidden size " +
                    std::to_string(H) + " (or cooperative launch is unsupported)");
  c.persistent = false;
  c.U = std::min<int64_t>(H, std::max<int64_t>(1, 128 / std::max<int64_t>(B, 1)));
  c.grid = k::recurrent_blocks(H, c.U);
  c.threads = threads_for_pairs(B * c.U);
  c.smem = 0;
  return c;
}

}  // namespace

// ---- executor: kernels.cu's launch loops ----------------------------------------------------------------------

void DeviceExec::gemm(const k::GemmArgs<RawMem>& g) {
  if (g.m == 0 || g.n == 0) return;
  const int64_t tm = k::gemm_tiles_m(g.m), tn = k::gemm_tiles_n(g.n);
  if (tm > 0x7fffffff || tn > 65535)
    throw CudaError("gemm: " + std::to_string(g.m) + "x" + std::to_string(g.n) + " exceeds the grid limits");
  check_pointers("gemm_kernel", {{"A", g.A}, {"a_rows", g.a_rows}, {"B", g.B}, {"C", g.C}});
  launch(s_, "gemm_kernel", tm, tn, k::GEMM_THREADS,
         {size_t(k::GEMM_BK * k::GEMM_BM), size_t(k::GEMM_BK * k::GEMM_BN)}, k::GEMM_MR * k::GEMM_NR,
         [g](HostSched& sc) { k::gemm_program(sc, g); });
}

void DeviceExec::forward_recurrent(k::FwdArgs<RawMem> a) {
  if (a.B == 0 || a.H == 0) return;
  check_fwd("forward recurrent kernels", a);
  RecurrentConfig c = choose_config(a.B, a.H, mode_);
  a.U = c.U;
  last_persistent_ = c.persistent;
  if (c.persistent) {
    launch(s_, "fwd_persistent_kernel", c.grid, 1, c.threads, {c.smem / sizeof(float)}, 1,
           [a](HostSched& sc) { k::fwd_persistent_program(sc, a); });
    return;
  }
  launch(s_, "fwd_init_kernel", blocks_for(a.B * a.H, 256), 1, 256, {}, 1,
         [a](HostSched& sc) { k::fwd_init_program(sc, a); });
  for (int64_t s = 0; s < a.T; ++s)
    launch(s_, "fwd_step_kernel", c.grid, 1, c.threads, {}, 1, [a, s](HostSched& sc) { k::fwd_step_program(sc, a, s); });
}

void DeviceExec::backward_recurrent(k::BwdArgs<RawMem> a) {
  if (a.B == 0 || a.H == 0) return;
  check_bwd("backward recurrent kernels", a);
  RecurrentConfig c = choose_config(a.B, a.H, mode_);
  a.U = c.U;
  last_persistent_ = c.persistent;
  if (c.persistent) {
    launch(s_, "bwd_persistent_kernel", c.grid, 1, c.threads, {c.smem / sizeof(float)}, 1,
           [a](HostSched& sc) { k::bwd_persistent_program(sc, a); });
    return;
  }
  for (int64_t s = a.T - 1; s >= 0; --s)
    launch(s_, "bwd_step_kernel", c.grid, 1, c.threads, {}, 1, [a, s](HostSched& sc) { k::bwd_step_program(sc, a, s); });
  launch(s_, "bwd_finish_kernel", c.grid, 1, c.threads, {}, 1, [a](HostSched& sc) { k::bwd_finish_program(sc, a); });
}

void DeviceExec::gather_hprev(const k::GatherArgs<RawMem>& a) {
  const int64_t n = a.B * a.T * a.H;
  if (n == 0) return;
  check_pointers("gather_hprev_kernel", {{"lengths", a.lengths}, {"h0", a.h0}, {"y", a.y}, {"hprev", a.hprev}});
  launch(s_, "gather_hprev_kernel", blocks_for(n, 256), 1, 256, {}, 1,
         [a](HostSched& sc) { k::gather_hprev_program(sc, a); });
}

void DeviceExec::column_sum(const float* m, int64_t rows, int64_t cols, float* out) {
  if (cols == 0) return;
  check_pointers("column_sum_kernel", {{"m", m}, {"out", out}});
  launch(s_, "column_sum_kernel", blocks_for(cols, 128), 1, 128, {}, 1,
         [m, rows, cols, out](HostSched& sc) { k::column_sum_program<HostSched, RawMem>(sc, m, rows, cols, out); });
}

}  // namespace cuda
}  // namespace ds
