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
// So the scheduler below is the plain version of EmuSched (same loop order: blocks y, x, then threads); the
// launch loops and the launch-shape choice are kernels.cu's own (launch_loops.h), run by a launcher that
// queues each kernel's program on the stream.
#include <cuda_runtime.h>

#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "check.cuh"
#include "device.h"
#include "launch_loops.h"
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
void enqueue_launch(const Stream& s, const char* name, int64_t gx, int64_t gy, int threads, std::vector<size_t> shared,
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
  check_pointers(kernel, {{"xproj", a.xproj}, {"bias", a.bias}, {"R", a.R}, {"Rp", a.Rp}, {"lengths", a.lengths}, {"h0", a.h0},
                          {"c0", a.c0}, {"hbuf", a.hbuf}, {"cbuf", a.cbuf}, {"y", a.y}, {"gates", a.gates},
                          {"cells", a.cells}, {"h_out", a.h_out}, {"c_out", a.c_out}});
}
void check_bwd(const char* kernel, const k::BwdArgs<RawMem>& a) {
  check_pointers(kernel, {{"R", a.R}, {"lengths", a.lengths}, {"gates", a.gates}, {"cells", a.cells}, {"c0", a.c0},
                          {"dy", a.dy}, {"dh_out", a.dh_out}, {"dc_out", a.dc_out}, {"dpre", a.dpre},
                          {"dcbuf", a.dcbuf}, {"dh0", a.dh0}, {"dc0", a.dc0}});
}

// kernels.cu's kernels as a launcher of launch_loops.h: each queues its program on the stream.
struct HostLauncher {
  using Mem = RawMem;
  const Stream& s;
  DeviceExec::Mode mode;

  launch::RecurrentConfig recurrent_config(launch::Pass, const k::FwdArgs<Mem>& a) const {
    check_fwd("forward recurrent kernels", a);
    return config(a.B, a.H);
  }
  launch::RecurrentConfig recurrent_config(launch::Pass, const k::BwdArgs<Mem>& a) const {
    check_bwd("backward recurrent kernels", a);
    return config(a.B, a.H);
  }
  launch::RecurrentConfig config(int64_t B, int64_t H) const {
    // (kernels.cu raises the kernel's dynamic shared-memory limit above 48 KiB first; nothing to do here)
    return launch::choose_config(device_info(), B, H, mode, [](int threads, size_t smem) {
      return ds_hostsim::max_active_blocks_per_sm(threads, smem);
    });
  }
  void gemm_kernel(int64_t tm, int64_t tn, const k::GemmArgs<Mem>& g) {
    check_pointers("gemm_kernel", {{"A", g.A}, {"a_rows", g.a_rows}, {"B", g.B}, {"C", g.C}, {"bias", g.bias}, {"Bp", g.Bp}});
    enqueue_launch(s, "gemm_kernel", tm, tn, k::GEMM_THREADS,
           {size_t(k::GEMM_BK * k::GEMM_BM), size_t(k::GEMM_BK * k::GEMM_BN)}, k::GEMM_MR * k::GEMM_NR,
           [g](HostSched& sc) { k::gemm_program(sc, g); });
  }
  void fwd_persistent_kernel(const launch::RecurrentConfig& c, const k::FwdArgs<Mem>& a) {
    enqueue_launch(s, "fwd_persistent_kernel", c.grid, 1, c.threads, {c.smem / sizeof(float)}, 1,
           [a](HostSched& sc) { k::fwd_persistent_program(sc, a); });
  }
  void fwd_init_kernel(int64_t blocks, int threads, const k::FwdArgs<Mem>& a) {
    enqueue_launch(s, "fwd_init_kernel", blocks, 1, threads, {}, 1, [a](HostSched& sc) { k::fwd_init_program(sc, a); });
  }
  void fwd_step_kernel(const launch::RecurrentConfig& c, const k::FwdArgs<Mem>& a, int64_t step) {
    enqueue_launch(s, "fwd_step_kernel", c.grid, 1, c.threads, {}, 1,
           [a, step](HostSched& sc) { k::fwd_step_program(sc, a, step); });
  }
  void bwd_persistent_kernel(const launch::RecurrentConfig& c, const k::BwdArgs<Mem>& a) {
    enqueue_launch(s, "bwd_persistent_kernel", c.grid, 1, c.threads, {c.smem / sizeof(float)}, 1,
           [a](HostSched& sc) { k::bwd_persistent_program(sc, a); });
  }
  void bwd_step_kernel(const launch::RecurrentConfig& c, const k::BwdArgs<Mem>& a, int64_t step) {
    enqueue_launch(s, "bwd_step_kernel", c.grid, 1, c.threads, {}, 1,
           [a, step](HostSched& sc) { k::bwd_step_program(sc, a, step); });
  }
  void bwd_finish_kernel(const launch::RecurrentConfig& c, const k::BwdArgs<Mem>& a) {
    enqueue_launch(s, "bwd_finish_kernel", c.grid, 1, c.threads, {}, 1, [a](HostSched& sc) { k::bwd_finish_program(sc, a); });
  }
  void gather_hprev_kernel(int64_t blocks, int threads, const k::GatherArgs<Mem>& a) {
    check_pointers("gather_hprev_kernel", {{"lengths", a.lengths}, {"h0", a.h0}, {"y", a.y}, {"hprev", a.hprev}});
    enqueue_launch(s, "gather_hprev_kernel", blocks, 1, threads, {}, 1, [a](HostSched& sc) { k::gather_hprev_program(sc, a); });
  }
  void column_sum_kernel(int64_t blocks, int threads, const float* m, int64_t rows, int64_t cols, float* out) {
    check_pointers("column_sum_kernel", {{"m", m}, {"out", out}});
    enqueue_launch(s, "column_sum_kernel", blocks, 1, threads, {}, 1,
           [m, rows, cols, out](HostSched& sc) { k::column_sum_program<HostSched, RawMem>(sc, m, rows, cols, out); });
  }
};

}  // namespace

// ---- executor: kernels.cu's, on the host launcher -------------------------------------------------------------

void DeviceExec::gemm(const k::GemmArgs<RawMem>& g) {
  HostLauncher l{s_, mode_};
  launch::gemm(l, g);
}

void DeviceExec::forward_recurrent(k::FwdArgs<RawMem> a) {
  HostLauncher l{s_, mode_};
  if (a.B > 0 && a.H > 0) last_persistent_ = launch::forward_recurrent(l, a);
}

void DeviceExec::backward_recurrent(k::BwdArgs<RawMem> a) {
  HostLauncher l{s_, mode_};
  if (a.B > 0 && a.H > 0) last_persistent_ = launch::backward_recurrent(l, a);
}

void DeviceExec::gather_hprev(const k::GatherArgs<RawMem>& a) {
  HostLauncher l{s_, mode_};
  launch::gather_hprev(l, a);
}

void DeviceExec::column_sum(const float* m, int64_t rows, int64_t cols, float* out) {
  HostLauncher l{s_, mode_};
  launch::column_sum(l, m, rows, cols, out);
}

}  // namespace cuda
}  // namespace ds
