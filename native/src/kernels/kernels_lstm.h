// The LSTM step primitives of kernels.h (pack_r, lstm_rec: the fused forward step; colsum, lstm_bwd_rec: the
// backward recurrence), one part of kernels_impl.h: included by it once per instruction set after
// kernels_sgemm.h (the steps use its gemm), with its constants (LMR, ...) and the DS_* macros already defined.
#pragma once

#include "kernels/kernels_cell.h"

namespace ds {
namespace kern {
namespace DS_ISA_NS {

// ---- LSTM ------------------------------------------------------------------------------------------------

// recurrent [H, 4H] → blocks of VW hidden units: block jb holds, for every k, the i, f, g, o columns of its
// units next to each other ([jb][k][gate][VW]), so one register tile computes all four gates of the same units
// and the cell update happens in registers. Lanes past H are 0.
// pack_k: the input kernel [I, 4H] the same way over its I rows.
void pack_k(const float* r, int64_t rows, int64_t hidden, float* dst) {
  const int64_t H = hidden, G = 4 * H;
  // row by row: reads the kernel sequentially, writes one 4×VW run per block
  for (int64_t k = 0; k < rows; k++)
    for (int64_t j0 = 0; j0 < H; j0 += VW) {
      const int nl = (int)imin(VW, H - j0);
      float* d = dst + ((j0 / VW) * rows + k) * 4 * VW;
      for (int g = 0; g < 4; g++) storeu(d + g * VW, load_maybe_n(r + k * G + g * H + j0, nl));
    }
}

void pack_r(const float* r, int64_t hidden, float* dst) { pack_k(r, hidden, hidden, dst); }

// acc[i][g] += Σ_k src[i][k] · pan[k][g] over k in order, for M rows and the four gates of one block of VW
// units (pan: a block of pack_r / pack_k).
template <int M>
DS_INL void tile_fma(const float* const (&src)[M], const float* pan, int64_t K, V (&acc)[M][4]) {
#pragma GCC unroll 2
  for (int64_t k = 0; k < K; k++) {
    V w[4];
    for (int g = 0; g < 4; g++) w[g] = loadu(pan + (k * 4 + g) * VW);
    for (int i = 0; i < M; i++) {
      V v(src[i][k]);
      for (int g = 0; g < 4; g++) acc[i][g] = fma(v, w[g], acc[i][g]);
    }
  }
}

// One step of M active rows (r0 …) for one block of VW hidden units.
template <int M>
DS_INL void lstm_tile(const LstmRecArgs& a, int64_t s, int64_t r0, int64_t j0, int nl, const float* rpan,
                      const float* hp, const float* cp, float* hn, float* cn) {
  const bool skip_rec = s == 0 && a.h0_zero;  // h is 0 before the first step: no recurrent product
  const int64_t H = a.hidden, G = 4 * H, T = a.steps;
  int64_t row[M];
  V acc[M][4];
  if (a.kx) {
    // the input projection of these rows: bias + Σ_k x[k]·kernel[k] (gemm's micro-kernel chain, in k order)
    const int64_t I = a.input;
    const float* xr[M];
    for (int i = 0; i < M; i++) {
      const int64_t t = a.reverse ? a.len[r0 + i] - 1 - s : s;
      row[i] = a.seq[r0 + i] * T + t;
      xr[i] = a.x + row[i] * I;
      for (int g = 0; g < 4; g++) acc[i][g] = a.bias ? load_maybe_n(a.bias + g * H + j0, nl) : V(0.0f);
    }
    tile_fma<M>(xr, a.kx + (j0 / VW) * I * 4 * VW, I, acc);
  } else {
    for (int i = 0; i < M; i++) {
      const int64_t L = a.len[r0 + i];
      const int64_t t = a.reverse ? L - 1 - s : s;
      row[i] = a.seq[r0 + i] * T + t;
      const int64_t xr = a.xidx ? (int64_t)a.xidx[(r0 + i) * T + t] : (r0 + i) * T + t;
      const float* xp = a.xproj + xr * G + j0;
      for (int g = 0; g < 4; g++) acc[i][g] = load_maybe_n(xp + g * H, nl);
    }
    // The input projections of the next tile's rows are scattered over a buffer far larger than the caches:
    // ask for them now so that they arrive while this tile computes.
    for (int64_t r = r0 + M; r < r0 + 2 * M && r < a.rows && a.len[r] > s; r++) {
      const int64_t tn = a.reverse ? a.len[r] - 1 - s : s;
      const float* xn = a.xproj + (a.xidx ? (int64_t)a.xidx[r * T + tn] : r * T + tn) * G + j0;
      for (int g = 0; g < 4; g++) __builtin_prefetch(xn + g * H);
    }
  }
  const float* hr[M];
  for (int i = 0; i < M; i++) hr[i] = hp + (r0 + i) * a.s_ld;
  if (!skip_rec) tile_fma<M>(hr, rpan, H, acc);
  for (int i = 0; i < M; i++) {
    const int64_t so = (r0 + i) * a.s_ld + j0;
    cell_store(a, row[i], j0, nl, acc[i][0], acc[i][1], acc[i][2], acc[i][3], loadu(cp + so), cn + so, hn + so);
  }
}

void lstm_step_blocks(const LstmRecArgs& a, int64_t s, int64_t nact, int64_t j0, int nl, const float* rpan,
                      const float* hp, const float* cp, float* hn, float* cn) {
  int64_t r0 = 0;
  for (; r0 + LMR <= nact; r0 += LMR) lstm_tile<LMR>(a, s, r0, j0, nl, rpan, hp, cp, hn, cn);
  // the remainder rows: same per-element arithmetic as the full tiles
  switch (nact - r0) {
    case 0: break;
    case 1: lstm_tile<1>(a, s, r0, j0, nl, rpan, hp, cp, hn, cn); break;
    case 2: if constexpr (LMR > 2) lstm_tile<2>(a, s, r0, j0, nl, rpan, hp, cp, hn, cn); break;
    case 3: if constexpr (LMR > 3) lstm_tile<3>(a, s, r0, j0, nl, rpan, hp, cp, hn, cn); break;
    case 4: if constexpr (LMR > 4) lstm_tile<4>(a, s, r0, j0, nl, rpan, hp, cp, hn, cn); break;
    case 5: if constexpr (LMR > 5) lstm_tile<5>(a, s, r0, j0, nl, rpan, hp, cp, hn, cn); break;
    case 6: if constexpr (LMR > 6) lstm_tile<6>(a, s, r0, j0, nl, rpan, hp, cp, hn, cn); break;
    case 7: if constexpr (LMR > 7) lstm_tile<7>(a, s, r0, j0, nl, rpan, hp, cp, hn, cn); break;
  }
}

// A batch of one sequence is latency-bound: its step is a vector × matrix product that streams the recurrent
// kernel once from L2, so it reads recurrent [H, 4H] row by row as it is (no packing), NACC column vectors at
// a time, into pre-activations kept in a 4H scratch row, then applies the cell. Each element is the same FMA
// chain over k as in lstm_tile.
constexpr int NACC = VW == 16 ? 16 : 8;

void lstm_row_gemv(const LstmRecArgs& a, int64_t s) {
  const int64_t H = a.hidden, G = 4 * H, T = a.steps;
  const int64_t L = a.len[0];
  const int64_t t = a.reverse ? L - 1 - s : s;
  const int64_t row = a.seq[0] * T + t;
  const float* xp = a.xproj + (a.xidx ? (int64_t)a.xidx[t] : t) * G;
  const float* hp = a.h[s & 1];
  const float* cp = a.c[s & 1];
  float* hn = a.h[(s + 1) & 1];
  float* cn = a.c[(s + 1) & 1];
  float* pre = a.pre;
  const bool skip_rec = s == 0 && a.h0_zero;
  for (int64_t c0 = 0; c0 < G; c0 += NACC * VW) {
    const int64_t nc = imin(NACC * VW, G - c0);
    V acc[NACC];
    if (nc == NACC * VW) {
      for (int v = 0; v < NACC; v++) acc[v] = loadu(xp + c0 + v * VW);
      if (!skip_rec)
        for (int64_t k = 0; k < H; k++) {
          const V hv(hp[k]);
          const float* rk = a.r + k * G + c0;
          for (int v = 0; v < NACC; v++) acc[v] = fma(hv, loadu(rk + v * VW), acc[v]);
        }
      for (int v = 0; v < NACC; v++) storeu(pre + c0 + v * VW, acc[v]);
    } else {
      for (int v = 0; v < NACC; v++) {
        const int64_t nl = nc - v * VW;
        acc[v] = nl >= VW ? loadu(xp + c0 + v * VW) : nl > 0 ? load_n(xp + c0 + v * VW, (int)nl) : V(0.0f);
      }
      if (!skip_rec)
        for (int64_t k = 0; k < H; k++) {
          const V hv(hp[k]);
          const float* rk = a.r + k * G + c0;
          for (int v = 0; v < NACC; v++) {
            const int64_t nl = nc - v * VW;
            if (nl > 0) acc[v] = fma(hv, load_maybe_n(rk + v * VW, (int)imin(nl, VW)), acc[v]);
          }
        }
      for (int v = 0; v < NACC; v++) {
        const int64_t nl = nc - v * VW;
        if (nl > 0) store_maybe_n(pre + c0 + v * VW, acc[v], (int)imin(nl, VW));
      }
    }
  }
  for (int64_t j0 = 0; j0 < H; j0 += VW) {
    const int nl = (int)imin(VW, H - j0);
    cell_store(a, row, j0, nl, load_maybe_n(pre + j0, nl), load_maybe_n(pre + H + j0, nl), load_maybe_n(pre + 2 * H + j0, nl),
               load_maybe_n(pre + 3 * H + j0, nl), loadu(cp + j0), cn + j0, hn + j0);
  }
}

void lstm_rec(const LstmRecArgs& a) {
  const int64_t H = a.hidden;
  int64_t nact = a.rows;
  if (a.pre) {  // one row: the latency path
    for (int64_t s = 0; s < a.len[0]; s++) lstm_row_gemv(a, s);
    return;
  }
  for (int64_t s = 0; s < a.steps; s++) {
    while (nact > 0 && a.len[nact - 1] <= s) nact--;
    if (nact == 0) break;
    const float* hp = a.h[s & 1];
    const float* cp = a.c[s & 1];
    float* hn = a.h[(s + 1) & 1];
    float* cn = a.c[(s + 1) & 1];
    for (int64_t j0 = 0; j0 < H; j0 += VW) {
      const int nl = (int)imin(VW, H - j0);
      lstm_step_blocks(a, s, nact, j0, nl, a.rp + (j0 / VW) * H * 4 * VW, hp, cp, hn, cn);
    }
  }
}

void colsum(const float* a, int64_t lda, int64_t rows, int64_t n, float* out, bool accumulate) {
  for (int64_t j0 = 0; j0 < n; j0 += 4 * VW) {
    V acc[4] = {V(0.0f), V(0.0f), V(0.0f), V(0.0f)};
    const int64_t nj = imin(4 * VW, n - j0);
    if (accumulate)
      for (int v = 0; v < 4; v++) {
        const int64_t nl = nj - v * VW;
        if (nl > 0) acc[v] = load_maybe_n(out + j0 + v * VW, (int)imin(nl, VW));
      }
    for (int64_t r = 0; r < rows; r++) {
      const float* p = a + r * lda + j0;
      for (int v = 0; v < 4; v++) {
        const int64_t nl = nj - v * VW;
        if (nl >= VW)
          acc[v] = acc[v] + loadu(p + v * VW);
        else if (nl > 0)
          acc[v] = acc[v] + load_n(p + v * VW, (int)nl);
      }
    }
    for (int v = 0; v < 4; v++) {
      const int64_t nl = nj - v * VW;
      if (nl > 0) store_maybe_n(out + j0 + v * VW, acc[v], (int)imin(nl, VW));
    }
  }
}

void lstm_bwd_rec(const LstmBwdRecArgs& a) {
  const int64_t H = a.hidden, G = 4 * H, T = a.steps;
  int64_t nact = 0;
  for (int64_t s = T - 1; s >= 0; s--) {
    while (nact < a.rows && a.len[nact] > s) nact++;
    if (nact == 0) continue;
    for (int64_t i = 0; i < nact; i++) {
      if (i + 1 < nact) {  // the next row's gates and cells lie elsewhere in a large buffer: fetch them early
        const int64_t bn = a.seq[i + 1], Ln = a.len[i + 1];
        const int64_t rn = bn * T + (a.reverse ? Ln - 1 - s : s);
        for (int64_t o = 0; o < G; o += 16) __builtin_prefetch(a.gates + rn * G + o);
        for (int64_t o = 0; o < H; o += 16) __builtin_prefetch(a.cells + rn * H + o);
      }
      const int64_t b = a.seq[i], L = a.len[i];
      const int64_t t = a.reverse ? L - 1 - s : s;
      const int64_t tprev = s == 0 ? -1 : (a.reverse ? L - s : s - 1);
      const int64_t row = b * T + t;
      const float* gp = a.gates + row * G;
      const float* cc = a.cells + row * H;
      const float* cprev = tprev >= 0 ? a.cells + (b * T + tprev) * H : (a.c0 ? a.c0 + b * H : nullptr);
      const float* dyp = a.dy ? a.dy + row * a.dy_ld : nullptr;
      float* dga = a.dg + (a.step_base[s] + i) * G;
      float* dh = a.dh + i * a.s_ld;
      float* dc = a.dc + i * a.s_ld;
      for (int64_t j0 = 0; j0 < H; j0 += VW) {
        const int nl = (int)imin(VW, H - j0);
        V dhv = loadu(dh + j0);
        if (dyp) dhv = dhv + load_maybe_n(dyp + j0, nl);
        V cpv = cprev ? load_maybe_n(cprev + j0, nl) : V(0.0f);
        V dpi, dpf, dpg, dpo, dcp;
        math::cell_backward(load_maybe_n(gp + j0, nl), load_maybe_n(gp + H + j0, nl), load_maybe_n(gp + 2 * H + j0, nl),
                            load_maybe_n(gp + 3 * H + j0, nl), cpv, load_maybe_n(cc + j0, nl), dhv, loadu(dc + j0), dpi,
                            dpf, dpg, dpo, dcp);
        storeu(dc + j0, dcp);
        store_maybe_n(dga + j0, dpi, nl);
        store_maybe_n(dga + H + j0, dpf, nl);
        store_maybe_n(dga + 2 * H + j0, dpg, nl);
        store_maybe_n(dga + 3 * H + j0, dpo, nl);
      }
    }
    if (a.after_step) a.after_step(a.ctx, s);
    // dh_{prev} = dG · recurrentᵀ for the active rows (lanes past H of dh are never written: they stay 0);
    // after the first step it is dh0, which a weights-only call does not want
    if (s == 0 && !a.want_dh0) break;
    GemmArgs g{};
    g.m = nact;
    g.n = H;
    g.k = G;
    g.a = a.dg + a.step_base[s] * G;
    g.lda = G;
    g.trans_a = false;
    g.bp = a.rtp;
    g.bias = nullptr;
    g.c = a.dh;
    g.ldc = a.s_ld;
    g.accumulate = false;
    g.a_scratch = nullptr;
    gemm(g);
  }
}

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds
