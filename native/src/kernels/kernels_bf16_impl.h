// The bf16 primitives of kernels_bf16.h, the part both tables share: packing, the gemm's blocking and the
// recurrence's step loop. Included once per table (kernels_bf16_portable.cpp, kernels_bf16_avx512.cpp) inside
// its own namespace DS_ISA_NS, after that file has defined the per-table pieces:
//   cvt_pairs16(r0, r1, nl, dst)   16 columns of two rows of K (r1 nullptr: zeros) → 16 pair words (nl valid)
//   cvt_row(a, n, dst)             n contiguous values → (n+1)/2 pair words
//   gemm_tile(m, kc2, a, lda2, pan, c, ldc, ncols, acc_c, bias)
//                                  an m-row tile (m <= GEMM_MR) over one packed panel of one K block
//   rec_rows(a, s, nact, hld, xld) one step of the nact active rows (h pairs hld words apart, x pairs xld)
// and the constant GEMM_MR (rows of a tile); and DS_BF16_TABLE, DS_BF16_NAME, DS_BF16_INSTRUCTIONS: the exported
// table's symbol and its Bf16Table::name, ::instructions.
#pragma once

namespace ds {
namespace kern {
namespace DS_ISA_NS {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// One panel of a packed B: pairs [p0, p0+kcb2) × columns [j0, j0+NR) of op(B)[k, n], zero past n and k. With
// gate_h (an LSTM input kernel [k, 4*gate_h], not transposed), the columns are in the gate-blocked order of
// kernels_bf16.h: vector v of panel jb is gate v of units 16*jb … of B.
void pack_panel(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, int64_t p0, int64_t kcb2, int64_t j0,
                uint32_t* pan, int64_t gate_h = 0) {
  for (int64_t p = 0; p < kcb2; p++) {
    const int64_t k0 = 2 * (p0 + p);
    uint32_t* d = pan + p * BF16_NR;
    if (!trans) {
      const float* r0 = b + k0 * ldb;
      const float* r1 = k0 + 1 < k ? r0 + ldb : nullptr;
      for (int64_t v = 0; v < BF16_NR; v += 16) {
        const int64_t c = gate_h ? v / 16 * gate_h + j0 / 4 : j0 + v;  // the first column of B this vector takes
        const int nl = (int)(gate_h ? imin(16, gate_h - j0 / 4) : n - c < 0 ? 0 : imin(16, n - c));
        if (k0 + 16 < k && nl > 0)  // rows ldb apart: too far for the hardware prefetcher to follow
          __builtin_prefetch(r0 + 16 * ldb + c), __builtin_prefetch(r0 + 17 * ldb + c);
        cvt_pairs16(r0 + c, r1 ? r1 + c : nullptr, nl, d + v);
      }
    } else {  // op(B)[k, j] = B[j, k]
      for (int64_t j = 0; j < BF16_NR; j++) {
        const float* src = b + (j0 + j) * ldb + k0;
        d[j] = j0 + j < n ? bf16_pair(src[0], k0 + 1 < k ? src[1] : 0.0f) : 0u;
      }
    }
  }
}

void pack_cols(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, int64_t gate_h, uint32_t* dst) {
  const int64_t np = round_up(n, BF16_NR), k2 = (k + 1) / 2;
  for (int64_t p0 = 0; p0 < k2; p0 += BF16_KC2) {
    const int64_t kcb2 = imin(BF16_KC2, k2 - p0);
    for (int64_t j0 = 0; j0 < np; j0 += BF16_NR)
      pack_panel(b, ldb, trans, k, n, p0, kcb2, j0, dst + p0 * np + (j0 / BF16_NR) * kcb2 * BF16_NR, gate_h);
  }
}

void pack_b(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, uint32_t* dst) {
  pack_cols(b, ldb, trans, k, n, 0, dst);
}

void pack_k(const float* kernel, int64_t input, int64_t hidden, uint32_t* dst) {
  pack_cols(kernel, 4 * hidden, false, input, bf16_gate_cols(hidden), hidden, dst);
}

// op(A) rows [m0, m0+mc) × values [k0, k0+kv) → pair words, row i at dst + i*lda2 (lda2 >= (kv+1)/2).
void convert_a(const Bf16GemmArgs& g, int64_t m0, int64_t mc, int64_t k0, int64_t kv, uint32_t* dst, int64_t lda2) {
  for (int64_t i = 0; i < mc; i++) {
    uint32_t* d = dst + i * lda2;
    if (!g.trans_a) {
      cvt_row(g.a + (m0 + i) * g.lda + k0, kv, d);
    } else {  // op(A)[i, k] = A[k, i]
      const float* src = g.a + k0 * g.lda + m0 + i;
      for (int64_t p = 0; p < (kv + 1) / 2; p++)
        d[p] = bf16_pair(src[2 * p * g.lda], 2 * p + 1 < kv ? src[(2 * p + 1) * g.lda] : 0.0f);
    }
  }
}

// Loop order as the float32 sgemm (kernels_sgemm.h): column blocks, row blocks of BF16_MC, K blocks.
constexpr int64_t NC = 512;

void gemm(const Bf16GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) {
    if (g.accumulate) return;
    for (int64_t i = 0; i < g.m; i++)
      for (int64_t j = 0; j < g.n; j++) g.c[i * g.ldc + j] = g.bias ? g.bias[j] : 0.0f;
    return;
  }
  // B not packed (a few rows of A: a separate pass over B would cost more than the product): each panel is
  // rounded into this L1-sized buffer just before its tiles read it, once per call.
  alignas(64) uint32_t local[BF16_KC2 * BF16_NR];
  const bool direct = g.bp == nullptr;
  const int64_t np = round_up(g.n, BF16_NR), k2 = (g.k + 1) / 2;
  for (int64_t n0 = 0; n0 < g.n; n0 += NC) {
    const int64_t n1 = imin(g.n, n0 + NC);
    for (int64_t m0 = 0; m0 < g.m; m0 += BF16_MC) {
      const int64_t mcb = imin(BF16_MC, g.m - m0);
      for (int64_t p0 = 0; p0 < k2; p0 += BF16_KC2) {
        const int64_t kcb2 = imin(BF16_KC2, k2 - p0), kv = imin(2 * kcb2, g.k - 2 * p0);
        const bool acc_c = g.accumulate || p0 > 0;
        const float* bias = p0 == 0 ? g.bias : nullptr;
        convert_a(g, m0, mcb, 2 * p0, kv, g.a_scratch, kcb2);
        for (int64_t j0 = n0; j0 < n1; j0 += BF16_NR) {
          const int ncols = (int)imin(BF16_NR, g.n - j0);
          const float* bj = bias ? bias + j0 : nullptr;
          const uint32_t* pan = g.bp + p0 * np + (j0 / BF16_NR) * kcb2 * BF16_NR;
          if (direct) {
            pack_panel(g.b, g.ldb, false, g.k, g.n, p0, kcb2, j0, local, g.gate_h);
            pan = local;
          }
          for (int64_t i0 = 0; i0 < mcb; i0 += GEMM_MR) {
            const int mi = (int)imin(GEMM_MR, mcb - i0);
            gemm_tile(mi, kcb2, g.a_scratch + i0 * kcb2, kcb2, pan, g.c + (m0 + i0) * g.ldc + j0, g.ldc, ncols, acc_c, bj);
          }
        }
      }
    }
  }
}

void pack_r(const float* r, int64_t hidden, uint32_t* dst) {
  const int64_t H = hidden, G = 4 * H, H2 = (H + 1) / 2;
  // pair by pair: reads two rows of recurrent sequentially, writes one 4×16 run per block (as pack_r of
  // kernels_lstm.h); block by block would walk the rows eight times with a 4 KB stride
  for (int64_t p = 0; p < H2; p++) {
    const float* r0 = r + 2 * p * G;
    const float* r1 = 2 * p + 1 < H ? r0 + G : nullptr;
    for (int64_t j0 = 0; j0 < H; j0 += BF16_UNITS) {
      const int nl = (int)imin(BF16_UNITS, H - j0);
      uint32_t* d = dst + ((j0 / BF16_UNITS) * H2 + p) * 4 * BF16_UNITS;
      for (int g = 0; g < 4; g++) cvt_pairs16(r0 + g * H + j0, r1 ? r1 + g * H + j0 : nullptr, nl, d + g * BF16_UNITS);
    }
  }
}

// The step loop of kernels_lstm.h lstm_rec: the active rows are a prefix (sorted by length); each step rounds
// their h (and with A.kp their x) to bf16 once, then every block of units runs as tiles of rows.
void lstm_rec(const Bf16RecArgs& A) {
  const LstmRecArgs& a = A.rec;
  const int64_t H = a.hidden, hld = bf16_row_ld(H), xld = A.kp ? bf16_row_ld(a.input) : 0;
  int64_t nact = a.rows;
  for (int64_t s = 0; s < a.steps; s++) {
    while (nact > 0 && a.len[nact - 1] <= s) nact--;
    if (nact == 0) break;
    if (!(s == 0 && a.h0_zero)) {
      const float* hp = a.h[s & 1];
      for (int64_t r = 0; r < nact; r++) cvt_row(hp + r * a.s_ld, H, A.hb + r * hld);
    }
    if (A.kp)
      for (int64_t r = 0; r < nact; r++) {
        const int64_t t = a.reverse ? a.len[r] - 1 - s : s;
        cvt_row(a.x + (a.seq[r] * a.steps + t) * a.input, a.input, A.xb + r * xld);
      }
    rec_rows(A, s, nact, hld, xld);
  }
}

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds

namespace ds {
namespace kern {
extern const Bf16Table DS_BF16_TABLE;
const Bf16Table DS_BF16_TABLE = {
    DS_BF16_NAME, DS_BF16_INSTRUCTIONS, DS_ISA_NS::pack_b, DS_ISA_NS::gemm, DS_ISA_NS::pack_r, DS_ISA_NS::pack_k,
    DS_ISA_NS::lstm_rec,
};
}  // namespace kern
}  // namespace ds
