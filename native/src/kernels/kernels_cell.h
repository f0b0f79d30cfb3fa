// The end of a fused LSTM step, shared by the float32 step tiles (kernels_lstm.h) and the bf16 ones
// (kernels_bf16_avx512.cpp): the cell (lstm_math.h) on one block of VW hidden units of one row, then its
// stores. Included inside a kernel file's ISA namespace setup, after simd/vec.h (V) and kernels/kernels.h.
#pragma once

namespace ds {
namespace kern {
namespace DS_ISA_NS {

// Pre-activations pi..po and the previous cell state of units [j0, j0+VW) → the new c and h into the state
// buffers cn, hn (all VW lanes: lanes past H stay 0), and, for the nl valid lanes, y, the activated gates and
// the cell state of output row `row` (b*T + t) when the call keeps them.
DS_INL void cell_store(const LstmRecArgs& a, int64_t row, int64_t j0, int nl, V pi, V pf, V pg, V po, V c_prev,
                       float* cn, float* hn) {
  const int64_t H = a.hidden, G = 4 * H;
  V ig, fg, gg, og, cc, hh;
  math::cell_forward(pi, pf, pg, po, c_prev, ig, fg, gg, og, cc, hh);
  storeu(cn, cc);
  storeu(hn, hh);
  if (a.y) store_maybe_n(a.y + row * a.y_ld + j0, hh, nl);
  if (a.gates) {
    float* gp = a.gates + row * G + j0;
    store_maybe_n(gp, ig, nl);
    store_maybe_n(gp + H, fg, nl);
    store_maybe_n(gp + 2 * H, gg, nl);
    store_maybe_n(gp + 3 * H, og, nl);
  }
  if (a.cells) store_maybe_n(a.cells + row * H + j0, cc, nl);
}

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds
