// The bf16 tier in plain C++ (baseline flags): the arithmetic of kernels_bf16.h emulated one output at a time
// (bf16_math.h's bf16_dot_pair, the step the CUDA bf16 kernels run too), bit for bit what kernels_bf16_avx512.cpp
// computes with vdpbf16ps (test/unit/native-bf16.test.ts checks it).
// It runs on any CPU; on one without AVX512-BF16 it is correct but slower than the float32 kernels.
#include "kernels/kernels_bf16.h"
#include "lstm_math.h"

#define DS_ISA_NS isa_bf16_portable

namespace ds {
namespace kern {
namespace DS_ISA_NS {

constexpr int GEMM_MR = 6;

void cvt_pairs16(const float* r0, const float* r1, int nl, uint32_t* dst) {
  for (int j = 0; j < 16; j++) dst[j] = j < nl ? bf16_pair(r0[j], r1 ? r1[j] : 0.0f) : 0u;
}

void cvt_row(const float* a, int64_t n, uint32_t* dst) {
  for (int64_t p = 0; p < (n + 1) / 2; p++) dst[p] = bf16_pair(a[2 * p], 2 * p + 1 < n ? a[2 * p + 1] : 0.0f);
}

// Row by row: each output is its own chain over the pairs (the order of kernels_bf16.h).
void gemm_tile(int m, int64_t kc2, const uint32_t* a, int64_t lda2, const uint32_t* pan, float* c, int64_t ldc, int ncols,
               bool acc_c, const float* bias) {
  float acc[BF16_NR];
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < ncols; j++) acc[j] = acc_c ? c[i * ldc + j] : bias ? bias[j] : 0.0f;
    for (int64_t p = 0; p < kc2; p++) {
      const uint32_t aw = a[i * lda2 + p];
      const uint32_t* bw = pan + p * BF16_NR;
      for (int j = 0; j < ncols; j++) acc[j] = bf16_dot_pair(acc[j], aw, bw[j]);
    }
    for (int j = 0; j < ncols; j++) c[i * ldc + j] = acc[j];
  }
}

void rec_rows(const Bf16RecArgs& A, int64_t s, int64_t nact, int64_t hld, int64_t xld) {
  const LstmRecArgs& a = A.rec;
  const int64_t H = a.hidden, G = 4 * H, Gp = bf16_gate_cols(H), T = a.steps, H2 = (H + 1) / 2, I2 = (a.input + 1) / 2;
  const bool skip_rec = s == 0 && a.h0_zero;
  const float* cp = a.c[s & 1];
  float* hn = a.h[(s + 1) & 1];
  float* cn = a.c[(s + 1) & 1];
  for (int64_t r = 0; r < nact; r++) {
    const int64_t L = a.len[r], t = a.reverse ? L - 1 - s : s;
    const int64_t row = a.seq[r] * T + t;
    const int64_t xr = a.xidx ? (int64_t)a.xidx[r * T + t] : r * T + t;
    const uint32_t* hb = A.hb + r * hld;
    const uint32_t* xb = A.kp ? A.xb + r * xld : nullptr;
    for (int64_t j0 = 0; j0 < H; j0 += BF16_UNITS) {
      const int nl = (int)(H - j0 < BF16_UNITS ? H - j0 : BF16_UNITS);
      const uint32_t* rpan = A.rp + (j0 / BF16_UNITS) * H2 * 4 * BF16_UNITS;
      float pre[4][BF16_UNITS];
      // the input projection: from xproj, or bias + x·kernel (the gemm's chain); columns gate-blocked
      const float* xp = A.kp ? a.bias : a.xproj + xr * Gp;
      for (int g = 0; g < 4; g++)
        for (int j = 0; j < nl; j++) pre[g][j] = xp[j0 * 4 + g * BF16_UNITS + j];
      if (A.kp)
        for (int64_t p = 0; p < I2; p++)
          for (int g = 0; g < 4; g++)
            for (int j = 0; j < nl; j++)
              pre[g][j] = bf16_dot_pair(pre[g][j], xb[p], A.kp[bf16_b_word(I2, Gp, p, j0 * 4 + g * BF16_UNITS + j)]);
      if (!skip_rec)
        for (int64_t p = 0; p < H2; p++)
          for (int g = 0; g < 4; g++)
            for (int j = 0; j < nl; j++) pre[g][j] = bf16_dot_pair(pre[g][j], hb[p], rpan[(p * 4 + g) * BF16_UNITS + j]);
      for (int j = 0; j < nl; j++) {
        const int64_t so = r * a.s_ld + j0 + j;
        float ig, fg, gg, og, cc, hh;
        math::cell_forward(pre[0][j], pre[1][j], pre[2][j], pre[3][j], cp[so], ig, fg, gg, og, cc, hh);
        cn[so] = cc;
        hn[so] = hh;
        if (a.y) a.y[row * a.y_ld + j0 + j] = hh;
        if (a.gates) {
          float* gp = a.gates + row * G + j0 + j;
          gp[0] = ig, gp[H] = fg, gp[2 * H] = gg, gp[3 * H] = og;
        }
        if (a.cells) a.cells[row * H + j0 + j] = cc;
      }
    }
  }
}

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds

// Packing, gemm blocking and the step loop, on the pieces above, and the exported table.
#define DS_BF16_TABLE bf16_table_portable
#define DS_BF16_NAME "portable"
#define DS_BF16_INSTRUCTIONS "plain C++ (bf16 rounding and products emulated, float32 accumulation)"
#include "kernels/kernels_bf16_impl.h"
