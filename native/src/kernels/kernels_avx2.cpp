// AVX2 + FMA kernels (compiled with -mavx2 -mfma, used only when the CPU has both: see dispatch.cpp).
// 16 ymm registers: a 6×16 sgemm tile (12 accumulators) and a 2-row × 4-gate LSTM tile (8 accumulators).
#define DS_ISA_NS isa_avx2
#define DS_VW 8
#define DS_GEMM_MR 6
#define DS_GEMM_NV 2
#define DS_LSTM_MR 2
#define DS_KC 256
#define DS_TABLE table_avx2
#include "kernels/kernels_impl.h"
