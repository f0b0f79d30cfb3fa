// A SIMD float vector for the per-ISA kernel files (native/src/kernels/kernels_<isa>.cpp).
//
// Each kernel file defines DS_ISA_NS (its own namespace) and DS_VW (floats per vector: 16 for AVX-512, 8 for
// AVX2, 4 for the baseline) and is compiled with its own -m flags. Everything here lives in
// ds::kern::DS_ISA_NS so that no inline function or template instantiation compiled with one ISA's flags can
// be merged by the linker with another's (ODR): the lstm_math.h templates are instantiated with this
// namespace's V, which gives them distinct symbols per ISA.
//
// V provides what native/src/lstm_math.h expects of a value type (+ - * /, broadcast from float, vmin, vmax,
// vround, vpow2), plus loads/stores with a partial (masked) form for row tails.
#pragma once

#if !defined(DS_ISA_NS) || !defined(DS_VW)
#error "define DS_ISA_NS and DS_VW before including simd/vec.h"
#endif

#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// GCC 12 warns that the "undefined" source register of some AVX-512 intrinsics (_mm512_undefined_ps) may be
// used uninitialised: a false positive inside its own headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define DS_INL inline __attribute__((always_inline))

namespace ds {
namespace kern {
namespace DS_ISA_NS {

constexpr int VW = DS_VW;
typedef float vf_t __attribute__((vector_size(DS_VW * 4)));
typedef int32_t vi_t __attribute__((vector_size(DS_VW * 4)));

#if DS_VW == 16 && defined(__AVX512F__)
#define DS_V_AVX512 1
#elif DS_VW == 8 && defined(__AVX2__) && defined(__FMA__)
#define DS_V_AVX2 1
#elif DS_VW == 4 && defined(__SSE2__)
#define DS_V_SSE2 1
#elif DS_VW == 4
#define DS_V_GENERIC 1
#else
#error "DS_VW does not match the instruction set this file is compiled for"
#endif

struct V {
  vf_t v;
  DS_INL V() = default;
  DS_INL V(vf_t x) : v(x) {}
  DS_INL V(float x) {  // broadcast (implicit: lstm_math.h writes V(1.0f) and mixes floats in)
#if DS_V_AVX512
    v = (vf_t)_mm512_set1_ps(x);
#elif DS_V_AVX2
    v = (vf_t)_mm256_set1_ps(x);
#elif DS_V_SSE2
    v = (vf_t)_mm_set1_ps(x);
#else
    for (int i = 0; i < VW; i++) v[i] = x;
#endif
  }
};

DS_INL V operator+(V a, V b) { return V(a.v + b.v); }
DS_INL V operator-(V a, V b) { return V(a.v - b.v); }
DS_INL V operator*(V a, V b) { return V(a.v * b.v); }
DS_INL V operator/(V a, V b) { return V(a.v / b.v); }

// a*b + c in one rounding where the ISA has FMA (the baseline rounds twice).
DS_INL V fma(V a, V b, V c) {
#if DS_V_AVX512
  return V((vf_t)_mm512_fmadd_ps((__m512)a.v, (__m512)b.v, (__m512)c.v));
#elif DS_V_AVX2
  return V((vf_t)_mm256_fmadd_ps((__m256)a.v, (__m256)b.v, (__m256)c.v));
#else
  return V(a.v * b.v + c.v);
#endif
}

// Same semantics as the float versions in lstm_math.h: vmin(a, b) = a < b ? a : b (b when either is NaN),
// which is exactly what minps/maxps do.
DS_INL V vmin(V a, V b) {
#if DS_V_AVX512
  return V((vf_t)_mm512_min_ps((__m512)a.v, (__m512)b.v));
#elif DS_V_AVX2
  return V((vf_t)_mm256_min_ps((__m256)a.v, (__m256)b.v));
#elif DS_V_SSE2
  return V((vf_t)_mm_min_ps((__m128)a.v, (__m128)b.v));
#else
  V r;
  for (int i = 0; i < VW; i++) r.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
  return r;
#endif
}
DS_INL V vmax(V a, V b) {
#if DS_V_AVX512
  return V((vf_t)_mm512_max_ps((__m512)a.v, (__m512)b.v));
#elif DS_V_AVX2
  return V((vf_t)_mm256_max_ps((__m256)a.v, (__m256)b.v));
#elif DS_V_SSE2
  return V((vf_t)_mm_max_ps((__m128)a.v, (__m128)b.v));
#else
  V r;
  for (int i = 0; i < VW; i++) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
  return r;
#endif
}
// Round to nearest, ties to even (the default MXCSR mode, like std::nearbyint in the float path).
DS_INL V vround(V x) {
#if DS_V_AVX512
  return V((vf_t)_mm512_roundscale_ps((__m512)x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif DS_V_AVX2
  return V((vf_t)_mm256_round_ps((__m256)x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
  // |x| < 2^22 here (exp_approx's argument is clamped): adding and subtracting 1.5*2^23 rounds to an
  // integer in the current (nearest-even) mode. Without -ffast-math the compiler may not fold it away, and
  // this path has no FMA to contract it.
  const vf_t magic = vf_t{} + 12582912.0f;
  return V((x.v + magic) - magic);
#endif
}
// 2^n for integral n in [-126, 127]: the exponent bits of a float.
DS_INL V vpow2(V n) {
  vi_t i = __builtin_convertvector(n.v, vi_t);
  i = (i + 127) << 23;
  return V((vf_t)i);
}

DS_INL V loadu(const float* p) {
  vf_t r;
  __builtin_memcpy(&r, p, sizeof r);
  return V(r);
}
DS_INL void storeu(float* p, V a) { __builtin_memcpy(p, &a.v, sizeof a.v); }

// The first n (0 <= n <= VW) lanes from / to memory; the other lanes read as 0 and are not written.
DS_INL V load_n(const float* p, int n) {
#if DS_V_AVX512
  return V((vf_t)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p));
#else
  V r(0.0f);
  for (int i = 0; i < n; i++) r.v[i] = p[i];
  return r;
#endif
}
DS_INL void store_n(float* p, V a, int n) {
#if DS_V_AVX512
  _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), (__m512)a.v);
#else
  for (int i = 0; i < n; i++) p[i] = a.v[i];
#endif
}
DS_INL V load_maybe_n(const float* p, int n) { return n == VW ? loadu(p) : load_n(p, n); }
DS_INL void store_maybe_n(float* p, V a, int n) {
  if (n == VW)
    storeu(p, a);
  else
    store_n(p, a, n);
}

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds
