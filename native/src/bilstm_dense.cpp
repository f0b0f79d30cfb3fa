// bilstm_dense_forward (bilstm_dense.h): the two LSTM directions write their final states straight into the
// halves of one [B, 2H] summary (no per-step output), the Dense product reads it, and the bias and the score
// are one pass over the predictions. The summary is grow-only scratch of the calling thread: after the first
// call of a shape no call allocates.
#include "bilstm_dense.h"

#include <vector>

namespace ds {

void bilstm_dense_forward(const BiLstmDenseArgs& a) {
  const int64_t B = a.s.batch, H = a.s.hidden, N = a.out;
  thread_local std::vector<float> summary;
  if (summary.size() < static_cast<size_t>(B * 2 * H)) summary.resize(static_cast<size_t>(B * 2 * H));
  LstmEncodeArgs f{};
  f.s = a.s;
  f.x = a.x;
  f.lengths = a.lengths;
  f.h_out = summary.data();
  f.out_ld = 2 * H;
  LstmEncodeArgs b = f;
  f.w = a.fw;
  b.w = a.bw;
  b.reverse = true;
  b.h_out = summary.data() + H;
  bilstm_encode(f, b);
  sgemm(false, false, B, N, 2 * H, summary.data(), 2 * H, a.dense_kernel, N, a.pred, N, false, a.bf16_dense_kernel);
  // Built for the baseline ISA (no FMA to contract into): the same roundings as the JavaScript loop.
  for (int64_t r = 0; r < B; r++) {
    float* p = a.pred + r * N;
    for (int64_t j = 0; j < N; j++) p[j] += a.dense_bias[j];
    if (!a.target) continue;
    const float* t = a.target + r * N;
    double sum = 0;
    for (int64_t j = 0; j < N; j++) {
      const double d = static_cast<double>(p[j]) - static_cast<double>(t[j]);
      sum += d * d;
    }
    a.scores[r] = static_cast<float>(sum / static_cast<double>(N));
  }
}

}  // namespace ds
