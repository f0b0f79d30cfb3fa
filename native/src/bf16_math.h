// Per-element arithmetic of the bf16 precision tier (lstm.h Precision::Bf16), written once for the CPU kernels
// (kernels/kernels_bf16*.{h,cpp}) and the CUDA kernels (native/cuda/lstm_kernels.cuh, host and device), so that
// the CPU tests exercise exactly the rounding and the pair step the CUDA bf16 kernels run. The arithmetic is
// that of the AVX512-BF16 instructions (kernels/kernels_bf16.h):
//   - bf16_round: float32 → bf16, round to nearest, ties to even (vcvtne2ps2bf16: a denormal input becomes a
//     zero of its sign, a NaN stays a NaN, quieted);
//   - bf16_dot_pair: one pair (k = 2p, 2p+1) of a product: acc = acc + a[2p+1]·b[2p+1], then
//     acc = acc + a[2p]·b[2p], each a float32 addition rounded to nearest, denormal results flushed to zero
//     (vdpbf16ps). The product of two bf16 values is exact in float32, so a fused multiply-add gives the same
//     sum; the flushes are selects, which no compiler contracts across.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "lstm_math.h"  // DS_HD

namespace ds {
namespace kern {

DS_HD uint32_t f32_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
#endif
}
DS_HD float bits_f32(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float x;
  std::memcpy(&x, &b, 4);
  return x;
#endif
}

// float32 → bf16, round to nearest even, as vcvtne2ps2bf16 does it.
DS_HD uint16_t bf16_round(float x) {
  uint32_t b = f32_bits(x);
  if ((b & 0x7f800000u) == 0) return (uint16_t)((b >> 16) & 0x8000u);  // zero or denormal: signed zero
  if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40u);  // NaN: quiet
  b += 0x7fffu + ((b >> 16) & 1u);
  return (uint16_t)(b >> 16);
}
DS_HD float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }
// x rounded to bf16, as the float32 of the same value.
DS_HD float bf16_rounded(float x) { return bf16_to_f32(bf16_round(x)); }
// One pair word: bf16 of the even k in the low half, of the odd k in the high half.
DS_HD uint32_t bf16_pair(float even, float odd) { return (uint32_t)bf16_round(even) | ((uint32_t)bf16_round(odd) << 16); }
DS_HD float bf16_lo(uint32_t w) { return bf16_to_f32((uint16_t)(w & 0xffffu)); }
DS_HD float bf16_hi(uint32_t w) { return bf16_to_f32((uint16_t)(w >> 16)); }

// vdpbf16ps flushes denormal results to zero (keeping the sign).
DS_HD float bf16_ftz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

// One pair of a bf16 product on values already rounded to bf16: the odd products first, as the instruction does.
DS_HD float bf16_dot_pair(float acc, float a_even, float b_even, float a_odd, float b_odd) {
  acc = bf16_ftz(acc + bf16_ftz(a_odd * b_odd));
  return bf16_ftz(acc + bf16_ftz(a_even * b_even));
}
// The same on two pair words.
DS_HD float bf16_dot_pair(float acc, uint32_t a, uint32_t b) {
  return bf16_dot_pair(acc, bf16_lo(a), bf16_lo(b), bf16_hi(a), bf16_hi(b));
}

}  // namespace kern
}  // namespace ds
