// The compute primitives of kernels.h, written once over the vector type of simd/vec.h and compiled once per
// instruction set by kernels_<isa>.cpp, which define before including this file:
//   DS_ISA_NS  namespace of this ISA's copy        DS_VW       floats per vector
//   DS_GEMM_MR rows of the sgemm register tile     DS_GEMM_NV  vectors per row of that tile (nr = NV*VW)
//   DS_LSTM_MR rows of the fused LSTM step tile    DS_KC       K block of the sgemm (B panel kc×nr in L1)
//   DS_TABLE   the name of the exported Table
// Nothing in here may use an inline function or template from a header outside this namespace (other than
// compiler intrinsics and lstm_math.h instantiated with this V): see simd/vec.h on ODR.
#pragma once

#include "kernels/kernels.h"
#include "simd/vec.h"
#include "lstm_math.h"

namespace ds {
namespace kern {
namespace DS_ISA_NS {

constexpr int GMR = DS_GEMM_MR;
constexpr int GNV = DS_GEMM_NV;
constexpr int GNR = GNV * VW;
constexpr int KC = DS_KC;
constexpr int LMR = DS_LSTM_MR;
constexpr int64_t MC = 240;  // rows of A per block (A block MC×KC stays in L2); a multiple of GMR

DS_INL int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- sgemm --------------------------------------------------------------------------------------------

void pack_b(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, float* dst) {
  const int64_t np = round_up(n, GNR);
  for (int64_t k0 = 0; k0 < k; k0 += KC) {
    const int64_t kcb = imin(KC, k - k0);
    float* blk = dst + k0 * np;
    for (int64_t j0 = 0; j0 < n; j0 += GNR) {
      float* pan = blk + (j0 / GNR) * kcb * GNR;
      const int64_t nj = imin(GNR, n - j0);
      if (!trans) {
        for (int64_t kk = 0; kk < kcb; kk++) {
          const float* src = b + (k0 + kk) * ldb + j0;
          float* d = pan + kk * GNR;
          if (nj == GNR) {
            for (int v = 0; v < GNV; v++) storeu(d + v * VW, loadu(src + v * VW));
          } else {
            for (int64_t j = 0; j < GNR; j++) d[j] = j < nj ? src[j] : 0.0f;
          }
        }
      } else {
        // op(B)[kk, j] = B[j, kk]: read each source row of B once, scatter into the panel.
        for (int64_t j = 0; j < GNR; j++) {
          if (j < nj) {
            const float* src = b + (j0 + j) * ldb + k0;
            for (int64_t kk = 0; kk < kcb; kk++) pan[kk * GNR + j] = src[kk];
          } else {
            for (int64_t kk = 0; kk < kcb; kk++) pan[kk * GNR + j] = 0.0f;
          }
        }
      }
    }
  }
}

// How the micro-kernel reads B: packed panels (pack_b), or straight from a row-major B [k, n] (ldb) for
// calls with too few rows of A to repay packing (the tail panel, ncols < nr, with masked loads).
enum { BM_PACKED = 0, BM_DIRECT = 1, BM_DIRECT_TAIL = 2 };

template <int BM>
DS_INL V bload(const float* b, int64_t k, int64_t ldb, int v, int ncols) {
  if (BM == BM_PACKED) return loadu(b + k * GNR + v * VW);
  if (BM == BM_DIRECT) return loadu(b + k * ldb + v * VW);
  const int nl = ncols - v * VW;
  return nl >= VW ? loadu(b + k * ldb + v * VW) : nl > 0 ? load_n(b + k * ldb + v * VW, nl) : V(0.0f);
}

// One M×nr tile of C over one K block: C = A·B (+ bias), or C += A·B when acc_c. PA: A packed in GMR-row
// panels (element (i, k) at a[k*GMR + i]) or read directly (a[i*lda + k]). ncols < nr only at the right edge.
// Every element is the same chain of FMAs over k whatever M, BM and PA: the tiling never changes results.
template <int M, bool PA, int BM, int NV = GNV>
DS_INL void micro(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                  int ncols, bool acc_c, const float* bias) {
  static_assert(BM != BM_PACKED || NV == GNV, "packed panels are GNR wide");
  constexpr int GNV = NV;  // this tile's width in vectors (narrower than the panel tile for few rows)
  V acc[M][GNV];
  if (acc_c) {
    for (int i = 0; i < M; i++)
      for (int v = 0; v < GNV; v++) {
        const int nl = ncols - v * VW;
        acc[i][v] = nl >= VW ? loadu(c + i * ldc + v * VW) : (nl > 0 ? load_n(c + i * ldc + v * VW, nl) : V(0.0f));
      }
  } else {
    for (int v = 0; v < GNV; v++) {
      const int nl = ncols - v * VW;
      V bv = !bias ? V(0.0f) : nl >= VW ? loadu(bias + v * VW) : (nl > 0 ? load_n(bias + v * VW, nl) : V(0.0f));
      for (int i = 0; i < M; i++) acc[i][v] = bv;
    }
  }
  const float* ar[M];
  for (int i = 0; i < M; i++) ar[i] = PA ? a + i : a + i * lda;
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; k++) {
    if (BM != BM_PACKED)  // rows of B are ldb apart: too far for the hardware prefetcher to follow
      for (int v = 0; v < GNV; v += 64 / (4 * VW) > 0 ? 64 / (4 * VW) : 1)
        __builtin_prefetch(b + (k + 12) * ldb + v * VW);
    V bv[GNV];
    for (int v = 0; v < GNV; v++) bv[v] = bload<BM>(b, k, ldb, v, ncols);
    for (int i = 0; i < M; i++) {
      V av(PA ? ar[i][k * GMR] : ar[i][k]);
      for (int v = 0; v < GNV; v++) acc[i][v] = fma(av, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < M; i++)
    for (int v = 0; v < GNV; v++) {
      const int nl = ncols - v * VW;
      if (nl >= VW)
        storeu(c + i * ldc + v * VW, acc[i][v]);
      else if (nl > 0)
        store_n(c + i * ldc + v * VW, acc[i][v], nl);
    }
}

template <bool PA, int BM>
void micro_any(int m, int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
               int ncols, bool acc_c, const float* bias) {
  static_assert(GMR <= 8, "extend the switch");
  switch (m) {
    case 1: micro<1, PA, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); break;
    case 2: if constexpr (GMR >= 2) micro<2, PA, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); break;
    case 3: if constexpr (GMR >= 3) micro<3, PA, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); break;
    case 4: if constexpr (GMR >= 4) micro<4, PA, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); break;
    case 5: if constexpr (GMR >= 5) micro<5, PA, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); break;
    case 6: if constexpr (GMR >= 6) micro<6, PA, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); break;
    case 7: if constexpr (GMR >= 7) micro<7, PA, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); break;
    case 8: if constexpr (GMR >= 8) micro<8, PA, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); break;
  }
}

