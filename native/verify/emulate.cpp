// A host emulator of the CUDA kernels: it runs the per-thread bodies of lstm_kernels.cuh, in the phase order
// of the kernels in native/cuda/kernels.cu, through the launch sequence of lstm_plan.h, for every block and thread of the
// grid the emulator is given — on the CPU, with memory that checks every access:
//   - every index is inside its buffer (reads and writes);
//   - each element of an output buffer is written exactly once (gemm C, y, gates, cells, dpre, hprev,
//     h_out/c_out, dh0/dc0 and the weight gradients);
//   - no data race between barriers: within one phase (between two grid-wide barriers for global memory,
//     two __syncthreads for shared memory) no element is written by one thread and read or written by
//     another. This is what the grid.sync() of the persistent kernels and the launch boundaries of the
//     per-step kernels must guarantee.
// It proves the index arithmetic, the tiling and edge handling, the work decomposition and the barrier
// placement for the shapes it is run on, and (compared with lib/backend/reference.ts) that the kernels
// compute the LSTM. It does not prove anything about the device itself: the CUDA compiler, warp scheduling,
// memory-model details of grid.sync, occupancy, launch limits or speed. Only a GPU run can.
//
// Exposed to JavaScript as cudaEmulator by the verification addon (native/verify/addon.cpp), never by the
// shipped one. Needs no CUDA toolkit: g++ compiles it.
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "binding_common.h"
#include "check.h"
#include "cuda/launch_loops.h"
#include "cuda/lstm_kernels.cuh"
#include "cuda/lstm_plan.h"
#include "verify.h"

namespace ds {
namespace cuda {
namespace emu {

// ---- checked memory ---------------------------------------------------------------------------------------

// Who is running and in which phase: set by the executor's loops before each per-thread call.
struct Context {
  int64_t thread = 0;       // global thread id (block-local for shared memory is derived below)
  int64_t grid_phase = 0;   // advanced at kernel boundaries and grid-wide barriers
  int64_t block_phase = 0;  // advanced at every barrier (__syncthreads, grid.sync, kernel boundary)
  int64_t block_thread = 0;
  std::vector<std::string> faults;
  int64_t fault_count = 0;
  void fault(const std::string& f) {
    if (faults.size() < 20) faults.push_back(f);
    fault_count++;
  }
};
static Context* g_ctx = nullptr;  // the emulator runs on the JS thread, one run at a time

enum class Space { Global, Shared };

template <class T>
struct Buf {
  std::string name;
  std::vector<T> data;
  bool once = false;  // an output every element of which must be written exactly once
  Space space = Space::Global;
  std::vector<uint32_t> writes;
  // race tracking: phase and thread of the last write and of the last read(s) (-2 = several threads)
  std::vector<int64_t> w_phase, w_thread, r_phase, r_thread;

  Buf(std::string n, size_t size, bool exactly_once = false, Space sp = Space::Global)
      : name(std::move(n)), data(size, T(0)), once(exactly_once), space(sp), writes(size, 0),
        w_phase(size, -1), w_thread(size, -1), r_phase(size, -1), r_thread(size, -1) {}
  template <class Src>
  Buf(std::string n, const Src* src, size_t size) : Buf(std::move(n), size) {
    if (src) std::memcpy(data.data(), src, size * sizeof(T));
  }
  int64_t phase() const { return space == Space::Global ? g_ctx->grid_phase : g_ctx->block_phase; }
  int64_t who() const { return space == Space::Global ? g_ctx->thread : g_ctx->block_thread; }
  bool in_range(int64_t i, const char* op) const {
    if (i >= 0 && i < static_cast<int64_t>(data.size())) return true;
    g_ctx->fault(std::string(op) + " out of bounds: " + name + "[" + std::to_string(i) + "], size " +
                 std::to_string(data.size()));
    return false;
  }
  T read(int64_t i) {
    if (!in_range(i, "read")) return T(0);
    const int64_t ph = phase(), me = who();
    if (w_phase[i] == ph && w_thread[i] != me)
      g_ctx->fault("race: " + name + "[" + std::to_string(i) + "] read by thread " + std::to_string(me) +
                   " after thread " + std::to_string(w_thread[i]) + " wrote it in the same phase");
    if (r_phase[i] != ph) {
      r_phase[i] = ph;
      r_thread[i] = me;
    } else if (r_thread[i] != me) {
      r_thread[i] = -2;
    }
    return data[i];
  }
  void write(int64_t i, T v) {
    if (!in_range(i, "write")) return;
    const int64_t ph = phase(), me = who();
    if (w_phase[i] == ph && w_thread[i] != me)
      g_ctx->fault("race: " + name + "[" + std::to_string(i) + "] written by threads " +
                   std::to_string(w_thread[i]) + " and " + std::to_string(me) + " in the same phase");
    if (r_phase[i] == ph && r_thread[i] != me)
      g_ctx->fault("race: " + name + "[" + std::to_string(i) + "] written by thread " + std::to_string(me) +
                   " after another thread read it in the same phase");
    w_phase[i] = ph;
    w_thread[i] = me;
    writes[i]++;
    data[i] = v;
  }
  // After a run: an exactly-once output must have every element written once (`expected` times).
  void check_writes(uint32_t expected = 1) const {
    if (!once) return;
    for (size_t i = 0; i < writes.size(); ++i)
      if (writes[i] != expected) {
        g_ctx->fault(name + "[" + std::to_string(i) + "] written " + std::to_string(writes[i]) +
                     " times, expected " + std::to_string(expected));
        return;
      }
  }
};

template <class T>
class CheckedPtr {
  using U = typename std::remove_const<T>::type;

