// Runtime SIMD dispatch: which kern::Table (kernels/kernels.h) the compute API of lstm.h uses.
#pragma once

#include "kernels/kernels.h"
#include "lstm.h"

namespace ds {

// The kernels of the active level (simd_active()). Read once per API call: a concurrent simd_set() affects
// only calls that start after it.
const kern::Table& active_table();

}  // namespace ds
