// Adam's update, one parameter array at a time (the optimiser of every training loop: lib/models/adam.ts and
// the benchmark's native training steps). Per element, in float32:
//   g ← g·gradScale;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  w ← w − α·m / (√v·vScale + ε)
// Two conventions are one formula: tfjs' AdamOptimizer is α = lr/(1−β1^t), vScale = 1/√(1−β2^t); the
// "efficient" form of Kingma & Ba (ε added to the uncorrected √v) is α = lr·√(1−β2^t)/(1−β1^t), vScale = 1.
// The caller computes α and vScale for its step t in double precision.
#pragma once

#include <cmath>
#include <cstdint>

#include "lstm_math.h"  // DS_HD

namespace ds {

struct AdamStep {
  float alpha, beta1, beta2, epsilon, v_scale, grad_scale;
};

namespace math {
// One element (shared by every path that applies Adam, so there is one definition of the arithmetic).
DS_HD void adam_element(float& w, float g, float& m, float& v, const AdamStep& s) {
  g *= s.grad_scale;
  m = s.beta1 * m + (1.0f - s.beta1) * g;
  v = s.beta2 * v + (1.0f - s.beta2) * g * g;
  w -= s.alpha * m / (sqrtf(v) * s.v_scale + s.epsilon);
}
}  // namespace math

// Updates w, m, v (n elements each, not overlapping) in place from g; split over the thread pool when large.
// Deterministic: each element's arithmetic does not depend on the split.
void adam_update(float* w, const float* g, float* m, float* v, int64_t n, const AdamStep& s);

}  // namespace ds