// Few rows of A (m <= 2*GMR) and B read in place: all the rows in one tile of half the width, so that B is
// streamed once (two row tiles would read each panel twice, and a panel of a row-major B cannot stay in L1:
// its rows are ldb apart and map onto a few cache sets).
constexpr int FEW_NV = GNV / 2 > 0 ? GNV / 2 : 1;
constexpr int FEW_MAX = 2 * GMR;
static_assert(FEW_MAX <= 12 && FEW_MAX * FEW_NV + FEW_NV + 1 <= (VW == 16 ? 32 : 16), "registers");

template <int M, int BM>
void few_tile(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
              int ncols, bool acc_c, const float* bias) {
  micro<M, false, BM, FEW_NV>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias);
}

template <int BM>
void few_any(int m, int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
             int ncols, bool acc_c, const float* bias) {
  switch (m) {
#define DS_FEW(M) \
  case M:         \
    if constexpr (FEW_MAX >= M) few_tile<M, BM>(kc, a, lda, b, ldb, c, ldc, ncols, acc_c, bias); \
    break;
    DS_FEW(1) DS_FEW(2) DS_FEW(3) DS_FEW(4) DS_FEW(5) DS_FEW(6)
    DS_FEW(7) DS_FEW(8) DS_FEW(9) DS_FEW(10) DS_FEW(11) DS_FEW(12)
#undef DS_FEW
  }
}

void gemm_few_rows(const GemmArgs& g) {
  constexpr int64_t WN = FEW_NV * VW;
  for (int64_t k0 = 0; k0 < g.k; k0 += KC) {
    const int64_t kcb = imin(KC, g.k - k0);
    const bool acc_c = g.accumulate || k0 > 0;
    const float* bias = k0 == 0 ? g.bias : nullptr;
    for (int64_t j0 = 0; j0 < g.n; j0 += WN) {
      const int ncols = (int)imin(WN, g.n - j0);
      const float* bj = bias ? bias + j0 : nullptr;
      const float* bp = g.b + k0 * g.ldb + j0;
      if (ncols == WN)
        few_any<BM_DIRECT>((int)g.m, kcb, g.a + k0, g.lda, bp, g.ldb, g.c + j0, g.ldc, ncols, acc_c, bj);
      else
        few_any<BM_DIRECT_TAIL>((int)g.m, kcb, g.a + k0, g.lda, bp, g.ldb, g.c + j0, g.ldc, ncols, acc_c, bj);
    }
  }
}