 public:
  CheckedPtr() = default;
  CheckedPtr(std::nullptr_t) {}  // NOLINT: mirrors a raw pointer's conversion from nullptr
  CheckedPtr(Buf<U>* b, int64_t off = 0) : buf_(b), off_(off) {}
  template <class V, class = typename std::enable_if<std::is_same<typename std::remove_const<V>::type, U>::value &&
                                                     (std::is_const<T>::value || !std::is_const<V>::value)>::type>
  CheckedPtr(const CheckedPtr<V>& o) : buf_(o.buf()), off_(o.off()) {}  // NOLINT: T* → const T*

  explicit operator bool() const { return buf_ != nullptr; }
  CheckedPtr operator+(int64_t d) const { return CheckedPtr(buf_, off_ + d); }
  Buf<U>* buf() const { return buf_; }
  int64_t off() const { return off_; }
  U read(int64_t i) const {
    if (!buf_) {
      g_ctx->fault("read through a null pointer");
      return U(0);
    }
    return buf_->read(off_ + i);
  }
  void write(int64_t i, U v) const {
    if (!buf_) {
      g_ctx->fault("write through a null pointer");
      return;
    }
    buf_->write(off_ + i, v);
  }

  struct Ref {
    const CheckedPtr* p;
    int64_t i;
    operator U() const { return p->read(i); }  // NOLINT: reads like an lvalue of U
    const Ref& operator=(U v) const {
      p->write(i, v);
      return *this;
    }
    const Ref& operator=(const Ref& o) const {
      p->write(i, static_cast<U>(o));
      return *this;
    }
  };
  template <class X = T>
  typename std::enable_if<std::is_const<X>::value, U>::type operator[](int64_t i) const {
    return read(i);
  }
  template <class X = T>
  typename std::enable_if<!std::is_const<X>::value, Ref>::type operator[](int64_t i) const {
    return Ref{this, i};
  }

 private:
  Buf<U>* buf_ = nullptr;
  int64_t off_ = 0;
};

// Found by argument-dependent lookup from the kernel bodies (the device's __ldcg load).
template <class T>
float ld_cg(const CheckedPtr<T>& p, int64_t i) {
  return p.read(i);
}

struct CheckedMem {
  template <class T>
  using ptr = CheckedPtr<T>;
};

// ---- the scheduler: a kernel program (lstm_kernels.cuh) for every thread of every block ---------------------
// Runs the same program the device kernel runs; each() is a phase executed by all threads in turn, so a value
// another thread writes is visible after the barrier that separates the phases, as on the device.
struct EmuSched {
  using Mem = CheckedMem;
  int64_t gx = 1, gy = 1;  // grid
  int threads = 1;         // threads per block
  std::vector<size_t> shared_floats;  // size of each shared-memory array of a block
  std::vector<std::unique_ptr<Buf<float>>> shared_bufs;  // [block * arrays + i], created on first use
  int nlocals = 1;
  std::vector<float> local_regs;
  bool omit_grid_barriers = false;  // negative control (see EmuExec)

  EmuSched(int64_t grid_x, int64_t grid_y, int block_threads, std::vector<size_t> shared, int locals, bool omit)
      : gx(grid_x), gy(grid_y), threads(block_threads), shared_floats(std::move(shared)), nlocals(locals),
        omit_grid_barriers(omit) {
    shared_bufs.resize(static_cast<size_t>(gx * gy) * shared_floats.size());
    local_regs.assign(static_cast<size_t>(gx * gy * threads * nlocals), 0.0f);
    g_ctx->grid_phase++;  // a kernel launch is a grid-wide barrier
    g_ctx->block_phase++;
  }
  int64_t block_of(const k::Tid& t) const { return t.by * gx + t.bx; }

