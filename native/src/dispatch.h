// Runtime SIMD dispatch: which kern::Table (kernels/kernels.h) the compute API of lstm.h uses.
#pragma once

#include "kernels/kernels.h"
#include "kernels/kernels_bf16.h"
#include "lstm.h"

namespace ds {

// The kernels of the active level (simd_active()). Read once per API call: a concurrent simd_set() affects
// only calls that start after it.
const kern::Table& active_table();
// The bf16 kernels that go with it: AVX512-BF16 at the avx512 level on a CPU that has the instructions, else
// the portable emulation (same numbers).
const kern::Bf16Table& active_bf16_table();

}  // namespace ds
