// dense_mse of train_ops.h: the Dense head of a regression model (the anomaly detector's, W1's) with its mean
// squared error, forward and backward in one call: three small products and the elementwise passes between
// them, with no intermediate array crossing into JavaScript and the two gradient products as one pool job.
#include "lstm.h"
#include "lstm_plan.h"
#include "train_ops.h"

namespace ds {

using namespace plan;

void dense_mse(const DenseMseArgs& a) {
  const int64_t R = a.rows, K = a.in, N = a.out;
  const bool grad = a.dx != nullptr;
  Arena& ar = call_arena();  // the whole call's, not arena(): every sgemm resets that
  float* pred = ar.get<float>((size_t)(R * N));  // then pred − target, then its gradient, in place
  sgemm(false, false, R, N, K, a.x, K, a.kernel, N, pred, N, false);
  // Each score in double from the float32 predictions, as a JavaScript loop over Float32Arrays computes it
  // (the sum of squares of the double differences, divided by N, stored as float32); the difference kept
  // for the gradient is stored as float32, then scaled by 2/(rows·out): the gradient of the mean over all
  // rows·out squared differences, i.e. of the mean of the scores.
  const double scale = 2.0 / ((double)R * (double)N);
  for (int64_t r = 0; r < R; r++) {
    float* p = pred + r * N;
    const float* t = a.target + r * N;
    double sum = 0;
    for (int64_t j = 0; j < N; j++) {
      const float y = p[j] + a.bias[j];
      const double d = (double)y - (double)t[j];
      sum += d * d;
      p[j] = grad ? (float)((double)(float)d * scale) : y;
    }
    a.scores[r] = (float)(sum / (double)N);
  }
  if (!grad) return;
  const Table& tb = active_table();
  // dkernel = xᵀ·dpred with dbias = Σ_rows dpred, and dx = dpred·kernelᵀ: independent, one task each (each
  // sgemm runs alone inside its task: the same bits as on its own, which does not depend on the threads).
  PoolLease lease(threads_for(4.0 * R * K * N, 2e6));
  auto task = [&](int t) {
    if (t == 0) {
      sgemm(true, false, K, N, R, a.x, K, pred, N, a.dkernel, N, false);
      tb.colsum(pred, N, R, N, a.dbias, false);
    } else {
      sgemm(false, true, R, K, N, pred, N, a.kernel, N, a.dx, K, false);
    }
  };
  lease.run_tasks(2, task);
}

}  // namespace ds
