// Shared plumbing of the N-API entry points: per-environment addon data, the sync/async job runner and the
// exception guard every exported function goes through.
//
// An entry point is written once as a *builder*: it checks every argument (check.h), allocates the result
// arrays on the JavaScript thread, and returns a Job whose compute() touches no JavaScript. The sync variant
// runs compute() at once on the caller's arrays; the *Async variant reads its arguments in ArrayMode::kCopy,
// so that compute() works on copies the job owns (JavaScript may detach the caller's arrays while it runs),
// and runs it on the libuv pool (Napi::AsyncWorker) holding the copies and a reference to the result.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "check.h"
#include "lstm.h"

namespace ds {
namespace binding {

// Per-environment state (one per main thread / worker_thread that loads the addon).
struct AddonData {
  Napi::FunctionReference error_class;  // DeepSentryError, from setErrorClass; empty until then
};
AddonData* addon_data(Napi::Env env);  // nullptr before init
void init_addon_data(Napi::Env env);
// Exports setErrorClass(cls), which sets AddonData::error_class (every addon built from this code has it).
void register_error_class(Napi::Env env, Napi::Object exports);

// Kernel calls hold this shared; setSimdLevel / setThreads hold it exclusively, so that the SIMD level and
// the thread pool never change under a running job (async jobs run on libuv threads, and worker_threads share
// the process-wide kernel configuration).
std::shared_mutex& config_mutex();

struct Job {
  Napi::Value result;                 // returned (sync) or resolved (async); holds the output arrays
  std::shared_ptr<JobArrays> arrays;  // async: the copies compute() reads and writes (ArgReader::arrays())
  std::function<void()> compute;      // pure C++: runs on any thread, touches no JavaScript
};
// Reads the arguments through `r` (ArrayMode::kBorrow for the sync form, kCopy for the async one).
using JobBuilder = Job (*)(ArgReader& r);

Napi::Value run_sync(Napi::Env env, Job& job);
Napi::Value run_async(Napi::Env env, Job&& job, const char* fn);

// Runs `body`, turning C++ failures that are not already JavaScript errors into DeepSentryErrors
// (std::bad_alloc → DS_OUT_OF_RANGE "out of memory"), so that no exception escapes as a crash.
Napi::Value guarded(Napi::Env env, const char* fn, const std::function<Napi::Value()>& body);

// The pair of exported functions for one builder: NAME and NAMEAsync. `build` is any callable
// Job(ArgReader&) (a JobBuilder, or a lambda over an object's state: binding_predict.cpp).
template <class Builder>
Napi::Value call_sync(const Napi::CallbackInfo& info, const char* fn, Builder&& build) {
  return guarded(info.Env(), fn, [&]() {
    ArgReader r = ArgReader::from_info(info, fn, ArrayMode::kBorrow);
    Job job = build(r);
    return run_sync(info.Env(), job);
  });
}
template <class Builder>
Napi::Value call_async(const Napi::CallbackInfo& info, const char* fn, Builder&& build) {
  // Everything is checked before queueing; a bad argument becomes a rejected promise (never a synchronous
  // throw), so that callers using await see one failure path.
  Napi::Env env = info.Env();
  try {
    return guarded(env, fn, [&]() {
      ArgReader r = ArgReader::from_info(info, fn, ArrayMode::kCopy);
      Job job = build(r);
      // The precision tier is the call's, like its arrays: a setPrecision before the job starts does not reach it.
      job.compute = [p = precision_active(), compute = std::move(job.compute)]() {
        PrecisionScope scope(p);
        compute();
      };
      return run_async(env, std::move(job), fn);
    });
  } catch (const Napi::Error& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(e.Value());
    return deferred.Promise();
  }
}
template <JobBuilder Build>
Napi::Value sync_entry(const Napi::CallbackInfo& info, const char* fn) {
  return call_sync(info, fn, Build);
}
template <JobBuilder Build>
Napi::Value async_entry(const Napi::CallbackInfo& info, const char* fn) {
  return call_async(info, fn, Build);
}

// The whole call's allocation (outputs, workspace, the kernels' scratch) must fit the per-call budget
// (kMaxCallBytes); counts are in floats and each was checked against kMaxElements already.
void check_budget(ArgReader& r, std::initializer_list<int64_t> float_counts);
// Index arrays (lengths, token ids) decide which memory the kernels touch, so they are copied before they
// are checked: JavaScript could change the caller's array afterwards (a getter read later in the call), and
// an unchecked index would be an out-of-bounds access. They are small (B or B*T ints); the float data of a
// sync call is never copied.
using Indices = std::shared_ptr<const std::vector<int32_t>>;
// The optional `lengths` field: [batch] int32, each in [0, steps]; null when absent.
Indices read_lengths(ArgReader& r, int64_t batch, int64_t steps);
// A new zero-filled Float32Array of `length` elements, set as out[key]; returns where the kernels write it.
float* add_output(Napi::Env env, Napi::Object out, const char* key, int64_t length);

// Exports NAME and NAMEAsync for one builder.
template <JobBuilder Build>
void export_pair(Napi::Env env, Napi::Object exports, const char* name, const char* async_name) {
  exports.Set(name, Napi::Function::New(
                        env, [name](const Napi::CallbackInfo& info) { return sync_entry<Build>(info, name); }, name));
  exports.Set(async_name,
              Napi::Function::New(
                  env, [async_name](const Napi::CallbackInfo& info) { return async_entry<Build>(info, async_name); },
                  async_name));
}

// Registration lists, one per binding_*.cpp.
void register_runtime(Napi::Env env, Napi::Object exports);
void register_lstm(Napi::Env env, Napi::Object exports);
void register_dense(Napi::Env env, Napi::Object exports);
void register_adam(Napi::Env env, Napi::Object exports);
void register_predict(Napi::Env env, Napi::Object exports);

}  // namespace binding
}  // namespace ds
