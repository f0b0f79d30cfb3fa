// The compute primitives of kernels.h, written once over the vector type of simd/vec.h and compiled once per
// instruction set by kernels_<isa>.cpp: the sgemm (kernels_sgemm.h) and the LSTM steps (kernels_lstm.h),
// with the constants they share and the exported Table here. kernels_<isa>.cpp define before including it:
//   DS_ISA_NS  namespace of this ISA's copy        DS_VW       floats per vector
//   DS_GEMM_MR rows of the sgemm register tile     DS_GEMM_NV  vectors per row of that tile (nr = NV*VW)
//   DS_LSTM_MR rows of the fused LSTM step tile    DS_KC       K block of the sgemm (B panel kc×nr in L1)
//   DS_TABLE   the name of the exported Table
// Nothing in here may use an inline function or template from a header outside this namespace (other than
// compiler intrinsics and lstm_math.h instantiated with this V): see simd/vec.h on ODR.
#pragma once

#include "kernels/kernels.h"
#include "simd/vec.h"
#include "lstm_math.h"

namespace ds {
namespace kern {
namespace DS_ISA_NS {

constexpr int GMR = DS_GEMM_MR;
constexpr int GNV = DS_GEMM_NV;
constexpr int GNR = GNV * VW;
constexpr int KC = DS_KC;
constexpr int LMR = DS_LSTM_MR;
constexpr int64_t MC = 240;  // rows of A per block (A block MC×KC stays in L2); a multiple of GMR

DS_INL int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

}  // namespace DS_ISA_NS
}  // namespace kern
}  // namespace ds

// The primitives: sgemm, the LSTM steps (which call the sgemm), the softmax cross-entropy rows.
#include "kernels/kernels_sgemm.h"
#include "kernels/kernels_lstm.h"
#include "kernels/kernels_xent.h"

namespace ds {
namespace kern {

#define DS_STR2(x) #x
#define DS_STRINGIFY(x) DS_STR2(x)
static_assert(DS_ISA_NS::LMR <= 8, "extend the remainder switch in lstm_rec");
extern const Table DS_TABLE;
const Table DS_TABLE = {
    DS_STRINGIFY(DS_ISA_NS), DS_ISA_NS::VW, DS_ISA_NS::GMR, DS_ISA_NS::GNR, DS_ISA_NS::KC, DS_ISA_NS::LMR,
    DS_ISA_NS::pack_b, DS_ISA_NS::gemm, DS_ISA_NS::pack_r, DS_ISA_NS::pack_k, DS_ISA_NS::lstm_rec, DS_ISA_NS::lstm_bwd_rec,
    DS_ISA_NS::colsum, DS_ISA_NS::xent_rows,
};

}  // namespace kern
}  // namespace ds
