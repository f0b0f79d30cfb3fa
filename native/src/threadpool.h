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
  // fn(ctx, task) for task = 0 … ntasks-1, each exactly once, by whichever of the n() threads claims it first:
  // for independent tasks (no barriers). The caller returns as soon as every task is done: a worker that is
  // slow to wake (a loaded machine) is not waited for, the caller does its share.
  void run_tasks(int ntasks, void (*fn)(void* ctx, int task), void* ctx);
  template <class F>
  void run_tasks(int ntasks, F& f) {
    run_tasks(ntasks, [](void* c, int task) { (*static_cast<F*>(c))(task); }, &f);
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