// Loop order: column blocks of NC, row blocks of MC, then K blocks: the MC×NC block of C (≤ 480 KB) stays in
// L2 while every K block accumulates into it (C goes to memory once, not once per K block), the B panel of the
// micro-kernel (kc×nr) in L1, the A block (MC×kc) in L2.
constexpr int64_t NC = (512 / GNR) * GNR;

void gemm(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  const int64_t np = round_up(g.n, GNR);
  if (g.k <= 0) {  // no K: C = bias / 0 (or unchanged when accumulating)
    if (g.accumulate) return;
    for (int64_t i = 0; i < g.m; i++)
      for (int64_t j = 0; j < g.n; j++) g.c[i * g.ldc + j] = g.bias ? g.bias[j] : 0.0f;
    return;
  }
  const bool direct_b = g.bp == nullptr;
  if (direct_b && !g.trans_a && g.m <= FEW_MAX) return gemm_few_rows(g);
  for (int64_t n0 = 0; n0 < g.n; n0 += NC) {
    const int64_t n1 = imin(g.n, n0 + NC);
    for (int64_t m0 = 0; m0 < g.m; m0 += MC) {
      const int64_t mcb = imin(MC, g.m - m0);
      for (int64_t k0 = 0; k0 < g.k; k0 += KC) {
        const int64_t kcb = imin(KC, g.k - k0);
        const bool acc_c = g.accumulate || k0 > 0;
        const float* bias = k0 == 0 ? g.bias : nullptr;
        const float* ablk;
        if (g.trans_a) {
          // op(A)[i, k] = A[k, i]: pack rows m0… of op(A) into GMR-row panels.
          float* d = g.a_scratch;
          for (int64_t i0 = 0; i0 < mcb; i0 += GMR) {
            const int64_t mi = imin(GMR, mcb - i0);
            const float* src = g.a + k0 * g.lda + m0 + i0;
            float* dd = d + i0 * kcb;
            if (mi == GMR) {
              for (int64_t kk = 0; kk < kcb; kk++)
                for (int i = 0; i < GMR; i++) dd[kk * GMR + i] = src[kk * g.lda + i];
            } else {
              for (int64_t kk = 0; kk < kcb; kk++)
                for (int i = 0; i < GMR; i++) dd[kk * GMR + i] = i < mi ? src[kk * g.lda + i] : 0.0f;
            }
          }
          ablk = d;
        } else {
          ablk = g.a + m0 * g.lda + k0;
        }
        for (int64_t j0 = n0; j0 < n1; j0 += GNR) {
          const int ncols = (int)imin(GNR, g.n - j0);
          const float* bpan = direct_b ? g.b + k0 * g.ldb + j0 : g.bp + k0 * np + (j0 / GNR) * kcb * GNR;
          const int64_t ldb = g.ldb;
          for (int64_t i0 = 0; i0 < mcb; i0 += GMR) {
            const int mi = (int)imin(GMR, mcb - i0);
            float* c = g.c + (m0 + i0) * g.ldc + j0;
            const float* bj = bias ? bias + j0 : nullptr;
            if (g.trans_a) {
              const float* ap = ablk + i0 * kcb;
              if (!direct_b)
                micro_any<true, BM_PACKED>(mi, kcb, ap, 0, bpan, ldb, c, g.ldc, ncols, acc_c, bj);
              else if (ncols == GNR)
                micro_any<true, BM_DIRECT>(mi, kcb, ap, 0, bpan, ldb, c, g.ldc, ncols, acc_c, bj);
              else
                micro_any<true, BM_DIRECT_TAIL>(mi, kcb, ap, 0, bpan, ldb, c, g.ldc, ncols, acc_c, bj);
            } else {
              const float* ap = ablk + i0 * g.lda;
              if (!direct_b)
                micro_any<false, BM_PACKED>(mi, kcb, ap, g.lda, bpan, ldb, c, g.ldc, ncols, acc_c, bj);
              else if (ncols == GNR)
                micro_any<false, BM_DIRECT>(mi, kcb, ap, g.lda, bpan, ldb, c, g.ldc, ncols, acc_c, bj);
              else
                micro_any<false, BM_DIRECT_TAIL>(mi, kcb, ap, g.lda, bpan, ldb, c, g.ldc, ncols, acc_c, bj);
            }
          }
        }
      }
    }
  }
}

// ---- LSTM ------------------------------------------------------------------------------------------------

