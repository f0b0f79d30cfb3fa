// The softmax cross-entropy primitive of kernels.h (xent_rows), one part of kernels_impl.h: included by it
// once per instruction set, with V and the load/store helpers of simd/vec.h. The per-element math is
// xent_math.h's (shared with CUDA code).
#pragma once

#include "xent_math.h"

namespace ds {
namespace kern {
namespace DS_ISA_NS {

// Rows of logits → per-row weighted loss and, with grad, the logits' gradient written over them (see
// XentRowsArgs). Three passes over each row while it sits in L1: max, terms (stored in place) and their sum,
// then the scale. Lanes are summed in a fixed order: the result does not depend on threads or alignment.
void xent_rows(const XentRowsArgs& a) {
  const int64_t n = a.n;
  const int64_t nfull = n / VW * VW;
  const int tail = (int)(n - nfull);
  for (int64_t r = 0; r < a.rows; r++) {
    float* p = a.logits + r * a.ld;
    const float w = a.weights ? a.weights[r] : 1.0f;
    const float scale = w * (a.dloss ? a.dloss[r] : 1.0f);
    if (w == 0.0f) {  // a masked row (padding): no loss, no gradient, whatever its logits hold
      a.loss[r] = 0.0f;
      if (a.grad)
        for (int64_t j = 0; j < n; j++) p[j] = 0.0f;
      continue;
    }
    const int32_t label = a.labels[r];
    const float label_logit = p[label];
    // max: vmax keeps the running value when a lane is NaN; a NaN logit still makes the row's sum NaN below.
    V vm(p[0]);
    for (int64_t j = 0; j < nfull; j += VW) vm = vmax(loadu(p + j), vm);
    float m = vm.v[0];
    for (int i = 1; i < VW; i++) m = vm.v[i] > m ? vm.v[i] : m;
    for (int64_t j = nfull; j < n; j++) m = p[j] > m ? p[j] : m;
    const V vmx(m);
    V vs(0.0f);
    for (int64_t j = 0; j < nfull; j += VW) {
      const V t = math::softmax_term(loadu(p + j), vmx);
      storeu(p + j, t);
      vs = vs + t;
    }
    float s = 0.0f;
    for (int i = 0; i < VW; i++) s += vs.v[i];
    if (tail > 0) {
      const V t = math::softmax_term(load_n(p + nfull, tail), vmx);
      store_n(p + nfull, t, tail);
      for (int i = 0; i < tail; i++) s += t.v[i];
    }
    a.loss[r] = math::xent_row_loss(m, s, label_logit, w);
    if (!a.grad) continue;
    if (scale == 0.0f) {
      for (int64_t j = 0; j < n; j++) p[j] = 0.0f;
      continue;
    }
    const V k(scale / s);
    for (int64_t j = 0; j < nfull; j += VW) storeu(p + j, math::xent_grad_term(loadu(p + j), k));
    if (tail > 0) store_n(p + nfull, math::xent_grad_term(load_n(p + nfull, tail), k), tail);
    p[label] -= scale;
  }
}

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds
