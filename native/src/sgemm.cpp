// sgemm of lstm.h (the dense layers' products, matMul): column or row strips of C as independent tasks on
// the pool, on the per-ISA GEMM of kernels/kernels.h (or, at Precision::Bf16, the bf16 GEMM of
// kernels/kernels_bf16.h) and the planning helpers of lstm_plan.h.
#include "lstm.h"
#include "lstm_plan.h"

namespace ds {

using namespace plan;

namespace {

// The bf16 tier: the same strips; each packs (rounds) its strip of B, or, for a few rows of A, the kernel
// rounds B as it reads it. With B rounded by the caller (packed: the whole of B), row strips that all read it.
void sgemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda,
                const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, const uint32_t* packed) {
  const kern::Bf16Table& bt = active_bf16_table();
  Arena& ar = arena();
  PoolLease lease(threads_for(2.0 * m * n * (double)k, 2e6));
  const int Q = lease.n();
  const int64_t nr = kern::BF16_NR, mr = kern::BF16_GEMM_MR;
  const bool by_cols = !packed && (n >= (int64_t)Q * nr * 2 || m < (int64_t)Q * mr * 2);
  const bool direct = !packed && !trans_b && m <= kern::BF16_DIRECT_MAX;
  uint32_t** bp = ar.get<uint32_t*>(Q);
  uint32_t** as = ar.get<uint32_t*>(Q);
  for (int q = 0; q < Q; q++) {
    int64_t c0 = 0, c1 = n;
    if (by_cols) split_range(n, q, Q, nr, c0, c1);
    bp[q] = direct || packed ? nullptr
                             : ar.get<uint32_t>(kern::bf16_packed_b_words(k > 0 ? k : 1, c1 > c0 ? c1 - c0 : 1));
    as[q] = ar.get<uint32_t>(kern::bf16_a_scratch_words());
  }
  auto job = [&](int q) {
    int64_t c0 = 0, c1 = n, r0 = 0, r1 = m;
    if (by_cols)
      split_range(n, q, Q, nr, c0, c1);
    else
      split_range(m, q, Q, mr, r0, r1);
    if (c1 <= c0 || r1 <= r0) return;
    if (k > 0 && !direct && !packed) bt.pack_b(trans_b ? B + c0 * ldb : B + c0, ldb, trans_b, k, c1 - c0, bp[q]);
    kern::Bf16GemmArgs g{};
    g.m = r1 - r0;
    g.n = c1 - c0;
    g.k = k;
    g.a = trans_a ? A + r0 : A + r0 * lda;
    g.lda = lda;
    g.trans_a = trans_a;
    g.bp = packed ? packed : direct ? nullptr : bp[q];
    g.b = B + c0;
    g.ldb = ldb;
    g.c = C + r0 * ldc + c0;
    g.ldc = ldc;
    g.accumulate = accumulate;
    g.a_scratch = as[q];
    bt.gemm(g);
  };
  lease.run_tasks(Q, job);
}

}  // namespace

size_t bf16_b_words(int64_t k, int64_t n) { return kern::bf16_packed_b_words(k > 0 ? k : 1, n > 0 ? n : 1); }
void bf16_pack_b(const float* B, int64_t ldb, int64_t k, int64_t n, uint32_t* dst) {
  if (k > 0 && n > 0) active_bf16_table().pack_b(B, ldb, false, k, n, dst);  // the layout of every bf16 table
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda,
           const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, const uint32_t* bf16_b) {
  if (m <= 0 || n <= 0) return;
  if (precision_active() == Precision::Bf16)
    return sgemm_bf16(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, accumulate, trans_b ? nullptr : bf16_b);
  const Table& tb = active_table();
  Arena& ar = arena();
  PoolLease lease(threads_for(2.0 * m * n * (double)k, 2e6));
  const int Q = lease.n();
  // Column strips when there are enough columns (each thread packs only its strip of B), else row strips.
  // A few rows of A read B straight, without packing it.
  const bool by_cols = n >= (int64_t)Q * tb.nr * 2 || m < (int64_t)Q * tb.mr * 2;
  const bool direct = !trans_b && m <= 2 * tb.mr;
  float** bp = ar.get<float*>(Q);
  float** as = ar.get<float*>(Q);
  for (int q = 0; q < Q; q++) {
    int64_t c0 = 0, c1 = n;
    if (by_cols) split_range(n, q, Q, tb.nr, c0, c1);
    bp[q] = direct ? nullptr : ar.get<float>(kern::packed_b_floats(tb, k > 0 ? k : 1, c1 > c0 ? c1 - c0 : 1));
    as[q] = ar.get<float>(kern::packed_a_floats(tb));
  }
  auto job = [&](int q) {  // strip q of Q (independent tasks)
    int64_t c0 = 0, c1 = n, r0 = 0, r1 = m;
    if (by_cols)
      split_range(n, q, Q, tb.nr, c0, c1);
    else
      split_range(m, q, Q, tb.mr, r0, r1);
    if (c1 <= c0 || r1 <= r0) return;
    if (k > 0 && !direct) tb.pack_b(trans_b ? B + c0 * ldb : B + c0, ldb, trans_b, k, c1 - c0, bp[q]);
    const float* a = trans_a ? A + r0 : A + r0 * lda;
    gemm_rows(tb, r1 - r0, c1 - c0, k, a, lda, trans_a, direct ? nullptr : bp[q], nullptr, C + r0 * ldc + c0, ldc,
              accumulate, as[q], B + c0, ldb);
  };
  lease.run_tasks(Q, job);
}


}  // namespace ds
