// Adam over the thread pool (native/src/adam.h). Memory-bound (7 float streams per element): large arrays are
// split in fixed chunks over the pool, small ones run on the caller's thread.
#include "adam.h"

#include "lstm.h"
#include "threadpool.h"

namespace ds {

namespace {
constexpr int64_t kChunk = 1 << 15;  // elements per task (896 KiB of streams): big enough to amortise a task

void adam_range(float* w, const float* g, float* m, float* v, int64_t begin, int64_t end, const AdamStep& s) {
  // A plain loop the compiler vectorises (sqrt and division included) at the baseline ISA.
  for (int64_t i = begin; i < end; i++) math::adam_element(w[i], g[i], m[i], v[i], s);
}
}  // namespace

void adam_update(float* w, const float* g, float* m, float* v, int64_t n, const AdamStep& s) {
  const int64_t tasks = (n + kChunk - 1) / kChunk;
  if (tasks <= 1) {
    adam_range(w, g, m, v, 0, n, s);
    return;
  }
  PoolLease lease(threads_get());
  auto task = [&](int t) {
    const int64_t b = t * kChunk;
    adam_range(w, g, m, v, b, b + kChunk < n ? b + kChunk : n, s);
  };
  lease.run_tasks(static_cast<int>(tasks), task);
}

}  // namespace ds
