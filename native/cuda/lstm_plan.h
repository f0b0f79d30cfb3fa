// The order of kernel launches for one LSTM direction, written once for two executors:
//   - DeviceExec (native/cuda/device.h): launches the CUDA kernels on a stream;
//   - EmuExec (native/cuda/emulate.cpp): runs the same kernel bodies on the host with checked memory.
// An executor provides: using Mem; gemm(GemmArgs), forward_recurrent(FwdArgs) and backward_recurrent(BwdArgs)
// (they choose the units per block and the persistent or per-step form), gather_hprev(GatherArgs),
// column_sum(m, rows, cols, out), and before_dx() (waits until another direction's dx is complete when dx is
// accumulated from two streams) / after_dx().
#pragma once

#include <cstdint>

#include "lstm_kernels.cuh"

namespace ds {
namespace cuda {

// One direction's forward pass (training, inference, or encoding when y, gates and cells are null).
template <class M>
struct ForwardPlan {
  int64_t B, T, I, H;
  typename M::template ptr<const float> x;          // [B, T, I], or nullptr when tokens are given
  typename M::template ptr<const int32_t> tokens;   // [B, T] ids into embedding, or nullptr
  typename M::template ptr<const float> embedding;  // [vocab, I]
  typename M::template ptr<const float> kernel, recurrent, bias;
  typename M::template ptr<const int32_t> lengths;
  bool reverse;
  typename M::template ptr<const float> h0, c0;
  // scratch
  typename M::template ptr<float> xproj;  // [B*T, 4H]
  typename M::template ptr<float> hbuf;   // [2*B*H]
  typename M::template ptr<float> cbuf;   // [B*H]
  // outputs
  typename M::template ptr<float> y;      // or nullptr
  int64_t y_ld;
  typename M::template ptr<float> gates;  // [B*T*4H] or nullptr
  typename M::template ptr<float> cells;  // [B*T*H] or nullptr
  typename M::template ptr<float> h_out, c_out;
  int64_t out_ld;
};

template <class Ex>
void run_forward(Ex& ex, const ForwardPlan<typename Ex::Mem>& p) {
  using M = typename Ex::Mem;
  const int64_t G = 4 * p.H;
  // The input projection of every step at once: xproj = x · kernel (or embedding rows · kernel).
  k::GemmArgs<M> g{};
  g.trans_a = false;
  g.trans_b = false;
  g.accumulate = false;
  g.m = p.B * p.T;
  g.n = G;
  g.k = p.I;
  g.lda = p.I;
  g.ldb = G;
  g.ldc = G;
  g.A = p.tokens ? p.embedding : p.x;
  g.a_rows = p.tokens;
  g.B = p.kernel;
  g.C = p.xproj;
  ex.gemm(g);

  k::FwdArgs<M> f{};
  f.B = p.B;
  f.T = p.T;
  f.H = p.H;
  f.U = 1;  // the executor chooses
  f.xproj = p.xproj;
  f.bias = p.bias;
  f.R = p.recurrent;
  f.lengths = p.lengths;
  f.reverse = p.reverse;
  f.h0 = p.h0;
  f.c0 = p.c0;
  f.hbuf = p.hbuf;
  f.cbuf = p.cbuf;
  f.y = p.y;
  f.y_ld = p.y_ld;
  f.gates = p.gates;
  f.cells = p.cells;
  f.h_out = p.h_out;
  f.c_out = p.c_out;
  f.out_ld = p.out_ld;
  ex.forward_recurrent(f);
}

// One direction's backward pass: BPTT, then the weight and input gradients as GEMMs over all steps.
template <class M>
struct BackwardPlan {
  int64_t B, T, I, H;
  typename M::template ptr<const float> x;  // [B, T, I]
  typename M::template ptr<const float> kernel, recurrent;
  typename M::template ptr<const int32_t> lengths;
  bool reverse;
  typename M::template ptr<const float> h0, c0;
  typename M::template ptr<const float> y;  // forward output
  int64_t y_ld;
  typename M::template ptr<const float> gates, cells;  // from the forward pass (training)
  typename M::template ptr<const float> dy;            // or nullptr, same y_ld
  typename M::template ptr<const float> dh_out, dc_out;
  // scratch
  typename M::template ptr<float> dpre;   // [B*T*4H]
  typename M::template ptr<float> dcbuf;  // [B*H]
  typename M::template ptr<float> hprev;  // [B*T*H]
  // outputs
  typename M::template ptr<float> dx;  // [B*T*I]
  bool dx_accumulate;
  typename M::template ptr<float> dh0, dc0, dkernel, drecurrent, dbias;
};

template <class Ex>
void run_backward(Ex& ex, const BackwardPlan<typename Ex::Mem>& p) {
  using M = typename Ex::Mem;
  const int64_t G = 4 * p.H, rows = p.B * p.T;
  k::BwdArgs<M> a{};
  a.B = p.B;
  a.T = p.T;
  a.H = p.H;
  a.U = 1;
  a.R = p.recurrent;
  a.lengths = p.lengths;
  a.reverse = p.reverse;
  a.gates = p.gates;
  a.cells = p.cells;
  a.c0 = p.c0;
  a.dy = p.dy;
  a.dy_ld = p.y_ld;
  a.dh_out = p.dh_out;
  a.dc_out = p.dc_out;
  a.dpre = p.dpre;
  a.dcbuf = p.dcbuf;
  a.dh0 = p.dh0;
  a.dc0 = p.dc0;
  ex.backward_recurrent(a);

  k::GatherArgs<M> ga{};
  ga.B = p.B;
  ga.T = p.T;
  ga.H = p.H;
  ga.lengths = p.lengths;
  ga.reverse = p.reverse;
  ga.h0 = p.h0;
  ga.y = p.y;
  ga.y_ld = p.y_ld;
  ga.hprev = p.hprev;
  ex.gather_hprev(ga);

  // dkernel = xᵀ · dpre, drecurrent = hprevᵀ · dpre, dbias = Σ_rows dpre, dx (+)= dpre · kernelᵀ.
  k::GemmArgs<M> g{};
  g.trans_a = true;
  g.trans_b = false;
  g.accumulate = false;
  g.m = p.I;
  g.n = G;
  g.k = rows;
  g.lda = p.I;
  g.ldb = G;
  g.ldc = G;
  g.A = p.x;
  g.a_rows = nullptr;
  g.B = p.dpre;
  g.C = p.dkernel;
  ex.gemm(g);

  g.m = p.H;
  g.lda = p.H;
  g.A = p.hprev;
  g.C = p.drecurrent;
  ex.gemm(g);

  ex.column_sum(p.dpre, rows, G, p.dbias);

  g.trans_a = false;
  g.trans_b = true;
  g.accumulate = p.dx_accumulate;
  g.m = rows;
  g.n = p.I;
  g.k = G;
  g.lda = G;
  g.ldb = G;
  g.ldc = p.I;
  g.A = p.dpre;
  g.B = p.kernel;
  g.C = p.dx;
  if (p.dx_accumulate) ex.before_dx();
  ex.gemm(g);
  ex.after_dx();
}

}  // namespace cuda
}  // namespace ds
