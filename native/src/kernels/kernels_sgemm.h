// The sgemm primitives of kernels.h (pack_b, gemm: packed register-tile GEMM and the few-rows path), one
// part of kernels_impl.h: included by it once per instruction set, after its constants (GMR, GNV, GNR,
// KC, MC) and with the DS_* macros defined.
#pragma once

namespace ds {
namespace kern {
namespace DS_ISA_NS {

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

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds
