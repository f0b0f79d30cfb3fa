// The kernel thread pool: DEEPSENTRY_THREADS threads (default: the CPUs this process may run on), the caller
// being thread 0 of every job. One job at a time: a caller that finds the pool busy (another thread's job, e.g.
// an async call on a libuv thread while the main thread computes) or calls from inside a job runs its work
// alone on its own thread instead of waiting, so concurrent callers never deadlock and never share scratch.
// Work is partitioned so that every output element is computed by one thread in a fixed order: results do
// not depend on the number of threads.
#pragma once

#include <atomic>

namespace ds {

// Holds the pool for one job (or not, when busy: then n() == 1). Construct, size scratch for n() threads, run.
class PoolLease {
 public:
  explicit PoolLease(int want);
  ~PoolLease();
  PoolLease(const PoolLease&) = delete;
  PoolLease& operator=(const PoolLease&) = delete;
  int n() const { return n_; }
  // fn(ctx, tid, n()) on n() threads; returns when all have returned. fn must not throw.
  void run(void (*fn)(void* ctx, int tid, int n), void* ctx);
  template <class F>
  void run(F& f) {
    run([](void* c, int tid, int n) { (*static_cast<F*>(c))(tid, n); }, &f);
  }

 private:
  int n_;
  bool owns_;
};

int pool_threads();
void pool_resize(int n);  // n >= 1; waits for a running job to finish

// A barrier for the threads of one job (or a team inside it): spins briefly, then yields.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait();

 private:
  std::atomic<int> arrived_{0};
  std::atomic<int> phase_{0};
  int n_;
};

}  // namespace ds
