// The C++ compute API of the training ops around the LSTM (what binding_dense.cpp calls once every argument
// has been checked; nothing here validates input): the output layer with its softmax cross-entropy, fused
// forward and backward, and the embedding gradient. Row-major layouts as in lstm.h.
#pragma once

#include <cstdint>

namespace ds {

// Dense layer + sparse softmax cross-entropy: logits = x·kernel + bias (x [rows, in], kernel [in, classes],
// bias [classes]), per-row loss[r] = w[r]·(logsumexp(logits[r]) − logits[r, labels[r]]) (w = weights, 1 when
// null; rows with w = 0 give 0). With dx set (training), also the gradient of Σ_r d[r]·loss[r] (d = dloss,
// 1 when null): dx [rows, in], dkernel [in, classes], dbias [classes], all overwritten.
//
// The logits exist only as one block of rows at a time per thread: each block's product, softmax, loss, and
// (training) gradient dlogits and dx = dlogits·kernelᵀ run while the block is in L2, with no transposed copy
// (kernel and kernelᵀ are packed once per call). dkernel = (dlogitsᵀ·x)ᵀ is then one sgemm over all rows. Every
// output element is computed by one task in a fixed order: bit-identical for any number of threads.
struct DenseXentArgs {
  int64_t rows, in, classes;
  const float* x;
  const float* kernel;
  const float* bias;
  const int32_t* labels;  // [rows], each in [0, classes)
  const float* weights;   // [rows] or nullptr
  const float* dloss;     // [rows] or nullptr (training only)
  float* loss;            // [rows]
  float* dx;              // [rows, in] or nullptr: forward only
  float* dkernel;         // [in, classes] (training)
  float* dbias;           // [classes] (training)
};
void dense_softmax_xent(const DenseXentArgs& a);

// Dense layer + mean squared error (the regression head of the anomaly detector): pred = x·kernel + bias (x
// [rows, in], kernel [in, out], bias [out]), per-row score[r] = Σ_j (pred[r, j] − target[r, j])² / out, computed
// in double from the float32 predictions and stored as float32. With dx set (training), also the gradient of
// the loss mean_r score[r] (the mean over all rows·out squared differences): dx [rows, in], dkernel [in, out],
// dbias [out], all overwritten. Bit-identical for any number of threads.
struct DenseMseArgs {
  int64_t rows, in, out;
  const float* x;
  const float* kernel;
  const float* bias;
  const float* target;  // [rows, out]
  float* scores;        // [rows]
  float* dx;            // [rows, in] or nullptr: forward only
  float* dkernel;       // [in, out] (training)
  float* dbias;         // [out] (training)
};
void dense_mse(const DenseMseArgs& a);

// Scatter-add of rows (the gradient of an embedding lookup): out[indices[i], :] += x[i, :] for i in order,
// x [rows, cols], out [num_rows, cols] overwritten (zeros where no index points). indices in [0, num_rows).
void scatter_add_rows(const float* x, const int32_t* indices, int64_t rows, int64_t cols, int64_t num_rows, float* out);

}  // namespace ds
