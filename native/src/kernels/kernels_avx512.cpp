// AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma …; used only when the CPU
// has them: see dispatch.cpp). 32 zmm registers: a 6×64 sgemm tile (24 accumulators, 4 B vectors, the A
// element broadcast from memory) whose 128×64 B panel (32 KB) stays in L1, and a 6-row × 4-gate LSTM tile.
#define DS_ISA_NS isa_avx512
#define DS_VW 16
#define DS_GEMM_MR 6
#define DS_GEMM_NV 4
#define DS_LSTM_MR 6
#define DS_KC 128
#define DS_TABLE table_avx512
#include "kernels/kernels_impl.h"
