// The bf16 tier on AVX512-BF16 (compiled with -mavx512bf16 and the AVX-512 flags of kernels_avx512.cpp; used
// only when the CPU has it and the SIMD level is avx512: see dispatch.cpp). vcvtne2ps2bf16 rounds two float32
// vectors to one vector of bf16, vpermw interleaves them into pairs along K, vdpbf16ps multiplies 16 pairs and
// accumulates in float32: a 6×64 gemm tile (24 accumulators) and a 6-row × 4-gate recurrent tile, as the
// float32 kernels (kernels_avx512.cpp) but reading half the bytes of weights. Compiled without FP contraction
// (kernels.cmake) so that the float32 cell math is the portable emulation's, operation for operation.
#define DS_ISA_NS isa_bf16_avx512
#define DS_VW 16
#include "kernels/kernels_bf16.h"
#include "simd/vec.h"
#include "lstm_math.h"
#include "kernels/kernels_cell.h"

namespace ds {
namespace kern {
namespace DS_ISA_NS {

constexpr int GEMM_MR = 6;
constexpr int REC_MR = 6;
constexpr int CELL_ROWS = 2;  // rows whose cells are evaluated in lockstep (cell_store_rows)

DS_INL __mmask16 mask16(int n) { return (__mmask16)((1u << (n < 0 ? 0 : n > 16 ? 16 : n)) - 1u); }

// 16 floats of row k (lo) and of row k+1 (hi) → 16 pairs (lo[j] in the low half of word j).
DS_INL __m512i pairs16(__m512 lo, __m512 hi) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

DS_INL void cvt_pairs16(const float* r0, const float* r1, int nl, uint32_t* dst) {
  const __mmask16 m = mask16(nl);
  const __m512 lo = _mm512_maskz_loadu_ps(m, r0);
  const __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
  _mm512_storeu_si512(dst, pairs16(lo, hi));
}

DS_INL void cvt_row(const float* a, int64_t n, uint32_t* dst) {
  for (int64_t i = 0; i < n; i += 32) {
    const int64_t rem = n - i;
    const __m512 lo = _mm512_maskz_loadu_ps(mask16((int)(rem < 16 ? rem : 16)), a + i);
    const __m512 hi = _mm512_maskz_loadu_ps(mask16((int)(rem - 16 < 16 ? rem - 16 : 16)), a + i + 16);
    // consecutive values are already pairs: lane p holds values 2p (low) and 2p+1 (high)
    const __m512i w = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    const int words = (int)((rem < 32 ? rem : 32) + 1) / 2;
    _mm512_mask_storeu_epi32(dst + i / 2, mask16(words), w);
  }
}

DS_INL __m512 dp(__m512 acc, __m512i a, __m512i b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }

// M rows × 64 columns of C over one packed panel of one K block.
template <int M>
DS_INL void tile(int64_t kc2, const uint32_t* a, int64_t lda2, const uint32_t* pan, float* c, int64_t ldc, int ncols,
                 bool acc_c, const float* bias) {
  constexpr int NV = BF16_NR / 16;
  __m512 acc[M][NV];
  for (int v = 0; v < NV; v++) {
    const __mmask16 mk = mask16(ncols - v * 16);
    if (acc_c) {
      for (int i = 0; i < M; i++) acc[i][v] = _mm512_maskz_loadu_ps(mk, c + i * ldc + v * 16);
    } else {
      const __m512 bv = bias ? _mm512_maskz_loadu_ps(mk, bias + v * 16) : _mm512_setzero_ps();
      for (int i = 0; i < M; i++) acc[i][v] = bv;
    }
  }
  for (int64_t p = 0; p < kc2; p++) {
    __m512i bv[NV];
    for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_si512(pan + p * BF16_NR + v * 16);
    for (int i = 0; i < M; i++) {
      const __m512i av = _mm512_set1_epi32((int)a[i * lda2 + p]);
      for (int v = 0; v < NV; v++) acc[i][v] = dp(acc[i][v], av, bv[v]);
    }
  }
  for (int i = 0; i < M; i++)
    for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(c + i * ldc + v * 16, mask16(ncols - v * 16), acc[i][v]);
}

void gemm_tile(int m, int64_t kc2, const uint32_t* a, int64_t lda2, const uint32_t* pan, float* c, int64_t ldc, int ncols,
               bool acc_c, const float* bias) {
  switch (m) {
    case 1: tile<1>(kc2, a, lda2, pan, c, ldc, ncols, acc_c, bias); break;
    case 2: tile<2>(kc2, a, lda2, pan, c, ldc, ncols, acc_c, bias); break;
    case 3: tile<3>(kc2, a, lda2, pan, c, ldc, ncols, acc_c, bias); break;
    case 4: tile<4>(kc2, a, lda2, pan, c, ldc, ncols, acc_c, bias); break;
    case 5: tile<5>(kc2, a, lda2, pan, c, ldc, ncols, acc_c, bias); break;
    case 6: tile<6>(kc2, a, lda2, pan, c, ldc, ncols, acc_c, bias); break;
  }
}

// acc[i][bk][g] continues over pairs [0, np) of row i's words src[i] times the weights of block bk, gate g at
// pan + bk*bstride + p*64 + g*16 (a block of the packed recurrent kernel, or a panel of the packed input kernel).
template <int M, int NB>
DS_INL void dot_pairs(__m512 (&acc)[M][NB][4], const uint32_t* const (&src)[M], const uint32_t* pan, int64_t bstride,
                      int64_t np) {
  for (int64_t p = 0; p < np; p++) {
    for (int bk = 0; bk < NB; bk++) {
      const uint32_t* w = pan + bk * bstride + p * 4 * BF16_UNITS;
      __m512i wv[4];
      for (int g = 0; g < 4; g++) wv[g] = _mm512_loadu_si512(w + g * BF16_UNITS);
      for (int i = 0; i < M; i++) {
        const __m512i hv = _mm512_set1_epi32((int)src[i][p]);
        for (int g = 0; g < 4; g++) acc[i][bk][g] = dp(acc[i][bk][g], hv, wv[g]);
      }
    }
  }
}

// The cell of rows [I0, M) of block bk, CG rows at a time (cell_store_rows).
template <int M, int CG, int I0 = 0, int NB>
DS_INL void cell_rows(const LstmRecArgs& a, __m512 (&acc)[M][NB][4], int bk, const int64_t (&row)[M], int64_t r0, int64_t jj,
                      int nl, const float* cp, float* cn, float* hn) {
  if constexpr (I0 < M) {
    constexpr int N = M - I0 < CG ? M - I0 : CG;
    V pre[N][4];
    int64_t so[N], rows[N];
    for (int i = 0; i < N; i++) {
      so[i] = (r0 + I0 + i) * a.s_ld + jj;
      rows[i] = row[I0 + i];
      for (int g = 0; g < 4; g++) pre[i][g] = V((vf_t)acc[I0 + i][bk][g]);
    }
    cell_store_rows<N>(a, rows, so, jj, nl, pre, cp, cn, hn);
    cell_rows<M, CG, I0 + N>(a, acc, bk, row, r0, jj, nl, cp, cn, hn);
  }
}

// One step of M rows (from r0) for NB blocks of 16 units (from j0): the input projection (from xproj, or with
// A.kp bias + x·kernel) + h·recurrent in registers, then the cell (lstm_math.h, float32) on the accumulators,
// as kernels_lstm.h lstm_tile does.
template <int M, int NB>
DS_INL void rec_tile(const Bf16RecArgs& A, int64_t s, int64_t r0, int64_t j0, int64_t hld, int64_t xld) {
  const LstmRecArgs& a = A.rec;
  const int64_t H = a.hidden, Gp = bf16_gate_cols(H), T = a.steps, H2 = (H + 1) / 2, jb = j0 / BF16_UNITS;
  const bool skip_rec = s == 0 && a.h0_zero;
  const float* cp = a.c[s & 1];
  float* hn = a.h[(s + 1) & 1];
  float* cn = a.c[(s + 1) & 1];
  int64_t row[M];
  __m512 acc[M][NB][4];
  for (int i = 0; i < M; i++) {
    const int64_t L = a.len[r0 + i], t = a.reverse ? L - 1 - s : s;
    row[i] = a.seq[r0 + i] * T + t;
    const int64_t xr = a.xidx ? (int64_t)a.xidx[(r0 + i) * T + t] : (r0 + i) * T + t;
    const float* xp = A.kp ? a.bias + j0 * 4 : a.xproj + xr * Gp + j0 * 4;  // block jb at jb*64 = j0*4
    for (int bk = 0; bk < NB; bk++)
      for (int g = 0; g < 4; g++) acc[i][bk][g] = _mm512_loadu_ps(xp + (bk * 4 + g) * BF16_UNITS);
  }
  if (A.kp) {
    const int64_t I2 = (a.input + 1) / 2;
    for (int64_t p0 = 0; p0 < I2; p0 += BF16_KC2) {  // the K blocks of the packed input kernel
      const int64_t kcb2 = I2 - p0 < BF16_KC2 ? I2 - p0 : BF16_KC2;
      const uint32_t* xb[M];
      for (int i = 0; i < M; i++) xb[i] = A.xb + (r0 + i) * xld + p0;
      dot_pairs<M, NB>(acc, xb, A.kp + p0 * Gp + jb * kcb2 * 4 * BF16_UNITS, kcb2 * 4 * BF16_UNITS, kcb2);
    }
  } else {
    for (int64_t r = r0 + M; r < r0 + 2 * M && r < a.rows && a.len[r] > s; r++) {  // as lstm_tile: fetch early
      const int64_t tn = a.reverse ? a.len[r] - 1 - s : s;
      const float* xn = a.xproj + (a.xidx ? (int64_t)a.xidx[r * T + tn] : r * T + tn) * Gp + j0 * 4;
      for (int v = 0; v < 4 * NB; v++) __builtin_prefetch(xn + v * BF16_UNITS);
    }
  }
  if (!skip_rec) {
    const uint32_t* hb[M];
    for (int i = 0; i < M; i++) hb[i] = A.hb + (r0 + i) * hld;
    dot_pairs<M, NB>(acc, hb, A.rp + jb * H2 * 4 * BF16_UNITS, H2 * 4 * BF16_UNITS, H2);
  }
  for (int bk = 0; bk < NB; bk++) {
    const int64_t jj = j0 + bk * 16;
    const int nl = (int)(H - jj < 16 ? H - jj : 16);
    cell_rows<M, CELL_ROWS>(a, acc, bk, row, r0, jj, nl, cp, cn, hn);
  }
}

// All active rows of one step: tiles of REC_MR rows per block; a single row (a batch of one, latency) takes
// four blocks at once (two near the ends) so that 16 independent accumulator chains hide the instruction's
// latency. The blocks go up on even steps and down on odd ones: the block a step ends with (16 KB of the packed
// recurrent kernel at H = 128) is still in L1 when the next step starts with it, where an order repeated every
// step would read the whole kernel from L2 again (a single row's step is bound by that read). With one row the
// end blocks run alone (one block fits in L1 beside the step's other data; two would not). The order changes
// no number: every output is one chain over the pairs whatever block runs first.
void rec_rows(const Bf16RecArgs& A, int64_t s, int64_t nact, int64_t hld, int64_t xld) {
  const int64_t H = A.rec.hidden, nblk = (H + 15) / 16;
  const bool down = (s & 1) != 0;
  for (int64_t i = 0; i < nblk;) {  // i: blocks visited so far
    if (nact == 1) {
      const int64_t mid = nblk - 1 - i;  // blocks left before the last one
      const int nb = i == 0 ? 1 : mid >= 4 ? 4 : mid >= 2 ? 2 : 1;
      const int64_t j0 = (down ? nblk - i - nb : i) * 16;
      if (nb == 4)
        rec_tile<1, 4>(A, s, 0, j0, hld, xld);
      else if (nb == 2)
        rec_tile<1, 2>(A, s, 0, j0, hld, xld);
      else
        rec_tile<1, 1>(A, s, 0, j0, hld, xld);
      i += nb;
      continue;
    }
    const int64_t j0 = (down ? nblk - 1 - i : i) * 16;
    int64_t r0 = 0;
    for (; r0 + REC_MR <= nact; r0 += REC_MR) rec_tile<REC_MR, 1>(A, s, r0, j0, hld, xld);
    switch (nact - r0) {
      case 1: rec_tile<1, 1>(A, s, r0, j0, hld, xld); break;
      case 2: rec_tile<2, 1>(A, s, r0, j0, hld, xld); break;
      case 3: rec_tile<3, 1>(A, s, r0, j0, hld, xld); break;
      case 4: rec_tile<4, 1>(A, s, r0, j0, hld, xld); break;
      case 5: rec_tile<5, 1>(A, s, r0, j0, hld, xld); break;
    }
    i++;
  }
}

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds

#define DS_BF16_TABLE bf16_table_avx512
#define DS_BF16_NAME "avx512bf16"
#define DS_BF16_INSTRUCTIONS "AVX512-BF16 (vcvtne2ps2bf16, vdpbf16ps)"
#include "kernels/kernels_bf16_impl.h"
