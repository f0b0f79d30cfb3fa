// Implementation of binding_common.h: addon data and setErrorClass, the job runner and the exception guard.
#include "binding_common.h"

#include <cstring>
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

// Runs one Job on the libuv pool. compute() reads and writes only the job's copies (job.arrays), which the
// worker owns; the reference to the result object (which holds the output arrays) keeps it alive until the
// promise settles, whatever the caller drops. Arrays updated in place are written back from their copies in
// OnOK, on the JavaScript thread, all of them or — when JavaScript detached or resized one of them while the
// job ran — none (the job rejects: the caller's memory for it is gone, and a partial update of an optimiser's
// state would be worse than none).
//
// Completion uses raw napi calls whose failures are ignored: when a worker_thread is terminated with jobs in
// flight, its environment can no longer run JavaScript, every promise call fails, and a C++ exception from
// that failure would escape node-addon-api's completion callback and abort the whole process. There is no one
// left to deliver the result to, so the job is simply dropped.
class JobWorker : public Napi::AsyncWorker {
 public:
  JobWorker(Napi::Env env, Job&& job, const char* fn)
      : Napi::AsyncWorker(env, fn), fn_(fn), compute_(std::move(job.compute)), arrays_(std::move(job.arrays)) {
    if (napi_create_promise(env, &deferred_, &promise_) != napi_ok) throw Napi::Error::New(env);
    result_ = Napi::Persistent(job.result);
    if (arrays_) {
      for (JobArrays::InPlace& p : arrays_->in_place) {
        in_place_refs_.push_back(Napi::Persistent(p.array));
        p.array = Napi::Value();  // a handle is only valid during the call: the reference replaces it
      }
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
    if (arrays_ && !write_back(env)) return;
    napi_value result = nullptr;
    if (napi_get_reference_value(env, result_, &result) == napi_ok && result != nullptr) {
      napi_resolve_deferred(env, deferred_, result);
    }
  }
  void OnError(const Napi::Error&) override {}  // unused: Execute never calls SetError

 private:
  // Copies the in-place arrays' results into the caller's arrays if every one still has the memory and length
  // it had at the call; otherwise writes nothing, rejects and returns false.
  bool write_back(napi_env env) {
    std::vector<void*> targets(arrays_->in_place.size(), nullptr);
    for (size_t i = 0; i < targets.size(); i++) {
      const JobArrays::InPlace& p = arrays_->in_place[i];
      napi_value array = nullptr;
      size_t len = 0;
      void* data = nullptr;
      if (napi_get_reference_value(env, in_place_refs_[i], &array) != napi_ok || array == nullptr ||
          napi_get_typedarray_info(env, array, nullptr, &len, &data, nullptr, nullptr) != napi_ok ||
          data != p.source || static_cast<int64_t>(len) != p.length) {
        reject(std::string(fn_) + ": " + p.name +
               " was detached or resized while the job was running; nothing was written (the arrays updated in "
               "place keep the values they had)");
        return false;
      }
      targets[i] = data;
    }
    for (size_t i = 0; i < targets.size(); i++) {
      std::memcpy(targets[i], arrays_->in_place[i].copy, arrays_->in_place[i].bytes);
    }
    return true;
  }
  void reject(const std::string& message) {
    napi_value err = make_error_value(Env(), code_, message);
    if (err != nullptr) napi_reject_deferred(Env(), deferred_, err);
  }
  const char* fn_;
  const char* code_ = kInvalidArgument;
  std::string error_;
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  std::function<void()> compute_;
  std::shared_ptr<JobArrays> arrays_;  // the copies compute_ uses: freed with the worker, after OnOK
  Napi::Reference<Napi::Value> result_;
  std::vector<Napi::Reference<Napi::Value>> in_place_refs_;
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


namespace {
Napi::Value set_error_class(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "setErrorClass", [&]() -> Napi::Value {
    Napi::Value v = info.Length() > 0 ? info[0] : env.Undefined();
    if (!v.IsFunction()) {
      fail(env, kInvalidArgument,
           "setErrorClass: expected cls to be a class (code, message) => Error but received " + describe(v));
    }
    addon_data(env)->error_class = Napi::Persistent(v.As<Napi::Function>());
    return env.Undefined();
  });
}
}  // namespace

void register_error_class(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, set_error_class, "setErrorClass"));
}

void check_budget(ArgReader& r, std::initializer_list<int64_t> float_counts) {
  int64_t total = 0;
  for (int64_t c : float_counts) total += c;
  if (total > kMaxCallBytes / 4) {
    r.fail_msg(kOutOfRange, "this call would allocate " + std::to_string(total * 4 / (1 << 20)) +
                                " MiB (outputs, workspace and scratch); at most " +
                                std::to_string(kMaxCallBytes >> 20) + " MiB is allowed per call");
  }
}

Indices read_lengths(ArgReader& r, int64_t batch, int64_t steps) {
  View<const int32_t> len = r.i32_opt("lengths", batch, "batch");
  if (!len) return nullptr;
  auto copy = std::make_shared<std::vector<int32_t>>(len.data, len.data + len.length);
  for (int64_t b = 0; b < batch; b++) {
    int32_t v = (*copy)[b];
    if (v < 0 || v > steps) {
      r.fail_msg(kOutOfRange, "lengths[" + std::to_string(b) + "] = " + std::to_string(v) + " is outside [0, steps=" +
                                  std::to_string(steps) + "]");
    }
  }
  return copy;
}

float* add_output(Napi::Env env, Napi::Object out, const char* key, int64_t length) {
  OutF32 o = new_f32(env, length);
  out.Set(key, o.array);
  return o.data;
}

}  // namespace binding
}  // namespace ds
