// SIMD level selection: the best level that is both compiled in and supported by this CPU (checked once at
// load with __builtin_cpu_supports, which also checks that the OS saves the AVX / AVX-512 registers), lowered by
// DEEPSENTRY_SIMD=baseline|avx2|avx512 (a level above the best is ignored: the env may only lower the choice).
#include "dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "threadpool.h"

namespace ds {
namespace {

bool cpu_has(SimdLevel level) {
  switch (level) {
    case SimdLevel::Baseline:
      return true;
#if defined(__x86_64__)
    case SimdLevel::Avx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SimdLevel::Avx512:
      // exactly the extensions kernels_avx512.cpp is compiled with (kernels.cmake)
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default:
      return false;
  }
}

bool cpu_has_bf16() {
#if defined(__x86_64__)
  // the extensions kernels_bf16_avx512.cpp is compiled with (kernels.cmake), on top of the AVX-512 level's
  __builtin_cpu_init();
  return cpu_has(SimdLevel::Avx512) && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

SimdLevel detect_best() {
  SimdLevel best = SimdLevel::Baseline;
  if (cpu_has(SimdLevel::Avx512))
    best = SimdLevel::Avx512;
  else if (cpu_has(SimdLevel::Avx2))
    best = SimdLevel::Avx2;
  if (const char* e = std::getenv("DEEPSENTRY_SIMD")) {
    SimdLevel want = best;
    if (!std::strcmp(e, "baseline")) want = SimdLevel::Baseline;
    else if (!std::strcmp(e, "avx2")) want = SimdLevel::Avx2;
    else if (!std::strcmp(e, "avx512")) want = SimdLevel::Avx512;
    if ((int)want < (int)best) best = want;
  }
  return best;
}

struct State {
  SimdLevel best;
  bool bf16;
  std::atomic<int> active;
  std::atomic<int> precision;
  State() : best(detect_best()), bf16(cpu_has_bf16()), active((int)best), precision((int)Precision::Fp32) {}
};

State& state() {
  static State s;
  return s;
}

}  // namespace

const char* simd_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Baseline: return "baseline";
    case SimdLevel::Avx2: return "avx2";
    case SimdLevel::Avx512: return "avx512";
  }
  return "unknown";
}

bool simd_supported(SimdLevel level) { return cpu_has(level); }
SimdLevel simd_best() { return state().best; }
SimdLevel simd_active() { return (SimdLevel)state().active.load(std::memory_order_relaxed); }
void simd_set(SimdLevel level) {
  if (simd_supported(level)) state().active.store((int)level, std::memory_order_relaxed);
}

const kern::Table& active_table() {
  switch (simd_active()) {
#if defined(__x86_64__)
    case SimdLevel::Avx512: return kern::table_avx512;
    case SimdLevel::Avx2: return kern::table_avx2;
#endif
    default: return kern::table_baseline;
  }
}

const kern::Bf16Table& active_bf16_table() {
#if defined(__x86_64__)
  if (state().bf16 && simd_active() == SimdLevel::Avx512) return kern::bf16_table_avx512;
#endif
  return kern::bf16_table_portable;
}

// PrecisionScope's override on this thread, or -1
thread_local int tl_precision = -1;

Precision precision_active() {
  return tl_precision >= 0 ? (Precision)tl_precision : (Precision)state().precision.load(std::memory_order_relaxed);
}
PrecisionScope::PrecisionScope(Precision p) : saved_(tl_precision) { tl_precision = (int)p; }
PrecisionScope::~PrecisionScope() { tl_precision = saved_; }
void precision_set(Precision p) { state().precision.store((int)p, std::memory_order_relaxed); }
bool bf16_hardware() { return state().bf16; }
const char* bf16_kernels_name() { return active_bf16_table().name; }
const char* bf16_instructions() { return active_bf16_table().instructions; }

int threads_get() { return pool_threads(); }
void threads_set(int n) { pool_resize(n); }

}  // namespace ds
