// Adam over the thread pool (native/src/adam.h). Memory-bound (7 float streams per element): arrays are split
// in fixed chunks, one task each on the pool; a call of at most one chunk runs on the caller's thread.
#include "adam.h"

#include <algorithm>
#include <vector>

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
  const AdamTensor t{w, g, m, v, n};
  adam_update_all(&t, 1, s);
}

void adam_update_all(const AdamTensor* t, int64_t count, const AdamStep& s) {
  // Task k is chunk k - first[i] of tensor i, first[i] <= k < first[i + 1].
  std::vector<int64_t> first(static_cast<size_t>(count) + 1, 0);
  for (int64_t i = 0; i < count; i++) first[i + 1] = first[i] + (t[i].n + kChunk - 1) / kChunk;
  const int64_t tasks = first[count];
  auto chunk = [&](int64_t i, int64_t c) {
    const int64_t b = c * kChunk, e = b + kChunk < t[i].n ? b + kChunk : t[i].n;
    adam_range(t[i].w, t[i].g, t[i].m, t[i].v, b, e, s);
  };
  if (tasks <= 1) {
    for (int64_t i = 0; i < count; i++) adam_range(t[i].w, t[i].g, t[i].m, t[i].v, 0, t[i].n, s);
    return;
  }
  PoolLease lease(threads_get());
  auto task = [&](int k) {
    const int64_t i = std::upper_bound(first.begin(), first.end(), static_cast<int64_t>(k)) - first.begin() - 1;
    chunk(i, k - first[i]);
  };
  lease.run_tasks(static_cast<int>(tasks), task);
}

}  // namespace ds
