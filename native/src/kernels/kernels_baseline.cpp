// The portable kernels: 4-float vectors (SSE2 on x86-64, plain vector code elsewhere), no FMA.
#define DS_ISA_NS isa_baseline
#define DS_VW 4
#define DS_GEMM_MR 6
#define DS_GEMM_NV 2
#define DS_LSTM_MR 2
#define DS_KC 256
#define DS_TABLE table_baseline
#include "kernels/kernels_impl.h"
