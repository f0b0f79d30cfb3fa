// The kernel thread pool: DEEPSENTRY_THREADS threads (default: the CPUs this process may run on), the caller
// being one of them. A job is a list of independent tasks that the caller and the workers claim one by one.
// One job at a time: a caller that finds the pool busy (another thread's job, e.g. an async call on a libuv
// thread while the main thread computes) or calls from inside a job runs its tasks alone on its own thread
// instead of waiting, so concurrent callers never deadlock and never share scratch. Callers split work so
// that every output element is computed by one task in a fixed order: results do not depend on the number
// of threads nor on which thread runs which task.
#pragma once

namespace ds {

// Holds the pool for one job (or not, when busy: then n() == 1). Construct, plan for n() threads, run_tasks.
// A small job (tens of microseconds) does not wake sleeping workers for 10 ms after a woken worker was put on
// its waker's core: no core was free (other processes keep them busy), and such a worker takes the caller's
// core for a time slice — hundreds of microseconds, many times the job. It then runs with the workers that are
// awake (spinning after a recent job). Larger jobs always wake them.
class PoolLease {
 public:
  explicit PoolLease(int want, bool small_job = false);
  ~PoolLease();
  PoolLease(const PoolLease&) = delete;
  PoolLease& operator=(const PoolLease&) = delete;
  int n() const { return n_; }
  // fn(ctx, task) for task = 0 … ntasks-1, each exactly once, by whichever of the n() threads claims it first;
  // tasks must be independent (no barriers). The caller returns as soon as every task is done: a worker
  // that is slow to wake (a loaded machine) is not waited for, the caller does its share. fn must not throw.
  void run_tasks(int ntasks, void (*fn)(void* ctx, int task), void* ctx);
  template <class F>
  void run_tasks(int ntasks, F& f) {
    run_tasks(ntasks, [](void* c, int task) { (*static_cast<F*>(c))(task); }, &f);
  }

 private:
  int n_;
  bool owns_;
  bool small_;
};

int pool_threads();
void pool_resize(int n);  // n >= 1; waits for a running job to finish

}  // namespace ds
