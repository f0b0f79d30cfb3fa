// Implementation of binding_common.h: addon data, the job runner and the exception guard.
#include "binding_common.h"

#include <new>
#include <string>

#include "check.h"

namespace ds {
namespace binding {

AddonData* addon_data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

void init_addon_data(Napi::Env env) { env.SetInstanceData(new AddonData()); }

std::shared_mutex& config_mutex() {
  static std::shared_mutex m;
  return m;
}

Napi::Value run_sync(Napi::Env env, Job& job) {
  (void)env;
  std::shared_lock<std::shared_mutex> lock(config_mutex());
  job.compute();
  return job.result;
}

namespace {

// Runs one Job on the libuv pool. The references keep the input arrays (and so their ArrayBuffers) and the
// result object (which holds the output arrays) alive until the promise settles, whatever the caller drops.
//
// Completion uses raw napi calls whose failures are ignored: when a worker_thread is terminated with jobs in
// flight, its environment can no longer run JavaScript, every promise call fails, and a C++ exception from
// that failure would escape node-addon-api's completion callback and abort the whole process. There is no one
// left to deliver the result to, so the job is simply dropped.
class JobWorker : public Napi::AsyncWorker {
 public:
  JobWorker(Napi::Env env, Job&& job, const char* fn)
      : Napi::AsyncWorker(env, fn), fn_(fn), compute_(std::move(job.compute)) {
    if (napi_create_promise(env, &deferred_, &promise_) != napi_ok) throw Napi::Error::New(env);
    result_ = Napi::Persistent(job.result);
    inputs_.reserve(job.inputs.size());
    for (Napi::Value v : job.inputs) {
      Input in;
      in.ref = Napi::Persistent(v);
      napi_get_typedarray_info(env, v, nullptr, &in.length, &in.data, nullptr, nullptr);
      inputs_.push_back(std::move(in));
    }
  }
  Napi::Value promise() { return Napi::Value(Env(), promise_); }

 protected:
  void Execute() override {
    try {
      std::shared_lock<std::shared_mutex> lock(config_mutex());
      compute_();
    } catch (const std::bad_alloc&) {
      code_ = kOutOfRange;
      error_ = std::string(fn_) + ": out of memory";
    } catch (const std::exception& e) {
      error_ = std::string(fn_) + ": " + e.what();
    } catch (...) {
      error_ = std::string(fn_) + ": the kernel failed with an unknown native exception";
    }
  }
  void OnOK() override {
    napi_env env = Env();
    if (!error_.empty()) return reject(error_);
    // A caller that detached an input while the job ran (ArrayBuffer.prototype.transfer, postMessage with a
    // transfer list) raced the kernels: the result cannot be trusted, so it is not delivered.
    for (Input& in : inputs_) {
      size_t len = 0;
      void* data = nullptr;
      if (napi_get_typedarray_info(env, in.ref.Value(), nullptr, &len, &data, nullptr, nullptr) != napi_ok ||
          data != in.data || len != in.length) {
        code_ = kInvalidArgument;
        return reject(std::string(fn_) +
                      ": an input array was detached while the job was running; the result was discarded");
      }
    }
    napi_value result = nullptr;
    if (napi_get_reference_value(env, result_, &result) == napi_ok && result != nullptr) {
      napi_resolve_deferred(env, deferred_, result);
    }
  }
  void OnError(const Napi::Error&) override {}  // unused: Execute never calls SetError

 private:
  void reject(const std::string& message) {
    napi_value err = make_error_value(Env(), code_, message);
    if (err != nullptr) napi_reject_deferred(Env(), deferred_, err);
  }
  struct Input {
    Napi::Reference<Napi::Value> ref;
    void* data = nullptr;
    size_t length = 0;
  };
  const char* fn_;
  const char* code_ = kInvalidArgument;
  std::string error_;
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  std::function<void()> compute_;
  Napi::Reference<Napi::Value> result_;
  std::vector<Input> inputs_;
};

}  // namespace

Napi::Value run_async(Napi::Env env, Job&& job, const char* fn) {
  auto* worker = new JobWorker(env, std::move(job), fn);  // deletes itself when done
  Napi::Value p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value guarded(Napi::Env env, const char* fn, const std::function<Napi::Value()>& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;  // already a JavaScript error (ours, or one a getter threw: the first error wins)
  } catch (const std::bad_alloc&) {
    fail(env, kOutOfRange, std::string(fn) + ": out of memory");
  } catch (const std::exception& e) {
    fail(env, kInvalidArgument, std::string(fn) + ": " + e.what());
  } catch (...) {
    fail(env, kInvalidArgument, std::string(fn) + ": the kernel failed with an unknown native exception");
  }
}

}  // namespace binding
}  // namespace ds