// recurrent [H, 4H] → blocks of VW hidden units: block jb holds, for every k, the i, f, g, o columns of its
// units next to each other ([jb][k][gate][VW]), so one register tile computes all four gates of the same units
// and the cell update happens in registers. Lanes past H are 0.
void pack_r(const float* r, int64_t hidden, float* dst) {
  const int64_t H = hidden, G = 4 * H;
  // row by row: reads recurrent sequentially, writes one 4×VW run per block
  for (int64_t k = 0; k < H; k++)
    for (int64_t j0 = 0; j0 < H; j0 += VW) {
      const int nl = (int)imin(VW, H - j0);
      float* d = dst + ((j0 / VW) * H + k) * 4 * VW;
      for (int g = 0; g < 4; g++) storeu(d + g * VW, load_maybe_n(r + k * G + g * H + j0, nl));
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
  const float* hr[M];
  for (int i = 0; i < M; i++) hr[i] = hp + (r0 + i) * a.s_ld;
  if (!skip_rec) {
#pragma GCC unroll 2
    for (int64_t k = 0; k < H; k++) {
      V w[4];
      for (int g = 0; g < 4; g++) w[g] = loadu(rpan + (k * 4 + g) * VW);
      for (int i = 0; i < M; i++) {
        V hv(hr[i][k]);
        for (int g = 0; g < 4; g++) acc[i][g] = fma(hv, w[g], acc[i][g]);
      }
    }
  }
  for (int i = 0; i < M; i++) {
    const int64_t so = (r0 + i) * a.s_ld + j0;
    V ig, fg, gg, og, cc, hh;
    math::cell_forward(acc[i][0], acc[i][1], acc[i][2], acc[i][3], loadu(cp + so), ig, fg, gg, og, cc, hh);
    storeu(cn + so, cc);
    storeu(hn + so, hh);
    if (a.y) store_maybe_n(a.y + row[i] * a.y_ld + j0, hh, nl);
    if (a.gates) {
      float* gp = a.gates + row[i] * G + j0;
      store_maybe_n(gp, ig, nl);
      store_maybe_n(gp + H, fg, nl);
      store_maybe_n(gp + 2 * H, gg, nl);
      store_maybe_n(gp + 3 * H, og, nl);
    }
    if (a.cells) store_maybe_n(a.cells + row[i] * H + j0, cc, nl);
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
    V ig, fg, gg, og, cc, hh;
    math::cell_forward(load_maybe_n(pre + j0, nl), load_maybe_n(pre + H + j0, nl), load_maybe_n(pre + 2 * H + j0, nl),
                       load_maybe_n(pre + 3 * H + j0, nl), loadu(cp + j0), ig, fg, gg, og, cc, hh);
    storeu(cn + j0, cc);
    storeu(hn + j0, hh);
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

void colsum(const float* a, int64_t lda, int64_t rows, int64_t n, float* out) {
  for (int64_t j0 = 0; j0 < n; j0 += 4 * VW) {
    V acc[4] = {V(0.0f), V(0.0f), V(0.0f), V(0.0f)};
    const int64_t nj = imin(4 * VW, n - j0);
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
      float* dgs = a.dg_step + i * G;
      float* dga = a.dg + (a.off[b] + t) * G;
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
        store_maybe_n(dgs + j0, dpi, nl);
        store_maybe_n(dgs + H + j0, dpf, nl);
        store_maybe_n(dgs + 2 * H + j0, dpg, nl);
        store_maybe_n(dgs + 3 * H + j0, dpo, nl);
        store_maybe_n(dga + j0, dpi, nl);
        store_maybe_n(dga + H + j0, dpf, nl);
        store_maybe_n(dga + 2 * H + j0, dpg, nl);
        store_maybe_n(dga + 3 * H + j0, dpo, nl);
      }
    }
    // dh_{prev} = dG · recurrentᵀ for the active rows (lanes past H of dh are never written: they stay 0)
    GemmArgs g{};
    g.m = nact;
    g.n = H;
    g.k = G;
    g.a = a.dg_step;
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

#define DS_STR2(x) #x
#define DS_STRINGIFY(x) DS_STR2(x)
static_assert(DS_ISA_NS::LMR <= 8, "extend the remainder switch in lstm_rec");
extern const Table DS_TABLE;
const Table DS_TABLE = {
    DS_STRINGIFY(DS_ISA_NS), DS_ISA_NS::VW, DS_ISA_NS::GMR, DS_ISA_NS::GNR, DS_ISA_NS::KC, DS_ISA_NS::LMR,
    DS_ISA_NS::pack_b, DS_ISA_NS::gemm, DS_ISA_NS::pack_r, DS_ISA_NS::lstm_rec, DS_ISA_NS::lstm_bwd_rec,
    DS_ISA_NS::colsum,
};

}  // namespace kern
}  // namespace ds
