// Adam's update, one parameter array at a time (the optimiser of every training loop: lib/models/adam.ts and
// the benchmark's native training steps). Per element:
//   g ← g·gradScale;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  w ← w − α·m / (√v·vScale + ε)
// computed in double and stored as float32 after each of m, v, w — exactly what lib's TypeScript loop does
// (JavaScript numbers are doubles, stores into a Float32Array round), so a model trains to the same bits on
// the native backend as before this kernel existed, and as the `cpu` backend's loop computes the update.
// Two conventions are one formula: tfjs' AdamOptimizer is α = lr/(1−β1^t), vScale = 1/√(1−β2^t); the
// "efficient" form of Kingma & Ba (ε added to the uncorrected √v) is α = lr·√(1−β2^t)/(1−β1^t), vScale = 1.
// The caller computes α and vScale for its step t in double precision.
#pragma once

#include <cmath>
#include <cstdint>

#include "lstm_math.h"  // DS_HD

namespace ds {

struct AdamStep {
  double alpha, beta1, beta2, epsilon, v_scale, grad_scale;
};

namespace math {
// One element (shared by every path that applies Adam, so there is one definition of the arithmetic). Each
// operation in double, in the order the TypeScript loop evaluates it; m and v are read back as stored.
// (No contraction into FMAs: adam.cpp is built for the baseline ISA, which has none.)
DS_HD void adam_element(float& w, float g, float& m, float& v, const AdamStep& s) {
  const double gi = static_cast<double>(g) * s.grad_scale;
  m = static_cast<float>(s.beta1 * static_cast<double>(m) + (1.0 - s.beta1) * gi);
  v = static_cast<float>(s.beta2 * static_cast<double>(v) + (1.0 - s.beta2) * gi * gi);
  w = static_cast<float>(static_cast<double>(w) -
                         (s.alpha * static_cast<double>(m)) / (sqrt(static_cast<double>(v)) * s.v_scale + s.epsilon));
}
}  // namespace math

// Updates w, m, v (n elements each, not overlapping) in place from g; split over the thread pool when large.
// Deterministic: each element's arithmetic does not depend on the split.
void adam_update(float* w, const float* g, float* m, float* v, int64_t n, const AdamStep& s);

// One parameter array of a model and its optimiser state.
struct AdamTensor {
  float* w;
  const float* g;
  float* m;
  float* v;
  int64_t n;
};
// adam_update of every tensor (no two overlapping) with one step's settings, as one job on the pool: a
// model's many small arrays (biases, a Dense head) share the threads with its large ones, instead of one
// call each running alone or waking the pool for a few chunks. The same bits as adam_update of each.
void adam_update_all(const AdamTensor* t, int64_t count, const AdamStep& s);

}  // namespace ds