  template <class F>
  void each(F f) {
    for (int64_t by = 0; by < gy; ++by)
      for (int64_t bx = 0; bx < gx; ++bx)
        for (int tid = 0; tid < threads; ++tid) {
          g_ctx->thread = (by * gx + bx) * threads + tid;
          g_ctx->block_thread = tid;
          f(k::Tid{bx, by, tid, threads, gx});
        }
  }
  void block_barrier() { g_ctx->block_phase++; }
  void grid_barrier() {
    if (omit_grid_barriers) return;
    g_ctx->grid_phase++;
    g_ctx->block_phase++;
  }
  CheckedPtr<float> shared(const k::Tid& t, int i) {
    if (i < 0 || i >= static_cast<int>(shared_floats.size())) {
      g_ctx->fault("shared array " + std::to_string(i) + " was not declared by this kernel");
      return CheckedPtr<float>();
    }
    auto& b = shared_bufs[static_cast<size_t>(block_of(t)) * shared_floats.size() + i];
    if (!b) b.reset(new Buf<float>("shared" + std::to_string(i), shared_floats[i], false, Space::Shared));
    return CheckedPtr<float>(b.get());
  }
  float* locals(const k::Tid& t) { return &local_regs[((block_of(t)) * threads + t.tid) * nlocals]; }
};

// ---- the executor: the host side of DeviceExec (kernels.cu), launching on the emulator -------------------------
// The executor lstm_plan.h drives, and a launcher of native/cuda/launch_loops.h: the launch loops (persistent
// or per-step, the order of the step launches, the grids of the other kernels) are the device's own; each
// kernel runs its program at once on checked memory, one EmuSched per launch, with the launch shape (units
// per block, threads, persistent or not) each test sets.
struct EmuExec {
  using Mem = CheckedMem;
  int64_t units = 1;     // hidden units per block of the recurrent kernels
  int threads = 32;      // threads per block of the recurrent kernels
  bool persistent = false;
  // Negative control for the tests: drop the grid-wide barriers between steps, as a kernel that forgot
  // grid.sync() (or a per-step form launched without ordering) would. The race check must then fire.
  bool omit_step_barrier = false;

  // ---- executor (lstm_plan.h) ----
  void gemm(const k::GemmArgs<Mem>& g) { launch::gemm(*this, g); }
  void forward_recurrent(const k::FwdArgs<Mem>& a) { launch::forward_recurrent(*this, a); }
  void backward_recurrent(const k::BwdArgs<Mem>& a) { launch::backward_recurrent(*this, a); }
  void gather_hprev(const k::GatherArgs<Mem>& a) { launch::gather_hprev(*this, a); }
  void column_sum(CheckedPtr<const float> m, int64_t rows, int64_t cols, CheckedPtr<float> out) {
    launch::column_sum(*this, m, rows, cols, out);
  }
  void before_dx() {}
  void after_dx() {}

