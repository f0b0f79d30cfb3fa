// scatter_add_rows of train_ops.h: one pass over x in row order (memory-bound and small next to the LSTM:
// B·T rows of an embedding width), so one thread, and every sum in the same order on every run.
#include <cstring>

#include "train_ops.h"

namespace ds {

void scatter_add_rows(const float* x, const int32_t* indices, int64_t rows, int64_t cols, int64_t num_rows, float* out) {
  if (num_rows * cols > 0) std::memset(out, 0, sizeof(float) * num_rows * cols);
  for (int64_t i = 0; i < rows; i++) {
    float* o = out + (int64_t)indices[i] * cols;
    const float* s = x + i * cols;
    for (int64_t j = 0; j < cols; j++) o[j] += s[j];
  }
}

}  // namespace ds
