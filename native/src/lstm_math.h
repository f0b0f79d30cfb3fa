// Per-element LSTM math shared by the CPU kernels (scalar and SIMD) and the CUDA kernels.
//
// Everything here is written once, generically over a value type V, so that the CPU tests exercise
// exactly the arithmetic the GPU runs:
//   - V = float                  : the portable CPU path and the CUDA kernels (host + device)
//   - V = a SIMD vector wrapper  : the AVX2 / AVX-512 CPU kernels (native/src/simd/*.h)
// A value type provides + - * / and a broadcasting constructor from float, plus the free functions
// vmin, vmax, vround (to nearest, ties to even) and vpow2 (2^n for an integral-valued n in [-126, 127]).
// vmin(a, b) is a < b ? a : b and vmax(a, b) is a > b ? a : b exactly (so b when either is NaN), which is
// what x86 minps/maxps compute.
//
// Gate order is Keras / tfjs-layers: i, f, c (called g here), o.
#pragma once

#include <cstdint>
#include <cstring>
#include <cmath>

#if defined(__CUDACC__)
#define DS_HD __host__ __device__ __forceinline__
#else
#define DS_HD inline __attribute__((always_inline))
#endif

namespace ds {
namespace math {

// ---- float implementations of the primitive operations -------------------------------------
DS_HD float vmin(float a, float b) { return a < b ? a : b; }
DS_HD float vmax(float a, float b) { return a > b ? a : b; }
DS_HD float vround(float x) {
#if defined(__CUDA_ARCH__)
  return rintf(x);
#else
  return std::nearbyint(x);
#endif
}
DS_HD float vpow2(float n) {
  // n is integral in [-126, 127]: build the float 2^n from its exponent bits.
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
#if defined(__CUDA_ARCH__)
  return __int_as_float(bits);
#else
  float r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
#endif
}

// ---- generic math -----------------------------------------------------------------------------

// exp(x), Cephes-style: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial for e^r, times 2^n.
// Clamped so that 2^n stays a normal float; relative error ~2 ulp over the clamped range.
template <class V>
DS_HD V exp_approx(V x) {
  // Bound first in the argument order that lets NaN through (vmax(a, b) returns b when either is NaN), so
  // a NaN input gives NaN, not a plausible number.
  x = vmin(V(88.0f), vmax(V(-87.3f), x));
  V n = vround(x * V(1.44269504088896341f));
  V r = x - n * V(0.693359375f);
  r = r - n * V(-2.12194440e-4f);
  V p = V(1.9875691500e-4f);
  p = p * r + V(1.3981999507e-3f);
  p = p * r + V(8.3334519073e-3f);
  p = p * r + V(4.1665795894e-2f);
  p = p * r + V(1.6666665459e-1f);
  p = p * r + V(5.0000001201e-1f);
  p = p * r * r + r + V(1.0f);
  return p * vpow2(n);
}

template <class V>
DS_HD V sigmoid(V x) {
  return V(1.0f) / (V(1.0f) + exp_approx(V(0.0f) - x));
}

// tanh(x) as an odd rational function p(x)/q(x) on [-7.9, 7.9] (the approximation Eigen uses for
// float); exact to float precision outside that range. Keeps relative accuracy near 0.
template <class V>
DS_HD V tanh_approx(V x) {
  x = vmin(V(7.90531110763549805f), vmax(V(-7.90531110763549805f), x));  // NaN passes, as in exp_approx
  V x2 = x * x;
  V p = V(-2.76076847742355e-16f);
  p = p * x2 + V(2.00018790482477e-13f);
  p = p * x2 + V(-8.60467152213735e-11f);
  p = p * x2 + V(5.12229709037114e-08f);
  p = p * x2 + V(1.48572235717979e-05f);
  p = p * x2 + V(6.37261928875436e-04f);
  p = p * x2 + V(4.89352455891786e-03f);
  p = p * x;
  V q = V(1.19825839466702e-06f);
  q = q * x2 + V(1.18534705686654e-04f);
  q = q * x2 + V(2.26843463243900e-03f);
  q = q * x2 + V(4.89352518554385e-03f);
  return p / q;
}

// One LSTM cell, forward. Inputs: pre-activation gates (i, f, g, o) and the previous cell state.
// Outputs: the activated gates (kept for backward), the new cell state and the new hidden state.
template <class V>
DS_HD void cell_forward(V pi, V pf, V pg, V po, V c_prev, V& i, V& f, V& g, V& o, V& c, V& h) {
  i = sigmoid(pi);
  f = sigmoid(pf);
  g = tanh_approx(pg);
  o = sigmoid(po);
  c = f * c_prev + i * g;
  h = o * tanh_approx(c);
}

// One LSTM cell, backward. dh: total gradient reaching h_t; dc: gradient reaching c_t from step t+1
// (and from the final-state output). Gives the pre-activation gate gradients and dc_{t-1}.
template <class V>
DS_HD void cell_backward(V i, V f, V g, V o, V c_prev, V c, V dh, V dc, V& dpi, V& dpf, V& dpg,
                         V& dpo, V& dc_prev) {
  V tc = tanh_approx(c);
  V one = V(1.0f);
  V dct = dc + dh * o * (one - tc * tc);
  dpo = dh * tc * o * (one - o);
  dpi = dct * g * i * (one - i);
  dpf = dct * c_prev * f * (one - f);
  dpg = dct * i * (one - g * g);
  dc_prev = dct * f;
}

}  // namespace math
}  // namespace ds