  // ---- launcher (launch_loops.h) ----
  template <class Args>
  launch::RecurrentConfig recurrent_config(launch::Pass, const Args& a) const {
    const int64_t U = units < a.H ? units : a.H;
    return {persistent, U, k::recurrent_blocks(a.H, U), threads,
            static_cast<size_t>(k::recurrent_slice_floats(a.H, U)) * sizeof(float)};
  }
  void gemm_kernel(int64_t tm, int64_t tn, const k::GemmArgs<Mem>& g) {
    EmuSched sc(tm, tn, k::GEMM_THREADS, {size_t(k::GEMM_BK * k::GEMM_BM), size_t(k::GEMM_BK * k::GEMM_BN)},
                k::GEMM_MR * k::GEMM_NR, false);
    k::gemm_program(sc, g);
  }
  void fwd_persistent_kernel(const launch::RecurrentConfig& c, const k::FwdArgs<Mem>& a) {
    EmuSched sc(c.grid, 1, c.threads, {c.smem / sizeof(float)}, 1, omit_step_barrier);
    k::fwd_persistent_program(sc, a);
  }
  void fwd_init_kernel(int64_t blocks, int block_threads, const k::FwdArgs<Mem>& a) {
    EmuSched sc(blocks, 1, block_threads, {}, 1, false);
    k::fwd_init_program(sc, a);
  }
  void fwd_step_kernel(const launch::RecurrentConfig& c, const k::FwdArgs<Mem>& a, int64_t s) {
    const int64_t grid_phase = g_ctx->grid_phase, block_phase = g_ctx->block_phase;
    EmuSched sc(c.grid, 1, c.threads, {}, 1, false);
    if (omit_step_barrier) {  // as if this launch could overlap the previous one
      g_ctx->grid_phase = grid_phase;
      g_ctx->block_phase = block_phase;
    }
    k::fwd_step_program(sc, a, s);
  }
  void bwd_persistent_kernel(const launch::RecurrentConfig& c, const k::BwdArgs<Mem>& a) {
    EmuSched sc(c.grid, 1, c.threads, {c.smem / sizeof(float)}, 1, omit_step_barrier);
    k::bwd_persistent_program(sc, a);
  }
  void bwd_step_kernel(const launch::RecurrentConfig& c, const k::BwdArgs<Mem>& a, int64_t s) {
    EmuSched sc(c.grid, 1, c.threads, {}, 1, false);
    k::bwd_step_program(sc, a, s);
  }
  void bwd_finish_kernel(const launch::RecurrentConfig& c, const k::BwdArgs<Mem>& a) {
    EmuSched sc(c.grid, 1, c.threads, {}, 1, false);
    k::bwd_finish_program(sc, a);
  }
  void gather_hprev_kernel(int64_t blocks, int block_threads, const k::GatherArgs<Mem>& a) {
    EmuSched sc(blocks, 1, block_threads, {}, 1, false);
    k::gather_hprev_program(sc, a);
  }
  void column_sum_kernel(int64_t blocks, int block_threads, CheckedPtr<const float> m, int64_t rows, int64_t cols,
                         CheckedPtr<float> out) {
    EmuSched sc(blocks, 1, block_threads, {}, 1, false);
    k::column_sum_program<EmuSched, Mem>(sc, m, rows, cols, out);
  }
};

// ---- JavaScript entry points ----------------------------------------------------------------------------------
using binding::ArgReader;

Napi::Float32Array to_js(Napi::Env env, const Buf<float>& b) {
  auto out = binding::new_f32(env, static_cast<int64_t>(b.data.size()));
  if (!b.data.empty()) std::memcpy(out.data, b.data.data(), b.data.size() * sizeof(float));
  return out.array;
}

template <class T>
std::unique_ptr<Buf<T>> in_buf(const char* name, binding::View<const T> v) {
  if (!v) return nullptr;
  return std::unique_ptr<Buf<T>>(new Buf<T>(name, v.data, static_cast<size_t>(v.length)));
}
template <class T>
CheckedPtr<const T> cp(const std::unique_ptr<Buf<T>>& b) {
  return b ? CheckedPtr<const T>(b.get()) : CheckedPtr<const T>();
}

// Runs under a fresh context; returns the faults as a JS array.
struct Run {
  Context ctx;
  Run() { g_ctx = &ctx; }
  ~Run() { g_ctx = nullptr; }
  Napi::Array faults(Napi::Env env) {
    Napi::Array a = Napi::Array::New(env);
    for (size_t i = 0; i < ctx.faults.size(); ++i) a.Set(static_cast<uint32_t>(i), ctx.faults[i]);
    if (ctx.fault_count > static_cast<int64_t>(ctx.faults.size()))
      a.Set(static_cast<uint32_t>(ctx.faults.size()),
            "… " + std::to_string(ctx.fault_count - static_cast<int64_t>(ctx.faults.size())) + " more");
    return a;
  }
};

EmuExec exec_from(ArgReader& r, int64_t H) {
  EmuExec ex;
  ex.units = r.integer_or("unitsPerBlock", 1, 1, 4096);  // more than H: one block owns every unit
  ex.threads = static_cast<int>(r.integer_or("threadsPerBlock", 32, 1, 1024));
  ex.persistent = r.boolean_or("persistent", false);
  ex.omit_step_barrier = r.boolean_or("omitStepBarrier", false);
  return ex;
}

constexpr int64_t kMaxEmuElements = int64_t{1} << 22;  // small shapes only: the emulator is slow

// The bf16 tier's pair words of a [rows, cols] float32 matrix (lstm_kernels.cuh pack_bf16_pairs, as CudaLstm
// rounds its weights), as a checked input buffer.
std::unique_ptr<Buf<uint32_t>> bf16_words(const char* name, const float* m, int64_t rows, int64_t cols) {
  std::unique_ptr<Buf<uint32_t>> b(new Buf<uint32_t>(name, static_cast<size_t>(k::bf16_pair_words(rows, cols))));
  k::pack_bf16_pairs(m, rows, cols, b->data.data());
  return b;
}

// sgemm({m, n, k, a, b, c?, transA?, transB?, accumulate?, lda?, ldb?, ldc?, aRows?, aRowCount?, bias?, bf16?})
// bf16: the bf16 tier's form (b rounded into pair words [(k+1)/2, ldb] first; not with transB or accumulate).
Napi::Value js_sgemm(const Napi::CallbackInfo& info) {
  const char* fn = "cudaEmulator.sgemm";
  ArgReader r = ArgReader::from_info(info, fn);
  Napi::Env env = info.Env();
  k::GemmArgs<CheckedMem> g{};
  g.m = r.integer("m", 0, kMaxEmuElements);
  g.n = r.integer("n", 0, kMaxEmuElements);
  g.k = r.integer("k", 0, kMaxEmuElements);
  g.trans_a = r.boolean_or("transA", false);
  g.trans_b = r.boolean_or("transB", false);
  g.accumulate = r.boolean_or("accumulate", false);
  const bool gather = r.has("aRows");
  DS_CHECK(env, !(gather && g.trans_a), binding::kInvalidArgument, std::string(fn) + ": aRows needs transA false");
  const bool bf16 = r.boolean_or("bf16", false);
  DS_CHECK(env, !(bf16 && (g.trans_b || g.accumulate)), binding::kInvalidArgument,
           std::string(fn) + ": bf16 needs transB and accumulate false");
  g.lda = r.integer_or("lda", g.trans_a ? g.m : g.k, 0, kMaxEmuElements);
  g.ldb = r.integer_or("ldb", g.trans_b ? g.k : g.n, 0, kMaxEmuElements);
  g.ldc = r.integer_or("ldc", g.n, g.n, kMaxEmuElements);
  const int64_t a_rows_count = gather ? r.integer("aRowCount", 1, kMaxEmuElements) : (g.trans_a ? g.k : g.m);
  const int64_t a_len = binding::checked_product(env, fn, {a_rows_count, g.lda}, kMaxEmuElements);
  const int64_t b_len = binding::checked_product(env, fn, {g.trans_b ? g.n : g.k, g.ldb}, kMaxEmuElements);
  const int64_t c_len = binding::checked_product(env, fn, {g.m, g.ldc}, kMaxEmuElements);
  auto A = in_buf("A", r.f32("a", a_len, "rows(A)*lda"));
  auto Bm = in_buf("B", r.f32("b", b_len, "rows(B)*ldb"));
  auto C0 = r.f32_opt("c", c_len, "m*ldc");
  auto rows = gather ? in_buf("aRows", r.i32("aRows", g.m, "m")) : nullptr;
  auto bias = in_buf("bias", r.f32_opt("bias", g.n, "n"));
  DS_CHECK(env, !(bias && g.accumulate), binding::kInvalidArgument, std::string(fn) + ": bias needs accumulate false");
  auto Bp = bf16 ? bf16_words("Bp", Bm->data.data(), g.k, g.ldb) : nullptr;
  Run run;
  Buf<float> C("C", c_len, g.ldc == g.n);
  if (C0) std::memcpy(C.data.data(), C0.data, c_len * sizeof(float));
  g.A = cp(A);
  g.B = bf16 ? CheckedPtr<const float>() : cp(Bm);
  g.Bp = cp(Bp);
  g.bias = cp(bias);
  g.a_rows = cp(rows);
  g.C = CheckedPtr<float>(&C);
  EmuExec ex;
  ex.gemm(g);
  if (g.m > 0 && g.n > 0) C.check_writes();
  Napi::Object out = Napi::Object::New(env);
  out.Set("c", to_js(env, C));
  out.Set("faults", run.faults(env));
  return out;
}

struct Dims {
  int64_t B, T, I, H;
};
Dims read_dims(ArgReader& r) {
  Dims d;
  d.B = r.integer("batch", 0, 4096);
  d.T = r.integer("steps", 0, 4096);
  d.I = r.integer("inputSize", 1, 4096);
  d.H = r.integer("hiddenSize", 1, 4096);
  binding::checked_product(r.env(), r.fn(), {d.B, d.T, 5 * d.H}, kMaxEmuElements);
  binding::checked_product(r.env(), r.fn(), {d.B, d.T, d.I}, kMaxEmuElements);
  return d;
}

void check_lengths(ArgReader& r, binding::View<const int32_t> len, int64_t T) {
  if (!len) return;
  for (int64_t b = 0; b < len.length; ++b)
    if (len.data[b] < 0 || len.data[b] > T)
      r.fail_msg(binding::kOutOfRange,
                 "lengths[" + std::to_string(b) + "] = " + std::to_string(len.data[b]) + " is outside [0, steps]");
}

using BufP = std::unique_ptr<Buf<float>>;
BufP out_buf(const std::string& name, int64_t n) { return BufP(new Buf<float>(name, static_cast<size_t>(n), true)); }
BufP scratch_buf(const std::string& name, int64_t n) { return BufP(new Buf<float>(name, static_cast<size_t>(n))); }
CheckedPtr<float> mp(const BufP& b) { return b ? CheckedPtr<float>(b.get()) : CheckedPtr<float>(); }

// Names of per-direction fields, as CudaLstm and the CPU bindings spell them.
const char* dn(int dirs, int d, const char* uni, const char* fw, const char* bw) { return dirs == 1 ? uni : d == 0 ? fw : bw; }
std::string dn(int dirs, int d, const std::string& base) { return dirs == 1 ? base : base + (d == 0 ? "Fw" : "Bw"); }

// Direction i's weights (weights, or backwardWeights for i = 1) and optional initial state, read in the same
// order by both entry points so that their errors name the arguments alike; forward reads the bias too.
struct DirInputs {
  BufP K, R, bias, h0, c0;
};
DirInputs read_direction(ArgReader& r, const Dims& d, int D, int i, bool with_bias) {
  const int64_t G = 4 * d.H;
  DirInputs in;
  ArgReader w = r.object(i == 0 ? "weights" : "backwardWeights");
  in.K = in_buf("kernel", w.f32("kernel", d.I * G, "inputSize*4*hiddenSize"));
  in.R = in_buf("recurrent", w.f32("recurrentKernel", d.H * G, "hiddenSize*4*hiddenSize"));
  if (with_bias) in.bias = in_buf("bias", w.f32("bias", G, "4*hiddenSize"));
  in.h0 = in_buf("h0", r.f32_opt(dn(D, i, "h0", "h0Fw", "h0Bw"), d.B * d.H, "batch*hiddenSize"));
  in.c0 = in_buf("c0", r.f32_opt(dn(D, i, "c0", "c0Fw", "c0Bw"), d.B * d.H, "batch*hiddenSize"));
  return in;
}

// The fields of a LayerForward / LayerBackward both entry points set alike: dims, directions and their order,
// x, lengths, and each direction's weights and initial state.
template <class Layer>
void set_layer(Layer& L, const Dims& d, int D, bool reverse, const BufP& x,
               const std::unique_ptr<Buf<int32_t>>& lengths, const DirInputs* in) {
  L.B = d.B;
  L.T = d.T;
  L.I = d.I;
  L.H = d.H;
  L.dirs = D;
  L.reverse = reverse;
  L.x = cp(x);
  L.lengths = cp(lengths);
  for (int i = 0; i < D; ++i) {
    L.kernel[i] = cp(in[i].K);
    L.recurrent[i] = cp(in[i].R);
    L.h0[i] = cp(in[i].h0);
    L.c0[i] = cp(in[i].c0);
  }
}

// lstmForward({batch, steps, inputSize, hiddenSize, x | tokens+embedding+vocabSize, weights, backwardWeights?,
//              h0?, c0? (h0Fw, c0Fw, h0Bw, c0Bw when bidirectional), lengths?, reverse?, training?, encode?,
//              precision? ('fp32' | 'bf16': the bf16 tier, weights rounded as CudaLstm rounds them),
//              unitsPerBlock?, threadsPerBlock?, persistent?, omitStepBarrier?})
//   → {y, h, c, gates, cells} (bidirectional: y [B,T,2H], hFw, cFw, hBw, cBw, gatesFw, cellsFw, gatesBw,
//     cellsBw) or, with encode: true, {h, c} [B, H·dirs] only; plus faults.
// The same LayerForward as CudaLstm.forward / encode, with the emulator as both directions' executor.
Napi::Value js_forward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaEmulator.lstmForward";
  ArgReader r = ArgReader::from_info(info, fn);
  Napi::Env env = info.Env();
  const Dims d = read_dims(r);
  const int64_t G = 4 * d.H, BT = d.B * d.T;
  const int D = r.has("backwardWeights") ? 2 : 1;
  DirInputs in[2];
  for (int i = 0; i < D; ++i) in[i] = read_direction(r, d, D, i, true);
  std::unique_ptr<Buf<float>> X, E;
  std::unique_ptr<Buf<int32_t>> tokens;
  if (r.has("tokens")) {
    const int64_t vocab = r.integer("vocabSize", 1, kMaxEmuElements);
    auto tv = r.i32("tokens", BT, "batch*steps");
    for (int64_t e = 0; e < tv.length; ++e)
      if (tv.data[e] < 0 || tv.data[e] >= vocab)
        r.fail_msg(binding::kOutOfRange, "tokens[" + std::to_string(e) + "] is outside [0, vocabSize)");
    tokens = in_buf("tokens", tv);
    E = in_buf("embedding", r.f32("embedding", vocab * d.I, "vocabSize*inputSize"));
  } else {
    X = in_buf("x", r.f32("x", BT * d.I, "batch*steps*inputSize"));
  }
  auto lv = r.i32_opt("lengths", d.B, "batch");
  check_lengths(r, lv, d.T);
  auto lengths = in_buf("lengths", lv);
  const bool encode = r.boolean_or("encode", false);
  const bool training = !encode && r.boolean_or("training", true);
  const bool bf16 = r.choice_or("precision", "fp32", {"fp32", "bf16"}) == "bf16";
  std::unique_ptr<Buf<uint32_t>> kernel_bf16[2], recurrent_bf16[2];
  if (bf16)
    for (int i = 0; i < D; ++i) {
      kernel_bf16[i] = bf16_words("kernel_bf16", in[i].K->data.data(), d.I, G);
      recurrent_bf16[i] = bf16_words("recurrent_bf16", in[i].R->data.data(), d.H, G);
    }
  EmuExec ex = exec_from(r, d.H);
  const bool reverse = D == 1 && r.boolean_or("reverse", false);
  EmuExec* exs[2] = {&ex, &ex};
  Run run;

  LayerForward<CheckedMem> L{};
  set_layer(L, d, D, reverse, X, lengths, in);
  L.tokens = cp(tokens);
  L.embedding = cp(E);
  BufP y = encode ? nullptr : out_buf("y", BT * d.H * D);
  L.y = mp(y);
  L.concat_out = encode;
  BufP xproj[2], hbuf[2], cbuf[2], gates[2], cells[2], hout[2], cout[2];
  for (int i = 0; i < D; ++i) {
    L.bias[i] = cp(in[i].bias);
    L.kernel_bf16[i] = cp(kernel_bf16[i]);
    L.recurrent_bf16[i] = cp(recurrent_bf16[i]);
    xproj[i] = out_buf("xproj", BT * G);
    hbuf[i] = scratch_buf("hbuf", 2 * d.B * d.H);
    cbuf[i] = scratch_buf("cbuf", d.B * d.H);
    L.xproj[i] = mp(xproj[i]);
    L.hbuf[i] = mp(hbuf[i]);
    L.cbuf[i] = mp(cbuf[i]);
    if (training) {
      gates[i] = out_buf(dn(D, i, "gates"), BT * G);
      cells[i] = out_buf(dn(D, i, "cells"), BT * d.H);
    }
    L.gates[i] = mp(gates[i]);
    L.cells[i] = mp(cells[i]);
    if (!encode || i == 0) {
      const int64_t n = encode ? d.B * d.H * D : d.B * d.H;
      hout[i] = out_buf(encode ? "h" : dn(D, i, "h"), n);
      cout[i] = out_buf(encode ? "c" : dn(D, i, "c"), n);
    }
    L.h_out[i] = mp(hout[i]);
    L.c_out[i] = mp(cout[i]);
  }
  run_layer_forward(exs, L);
  if (d.B > 0) {
    if (y) y->check_writes();
    for (int i = 0; i < D; ++i) {
      for (const BufP* b : {&gates[i], &cells[i], &hout[i], &cout[i]})
        if (*b) (*b)->check_writes();
      if (d.T > 0) xproj[i]->check_writes();
    }
  }
  Napi::Object out = Napi::Object::New(env);
  if (y) out.Set("y", to_js(env, *y));
  for (int i = 0; i < D; ++i)
    for (const BufP* b : {&gates[i], &cells[i], &hout[i], &cout[i]})
      if (*b) out.Set((*b)->name, to_js(env, **b));
  out.Set("faults", run.faults(env));
  return out;
}

// lstmBackward({batch, steps, inputSize, hiddenSize, x, weights, backwardWeights?, h0?, c0?, lengths?,
//               reverse?, y, gates, cells, dy?, dh?, dc? (…Fw / …Bw per direction when bidirectional),
//               unitsPerBlock?, threadsPerBlock?, persistent?})
//   → {dx, dh0, dc0, dKernel, dRecurrentKernel, dBias} (bidirectional: dx, dh0Fw, dc0Fw, dh0Bw, dc0Bw,
//     forward: {dKernel, …}, backward: {…}), plus faults. The same LayerBackward as CudaLstm.backward.
Napi::Value js_backward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaEmulator.lstmBackward";
  ArgReader r = ArgReader::from_info(info, fn);
  Napi::Env env = info.Env();
  const Dims d = read_dims(r);
  const int64_t G = 4 * d.H, BT = d.B * d.T;
  const int D = r.has("backwardWeights") ? 2 : 1;
  auto X = in_buf("x", r.f32("x", BT * d.I, "batch*steps*inputSize"));
  auto y = in_buf("y", r.f32("y", BT * d.H * D, "batch*steps*hiddenSize*dirs"));
  auto dy = in_buf("dy", r.f32_opt("dy", BT * d.H * D, "batch*steps*hiddenSize*dirs"));
  auto lv = r.i32_opt("lengths", d.B, "batch");
  check_lengths(r, lv, d.T);
  auto lengths = in_buf("lengths", lv);
  DirInputs in[2];
  BufP gates[2], cells[2], dh[2], dc[2];
  for (int i = 0; i < D; ++i) {
    in[i] = read_direction(r, d, D, i, false);
    gates[i] = in_buf("gates", r.f32(dn(D, i, "gates", "gatesFw", "gatesBw"), BT * G, "batch*steps*4*hiddenSize"));
    cells[i] = in_buf("cells", r.f32(dn(D, i, "cells", "cellsFw", "cellsBw"), BT * d.H, "batch*steps*hiddenSize"));
    dh[i] = in_buf("dh", r.f32_opt(dn(D, i, "dh", "dhFw", "dhBw"), d.B * d.H, "batch*hiddenSize"));
    dc[i] = in_buf("dc", r.f32_opt(dn(D, i, "dc", "dcFw", "dcBw"), d.B * d.H, "batch*hiddenSize"));
  }
  EmuExec ex = exec_from(r, d.H);
  const bool reverse = D == 1 && r.boolean_or("reverse", false);
  EmuExec* exs[2] = {&ex, &ex};
  Run run;
  LayerBackward<CheckedMem> L{};
  set_layer(L, d, D, reverse, X, lengths, in);
  L.y = cp(y);
  L.dy = cp(dy);
  BufP dx = out_buf("dx", BT * d.I);
  L.dx = mp(dx);
  BufP dpre[2], dcbuf[2], hprev[2], gh0[2], gc0[2], gk[2], gr[2], gb[2];
  for (int i = 0; i < D; ++i) {
    L.gates[i] = cp(gates[i]);
    L.cells[i] = cp(cells[i]);
    L.dh_out[i] = cp(dh[i]);
    L.dc_out[i] = cp(dc[i]);
    dpre[i] = out_buf("dpre", BT * G);
    dcbuf[i] = scratch_buf("dcbuf", d.B * d.H);
    hprev[i] = out_buf("hprev", BT * d.H);
    gh0[i] = out_buf(dn(D, i, "dh0"), d.B * d.H);
    gc0[i] = out_buf(dn(D, i, "dc0"), d.B * d.H);
    gk[i] = out_buf("dKernel", d.I * G);
    gr[i] = out_buf("dRecurrentKernel", d.H * G);
    gb[i] = out_buf("dBias", G);
    L.dpre[i] = mp(dpre[i]);
    L.dcbuf[i] = mp(dcbuf[i]);
    L.hprev[i] = mp(hprev[i]);
    L.dh0[i] = mp(gh0[i]);
    L.dc0[i] = mp(gc0[i]);
    L.dkernel[i] = mp(gk[i]);
    L.drecurrent[i] = mp(gr[i]);
    L.dbias[i] = mp(gb[i]);
  }
  run_layer_backward(exs, L);
  if (d.B > 0) {
    for (int i = 0; i < D; ++i) {
      gh0[i]->check_writes();
      gc0[i]->check_writes();
      if (d.T > 0)
        for (const BufP* b : {&dpre[i], &hprev[i], &gk[i], &gr[i], &gb[i]}) (*b)->check_writes();
    }
    if (d.T > 0) dx->check_writes(static_cast<uint32_t>(D));  // written by one direction, added to by the other
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("dx", to_js(env, *dx));
  for (int i = 0; i < D; ++i) {
    out.Set(gh0[i]->name, to_js(env, *gh0[i]));
    out.Set(gc0[i]->name, to_js(env, *gc0[i]));
    Napi::Object g = D == 1 ? out : Napi::Object::New(env);
    g.Set("dKernel", to_js(env, *gk[i]));
    g.Set("dRecurrentKernel", to_js(env, *gr[i]));
    g.Set("dBias", to_js(env, *gb[i]));
    if (D == 2) out.Set(i == 0 ? "forward" : "backward", g);
  }
  out.Set("faults", run.faults(env));
  return out;
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded_entry(const Napi::CallbackInfo& info) {
  return binding::guarded(info.Env(), "cudaEmulator", [&]() { return F(info); });
}

}  // namespace emu

void register_emulator(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("sgemm", Napi::Function::New(env, emu::guarded_entry<emu::js_sgemm>, "sgemm"));
  o.Set("lstmForward", Napi::Function::New(env, emu::guarded_entry<emu::js_forward>, "lstmForward"));
  o.Set("lstmBackward", Napi::Function::New(env, emu::guarded_entry<emu::js_backward>, "lstmBackward"));
  exports.Set("cudaEmulator", o);
}

}  // namespace cuda
}  // namespace ds
