// The order of kernel launches for one LSTM direction, written once for two executors:
//   - DeviceExec (native/cuda/device.h): launches the CUDA kernels on a stream;
//   - EmuExec (native/verify/emulate.cpp): runs the same kernel bodies on the host with checked memory.
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
  // The bf16 tier (lstm_kernels.cuh): kernel and recurrent as pair words (pack_bf16_pairs), used instead of
  // kernel and recurrent when both are given; nullptr at float32.
  typename M::template ptr<const uint32_t> kernel_bf16, recurrent_bf16;
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
  // The input projection of every step at once: xproj = x · kernel (or embedding rows · kernel); in the bf16
  // tier with the bias as the start of each chain (the CPU tier's order), so the step adds none.
  const bool bf16 = p.kernel_bf16 && p.recurrent_bf16;
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
  g.B = bf16 ? nullptr : p.kernel;
  g.Bp = bf16 ? p.kernel_bf16 : nullptr;
  g.bias = bf16 ? p.bias : nullptr;
  g.C = p.xproj;
  ex.gemm(g);

  k::FwdArgs<M> f{};
  f.B = p.B;
  f.T = p.T;
  f.H = p.H;
  f.U = 1;  // the executor chooses
  f.xproj = p.xproj;
  f.bias = bf16 ? nullptr : p.bias;
  f.R = bf16 ? nullptr : p.recurrent;
  f.Rp = bf16 ? p.recurrent_bf16 : nullptr;
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

// ---- a layer: one direction, or two (forward t = 0…len-1, backward t = len-1…0) -------------------------
// The pointer arithmetic that puts two directions into one output (y [B,T,2H] with the forward direction in
// columns [0,H), the backward in [H,2H); encodings [B,2H] likewise) and sums their dx lives here once, for the
// device bindings and the emulator alike. Direction d runs on executor ex[d] (two streams on the device).

template <class M>
struct LayerForward {
  int64_t B, T, I, H;
  int dirs;      // 1 or 2
  bool reverse;  // one direction only: run it reversed
  typename M::template ptr<const float> x;
  typename M::template ptr<const int32_t> tokens;
  typename M::template ptr<const float> embedding;
  typename M::template ptr<const int32_t> lengths;
  typename M::template ptr<const float> kernel[2], recurrent[2], bias[2];
  typename M::template ptr<const uint32_t> kernel_bf16[2], recurrent_bf16[2];  // the bf16 tier, or nullptr
  typename M::template ptr<const float> h0[2], c0[2];
  typename M::template ptr<float> xproj[2], hbuf[2], cbuf[2];  // scratch per direction
  typename M::template ptr<float> y;                           // [B, T, H·dirs] or nullptr (encoding)
  typename M::template ptr<float> gates[2], cells[2];          // per direction, or nullptr (inference)
  // Final states: direction d writes h_out[d] + b*out_ld. For [B, 2H] encodings pass the same base for both
  // directions with concat_out = true: direction d then starts at column d*H and out_ld is 2H.
  typename M::template ptr<float> h_out[2], c_out[2];
  bool concat_out;
};

// What direction d's plan takes from its layer alike in forward and backward: the dims, x and lengths, the
// direction's weights, initial state and saved gates/cells, the row stride of y, and its visiting order (of
// two directions the second runs reversed).
template <class Plan, class Layer>
void plan_direction(Plan& p, const Layer& L, int d) {
  p.B = L.B;
  p.T = L.T;
  p.I = L.I;
  p.H = L.H;
  p.x = L.x;
  p.kernel = L.kernel[d];
  p.recurrent = L.recurrent[d];
  p.lengths = L.lengths;
  p.reverse = L.dirs == 2 ? d == 1 : L.reverse;
  p.h0 = L.h0[d];
  p.c0 = L.c0[d];
  p.y_ld = L.dirs * L.H;
  p.gates = L.gates[d];
  p.cells = L.cells[d];
}

template <class Ex>
void run_layer_forward(Ex* const ex[2], const LayerForward<typename Ex::Mem>& L) {
  for (int d = 0; d < L.dirs; ++d) {
    ForwardPlan<typename Ex::Mem> p{};
    plan_direction(p, L, d);
    p.tokens = L.tokens;
    p.embedding = L.embedding;
    p.bias = L.bias[d];
    p.kernel_bf16 = L.kernel_bf16[d];
    p.recurrent_bf16 = L.recurrent_bf16[d];
    p.xproj = L.xproj[d];
    p.hbuf = L.hbuf[d];
    p.cbuf = L.cbuf[d];
    p.y = L.y ? L.y + d * L.H : L.y;
    if (L.concat_out) {
      p.h_out = L.h_out[0] + d * L.H;
      p.c_out = L.c_out[0] ? L.c_out[0] + d * L.H : L.c_out[0];
      p.out_ld = L.dirs * L.H;
    } else {
      p.h_out = L.h_out[d];
      p.c_out = L.c_out[d];
      p.out_ld = L.H;
    }
    run_forward(*ex[d], p);
  }
}

template <class M>
struct LayerBackward {
  int64_t B, T, I, H;
  int dirs;
  bool reverse;
  typename M::template ptr<const float> x;
  typename M::template ptr<const int32_t> lengths;
  typename M::template ptr<const float> kernel[2], recurrent[2];
  typename M::template ptr<const float> h0[2], c0[2];
  typename M::template ptr<const float> y;             // [B, T, H·dirs] from forward
  typename M::template ptr<const float> gates[2], cells[2];
  typename M::template ptr<const float> dy;            // [B, T, H·dirs] or nullptr
  typename M::template ptr<const float> dh_out[2], dc_out[2];
  typename M::template ptr<float> dpre[2], dcbuf[2], hprev[2];  // scratch per direction
  typename M::template ptr<float> dx;                  // [B, T, I]: the sum over the directions
  typename M::template ptr<float> dh0[2], dc0[2], dkernel[2], drecurrent[2], dbias[2];
};

// Direction 1 adds its dx into direction 0's: its executor's before_dx() must order that after direction
// 0's after_dx() (an event between the two streams on the device).
template <class Ex>
void run_layer_backward(Ex* const ex[2], const LayerBackward<typename Ex::Mem>& L) {
  for (int d = 0; d < L.dirs; ++d) {
    BackwardPlan<typename Ex::Mem> p{};
    plan_direction(p, L, d);
    p.y = L.y + d * L.H;
    p.dy = L.dy ? L.dy + d * L.H : L.dy;
    p.dh_out = L.dh_out[d];
    p.dc_out = L.dc_out[d];
    p.dpre = L.dpre[d];
    p.dcbuf = L.dcbuf[d];
    p.hprev = L.hprev[d];
    p.dx = L.dx;
    p.dx_accumulate = d == 1;
    p.dh0 = L.dh0[d];
    p.dc0 = L.dc0[d];
    p.dkernel = L.dkernel[d];
    p.drecurrent = L.drecurrent[d];
    p.dbias = L.dbias[d];
    run_backward(*ex[d], p);
  }
}

}  // namespace cuda
}  // namespace ds
