// The end of a fused LSTM step, shared by the float32 step tiles (kernels_lstm.h) and the bf16 ones
// (kernels_bf16_avx512.cpp): the cell (lstm_math.h) on one block of VW hidden units of one row, then its
// stores. Included inside a kernel file's ISA namespace setup, after simd/vec.h (V) and kernels/kernels.h.
#pragma once

namespace ds {
namespace kern {
namespace DS_ISA_NS {

// The new c and h of units [j0, j0+VW) into the state buffers cn, hn (all VW lanes: lanes past H stay 0),
// and, for the nl valid lanes, y, the activated gates and the cell state of output row `row` (b*T + t) when
// the call keeps them.
DS_INL void store_cell(const LstmRecArgs& a, int64_t row, int64_t j0, int nl, V ig, V fg, V gg, V og, V cc, V hh,
                       float* cn, float* hn) {
  const int64_t H = a.hidden, G = 4 * H;
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

// Pre-activations pi..po and the previous cell state of units [j0, j0+VW) → the cell (lstm_math.h), stored
// by store_cell.
DS_INL void cell_store(const LstmRecArgs& a, int64_t row, int64_t j0, int nl, V pi, V pf, V pg, V po, V c_prev,
                       float* cn, float* hn) {
  V ig, fg, gg, og, cc, hh;
  math::cell_forward(pi, pf, pg, po, c_prev, ig, fg, gg, og, cc, hh);
  store_cell(a, row, j0, nl, ig, fg, gg, og, cc, hh, cn, hn);
}

// N vectors as one value of lstm_math.h's value type: every operation runs on the N parts one after the other.
// The cell of one row is a long chain of dependent operations (the polynomials of exp and tanh, a division,
// then tanh of the new c) that the out-of-order window cannot overlap across rows; on VN<N> the N rows'
// chains are interleaved instruction by instruction. Each part sees exactly the operations of V: same results.
template <int N>
struct VN {
  V p[N];
  DS_INL VN() = default;
  DS_INL VN(float x) {
    for (int i = 0; i < N; i++) p[i] = V(x);
  }
};
#define DS_VN_OP(DECL, EXPR)                  \
  template <int N>                            \
  DS_INL VN<N> DECL {                         \
    VN<N> r;                                  \
    for (int i = 0; i < N; i++) r.p[i] = EXPR; \
    return r;                                 \
  }
DS_VN_OP(operator+(VN<N> a, VN<N> b), a.p[i] + b.p[i])
DS_VN_OP(operator-(VN<N> a, VN<N> b), a.p[i] - b.p[i])
DS_VN_OP(operator*(VN<N> a, VN<N> b), a.p[i] * b.p[i])
DS_VN_OP(operator/(VN<N> a, VN<N> b), a.p[i] / b.p[i])
DS_VN_OP(vmin(VN<N> a, VN<N> b), vmin(a.p[i], b.p[i]))
DS_VN_OP(vmax(VN<N> a, VN<N> b), vmax(a.p[i], b.p[i]))
DS_VN_OP(vround(VN<N> a), vround(a.p[i]))
DS_VN_OP(vpow2(VN<N> a), vpow2(a.p[i]))
#undef DS_VN_OP

// cell_store for N rows of one block at once (pre[i][g]: row i's pre-activation of gate g; rows[i]: its output
// row; so[i]: its offset in the state buffers cp, cn, hn).
template <int N>
DS_INL void cell_store_rows(const LstmRecArgs& a, const int64_t (&rows)[N], const int64_t (&so)[N], int64_t j0, int nl,
                            const V (&pre)[N][4], const float* cp, float* cn, float* hn) {
  VN<N> pi, pf, pg, po, c_prev, ig, fg, gg, og, cc, hh;
  for (int i = 0; i < N; i++) {
    pi.p[i] = pre[i][0], pf.p[i] = pre[i][1], pg.p[i] = pre[i][2], po.p[i] = pre[i][3];
    c_prev.p[i] = loadu(cp + so[i]);
  }
  math::cell_forward(pi, pf, pg, po, c_prev, ig, fg, gg, og, cc, hh);
  for (int i = 0; i < N; i++)
    store_cell(a, rows[i], j0, nl, ig.p[i], fg.p[i], gg.p[i], og.p[i], cc.p[i], hh.p[i], cn + so[i], hn + so[i]);
}

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds
