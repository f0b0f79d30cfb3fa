#include "threadpool.h"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ds {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

thread_local bool tls_in_job = false;

// How long small jobs leave sleeping workers asleep after a woken worker was put on its waker's core
// (PoolLease: small_job).
constexpr int64_t kSmallNoWakeNs = 10'000'000;  // 10 ms

// Whether the calling thread runs on core `cpu` now (false when either is unknown: -1).
bool on_core(int cpu) {
  const int c = sched_getcpu();
  return c >= 0 && c == cpu;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int default_threads() {
  if (const char* e = std::getenv("DEEPSENTRY_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(e, &end, 10);
    if (end != e && *end == '\0' && v >= 1 && v <= 256) return (int)v;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int c = CPU_COUNT(&set);
    if (c >= 1) return c;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? (int)hc : 1;
}

// Never destroyed (see pool()): worker threads may outlive static destruction at process exit.
struct Pool {
  std::mutex run_mu;  // held by the lease that owns the current job
  std::mutex mu;      // guards sleeping
  std::condition_variable cv;
  std::vector<std::thread> workers;
  std::atomic<int> size{1};  // read by threads_get() without the lock
  std::atomic<uint64_t> seq{0};  // a new value announces a new job
  std::atomic<int> sleepers{0};
  std::atomic<int> caller_cpu{-1};  // the core the last job's caller ran on when it opened the job
  // The core of the last caller that woke the sleepers; until small_no_wake_ns (now_ns), small jobs do not
  // wake them (a woken worker landed on its waker's core: no core was free).
  std::atomic<int> waker_cpu{-1};
  std::atomic<int64_t> small_no_wake_ns{0};
  std::atomic<bool> stop{false};
  // The job: workers join while slots > 0 (its caller closes it once every task is done); tasks are claimed
  // from next_task; finished counts the workers that joined and are done.
  std::atomic<int> slots{0};
  std::atomic<int> next_task{0};
  std::atomic<int> finished{0};
  int ntasks = 0;
  void (*task_fn)(void*, int) = nullptr;
  void* ctx = nullptr;

  void worker(uint64_t seen) {
    tls_in_job = true;  // nothing a worker runs may start a nested job
    for (;;) {
      uint64_t w = seq.load(std::memory_order_acquire);
      if (w == seen) {
        // Spin a little (the next call of a latency-bound caller comes soon), then sleep. Not on the core of
        // the last job's caller (where a worker woken while no core was free is put): there the spinning would
        // keep the caller from running for up to the whole 200 us.
        auto t0 = std::chrono::steady_clock::now();
        int it = 0;
        while ((w = seq.load(std::memory_order_acquire)) == seen && !stop.load(std::memory_order_relaxed)) {
          cpu_relax();
          if (++it % 64 == 0 && (std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(200) ||
                                 on_core(caller_cpu.load(std::memory_order_relaxed))))
            break;
        }
        if (w == seen) {
          std::unique_lock<std::mutex> lk(mu);
          sleepers.fetch_add(1);
          cv.wait(lk, [&] { return seq.load() != seen || stop.load(); });
          sleepers.fetch_sub(1);
          if (on_core(waker_cpu.load(std::memory_order_relaxed)))
            small_no_wake_ns.store(now_ns() + kSmallNoWakeNs, std::memory_order_relaxed);
          w = seq.load(std::memory_order_acquire);
        }
      }
      if (stop.load()) return;
      seen = w;
      // Join only while the job is open: its caller may already have done every task and closed it (then its
      // ctx may be gone). A slot taken means the caller waits for this worker. (A worker that saw an older
      // job and joins a newer one runs the newer one's tasks: the slot it took belongs to that job.)
      int sl = slots.load();
      while (sl > 0 && !slots.compare_exchange_weak(sl, sl - 1)) {
      }
      if (sl > 0) {
        for (int t; (t = next_task.fetch_add(1)) < ntasks;) task_fn(ctx, t);
        finished.fetch_add(1, std::memory_order_acq_rel);
      }
    }
  }

  void start(int n) {
    stop.store(false);
    size = 1;
    // No job runs now (load time, or under run_mu): the current seq is what every new worker has "seen".
    const uint64_t seen = seq.load();
    for (int i = 1; i < n; i++) {
      try {
        workers.emplace_back([this, seen] { worker(seen); });
      } catch (...) {
        break;  // fewer threads than asked (resource limits): still correct
      }
      size = i + 1;
    }
  }
  void stop_all() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop.store(true);
    }
    cv.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
    size = 1;
  }
};

Pool& pool() {
  static Pool* p = [] {
    Pool* q = new Pool;
    q->start(default_threads());
    return q;
  }();
  return *p;
}

}  // namespace

PoolLease::PoolLease(int want, bool small_job) : n_(1), owns_(false), small_(small_job) {
  if (want <= 1 || tls_in_job) return;
  Pool& p = pool();
  if (!p.run_mu.try_lock()) return;
  owns_ = true;
  const int size = p.size.load();
  n_ = want < size ? want : size;
}

PoolLease::~PoolLease() {
  if (owns_) pool().run_mu.unlock();
}

void PoolLease::run_tasks(int ntasks, void (*fn)(void* ctx, int task), void* ctx) {
  if (ntasks <= 0) return;
  const int helpers = n_ - 1 < ntasks - 1 ? n_ - 1 : ntasks - 1;
  const bool was = tls_in_job;
  if (helpers <= 0) {
    tls_in_job = true;
    for (int t = 0; t < ntasks; t++) fn(ctx, t);
    tls_in_job = was;
    return;
  }
  Pool& p = pool();
  p.task_fn = fn;
  p.ctx = ctx;
  p.ntasks = ntasks;
  p.next_task.store(0);
  p.finished.store(0);
  p.slots.store(helpers);
  p.caller_cpu.store(sched_getcpu(), std::memory_order_relaxed);
  p.seq.store(p.seq.load(std::memory_order_relaxed) + 1);  // seq_cst: pairs with the sleepers check
  if (p.sleepers.load() > 0 && !(small_ && now_ns() < p.small_no_wake_ns.load(std::memory_order_relaxed))) {
    p.waker_cpu.store(sched_getcpu(), std::memory_order_relaxed);
    { std::lock_guard<std::mutex> lk(p.mu); }
    p.cv.notify_all();
  }
  tls_in_job = true;
  for (int t; (t = p.next_task.fetch_add(1)) < ntasks;) fn(ctx, t);
  tls_in_job = was;
  // Close the job: a worker that has not joined yet (descheduled, asleep) never will, and is not waited for.
  const int joined = helpers - p.slots.exchange(0);
  int it = 0;
  while (p.finished.load(std::memory_order_acquire) != joined) {
    cpu_relax();
    if (++it > 4096) std::this_thread::yield();
  }
}

int pool_threads() { return pool().size; }

void pool_resize(int n) {
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  Pool& p = pool();
  std::lock_guard<std::mutex> lk(p.run_mu);
  if (n == p.size) return;
  p.stop_all();
  p.start(n);
}

}  // namespace ds
