// Per-element softmax cross-entropy math shared by the CPU kernels (kernels/kernels_xent.h, over the SIMD
// value type of simd/vec.h) and CUDA code (V = float), so that both compute the same arithmetic as
// lstm_math.h's exp_approx does for the LSTM gates.
//
// One row of logits l[0 … n) with its label y, weight w and incoming gradient d (of the row's loss):
//   m = max_j l[j];  t[j] = e^(l[j] − m) (≤ 1: no overflow);  s = Σ_j t[j]
//   loss = w·(m + log s − l[y])
//   dl[j] = w·d·(t[j] / s − [j = y])            (the gradient of d·loss with respect to l[j])
#pragma once

#include "lstm_math.h"

namespace ds {
namespace math {

// t = e^(logit − row_max): the softmax numerator, relative to the row's largest logit.
template <class V>
DS_HD V softmax_term(V logit, V row_max) {
  return exp_approx(logit - row_max);
}

// The weighted loss of one row from its max, its Σ softmax_term and the label's logit.
DS_HD float xent_row_loss(float row_max, float term_sum, float label_logit, float weight) {
#if defined(__CUDA_ARCH__)
  return weight * (row_max + logf(term_sum) - label_logit);
#else
  return weight * (row_max + std::log(term_sum) - label_logit);
#endif
}

// dl[j] without its one-hot part: term·(w·d / s). The label's entry then subtracts w·d.
template <class V>
DS_HD V xent_grad_term(V term, V scale_over_sum) {
  return term * scale_over_sum;
}

}  // namespace math
}  // namespace ds
