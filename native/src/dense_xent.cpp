// dense_softmax_xent of train_ops.h: the output layer's product, softmax cross-entropy and gradients in row
// blocks (one task per block on the pool), then dkernel as one sgemm.
#include "lstm.h"
#include "lstm_plan.h"
#include "train_ops.h"

namespace ds {

using namespace plan;

namespace {

// Rows per block: 8 register tiles. The block's logits (48 × classes floats: 384 KB for 2000 classes) stay in
// L2 between the product that writes them, the softmax pass and the product that reads them back.
int64_t block_rows(const Table& tb) { return 8 * (int64_t)tb.mr; }

}  // namespace

void dense_softmax_xent(const DenseXentArgs& a) {
  const Table& tb = active_table();
  Arena& ar = call_arena();  // the whole call's, not arena(): every sgemm resets that
  const int64_t N = a.rows, K = a.in, C = a.classes;
  const bool grad = a.dx != nullptr;
  const int64_t R = block_rows(tb);
  const int64_t nb = (N + R - 1) / R;
  float* logits = ar.get<float>((size_t)(N * C));
  float* kp = ar.get<float>(kern::packed_b_floats(tb, K, C));               // kernel as the B of x·kernel
  float* ktp = grad ? ar.get<float>(kern::packed_b_floats(tb, C, K)) : nullptr;  // kernelᵀ for dlogits·kernelᵀ
  float* dbias_part = grad ? ar.get<float>((size_t)(nb * C)) : nullptr;   // one row of bias gradient per block
  float* dkt = grad ? ar.get<float>((size_t)(C * K)) : nullptr;            // dkernelᵀ [classes, in]
  {
    PoolLease lease(threads_for((grad ? 4.0 : 2.0) * N * K * C, 2e6));
    auto pack = [&](int t) {
      if (t == 0)
        tb.pack_b(a.kernel, C, false, K, C, kp);
      else
        tb.pack_b(a.kernel, C, true, C, K, ktp);
    };
    lease.run_tasks(grad ? 2 : 1, pack);
    auto block = [&](int b) {
      const int64_t r0 = b * R, rn = (r0 + R < N ? r0 + R : N) - r0;
      float* l = logits + r0 * C;
      gemm_rows(tb, rn, C, K, a.x + r0 * K, K, false, kp, a.bias, l, C, false, nullptr);
      kern::XentRowsArgs x{};
      x.logits = l;
      x.ld = C;
      x.rows = rn;
      x.n = C;
      x.labels = a.labels + r0;
      x.weights = a.weights ? a.weights + r0 : nullptr;
      x.dloss = a.dloss ? a.dloss + r0 : nullptr;
      x.loss = a.loss + r0;
      x.grad = grad;
      tb.xent_rows(x);
      if (!grad) return;
      gemm_rows(tb, rn, K, C, l, C, false, ktp, nullptr, a.dx + r0 * K, K, false, nullptr);
      tb.colsum(l, C, rn, C, dbias_part + b * C, false);
    };
    lease.run_tasks((int)nb, block);
  }  // the pool is free again for the sgemm below
  if (!grad) return;
  tb.colsum(dbias_part, C, nb, C, a.dbias, false);  // blocks summed in order
  // dkernelᵀ = dlogitsᵀ·x rather than dkernel = xᵀ·dlogits: the sgemm then packs x (rows × in, small) as its
  // B and reads the big dlogits once as a transposed A, instead of packing a copy of all of dlogits.
  sgemm(true, false, C, K, N, logits, C, a.x, K, dkt, K, false);
  constexpr int64_t TB = 32;  // transpose in 32×32 tiles
  for (int64_t c0 = 0; c0 < C; c0 += TB)
    for (int64_t k0 = 0; k0 < K; k0 += TB)
      for (int64_t k = k0; k < k0 + TB && k < K; k++)
        for (int64_t c = c0; c < c0 + TB && c < C; c++) a.dkernel[k * C + c] = dkt[c * K + k];
}

}  // namespace ds
