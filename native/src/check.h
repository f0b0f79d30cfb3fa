// The N-API boundary's argument checking: every value that crosses from JavaScript into the addon goes
// through an ArgReader, which either returns a value the kernels can trust (a positive integer within limits,
// a typed array of exactly the expected length, a boolean) or throws a DeepSentryError (the class handed over
// by setErrorClass) with a stable code and a message naming the function, the argument, what was expected
// and what was received. Nothing past this layer validates again (native/src/lstm.h trusts its input).
//
// Errors are thrown as C++ exceptions (NAPI_CPP_EXCEPTIONS): node-addon-api rethrows them into JavaScript when
// the callback returns, so a check can fail from any depth without leaking half-built state.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace ds {
namespace binding {

// Codes (lib/errors.ts DeepSentryErrorCode).
constexpr const char* kInvalidArgument = "DS_INVALID_ARGUMENT";  // wrong type or value
constexpr const char* kShapeMismatch = "DS_SHAPE_MISMATCH";      // array length disagrees with the dims
constexpr const char* kOutOfRange = "DS_OUT_OF_RANGE";           // size or index outside what is allowed
constexpr const char* kUnsupported = "DS_UNSUPPORTED";           // this build / CPU lacks it
constexpr const char* kCuda = "DS_CUDA";                         // a CUDA runtime call failed

// Limits. One typed array may hold at most 2^31-1 elements (the kernels index with int64 but tfjs and most
// callers cannot build more), and one call may allocate at most kMaxCallBytes for its outputs, workspace and
// the kernels' scratch: a mistyped dimension must be refused, not turn into a 100 GiB allocation.
constexpr int64_t kMaxElements = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxCallBytes = int64_t{4} << 30;  // 4 GiB

// Builds the error (DeepSentryError when setErrorClass was called, else an Error with a .code property).
Napi::Error make_error(Napi::Env env, const char* code, const std::string& message);
// The same as a raw value, or nullptr when it cannot be built (never throws: usable while an environment
// is shutting down).
napi_value make_error_value(napi_env env, const char* code, const std::string& message);
[[noreturn]] void fail(Napi::Env env, const char* code, const std::string& message);

// "Float32Array(511)", "detached Float32Array", "number NaN", "string \"abc\"", "undefined", "object", ...
std::string describe(Napi::Value v);

// a*b (and a*b*c…) with overflow and limit checks: refuses products above `limit` with DS_OUT_OF_RANGE,
// naming the function and what the product is ("x: batch*steps*inputSize").
int64_t checked_product(Napi::Env env, const std::string& where, std::initializer_list<int64_t> factors,
                        int64_t limit = kMaxElements);
// The same, naming it "fn: what" — the message is built only on failure (this runs on every call).
int64_t checked_product(Napi::Env env, const std::string& fn, const char* what,
                        std::initializer_list<int64_t> factors, int64_t limit = kMaxElements);

// A typed array argument that passed its checks: where the kernels find its elements and how many. For an
// async call `data` is the job's own copy (see JobArrays); `source` is always the caller's memory, for
// identity checks (do two arrays overlap?) only — a job never reads or writes through it.
template <class T>
struct View {
  T* data = nullptr;
  int64_t length = 0;
  const void* source = nullptr;
  napi_value array = nullptr;  // the typed array read (valid during the call; not the copy in kCopy mode)
  explicit operator bool() const { return data != nullptr; }
};

// How an entry point hands its typed arrays to the kernels.
//  * kBorrow (sync calls): pointers into the caller's arrays. No JavaScript runs until the kernels return, so
//    the memory cannot go away under them; no copy.
//  * kCopy (*Async calls): JavaScript keeps running while the job does, and may detach any array it passed
//    (ArrayBuffer.prototype.transfer, structuredClone or postMessage with a transfer list). Its memory then
//    belongs to another ArrayBuffer and is freed when that one is collected; a reference to the typed array
//    or its ArrayBuffer does not keep it, and Node-API has no way to hold an ArrayBuffer's backing store or
//    to make it non-detachable. So every array is copied into memory the job owns, on the JavaScript thread
//    during the call, and the kernels only ever see the copies (JobArrays).
enum class ArrayMode { kBorrow, kCopy };

// What an async job owns of its arguments: the copies its kernels read and write, and the caller's arrays
// that the call updates in place (an optimiser's state), to be written back from their copies when the job
// completes, on the JavaScript thread — and only if every one of them still has the memory and length it had
// at the call; otherwise nothing is written and the job rejects (binding_common.cpp).
struct JobArrays {
  struct InPlace {
    Napi::Value array;    // the caller's typed array (valid during the call; the job keeps a reference)
    std::string name;     // its argument name, for the error message
    const void* source;   // its memory at the call
    int64_t length;       // its length at the call (elements)
    void* copy;           // the job's copy, which the kernels update
    size_t bytes;
  };
  std::vector<std::shared_ptr<void>> copies;
  std::vector<InPlace> in_place;
};

// Reads the fields of one argument object for one entry point. Names in messages are `prefix + field`
// (e.g. "weights.kernel"), so nested objects read through a child reader name their full path.
class ArgReader {
 public:
  ArgReader(Napi::Env env, std::string fn, Napi::Object obj, ArrayMode mode = ArrayMode::kBorrow)
      : env_(env), fn_(std::move(fn)), obj_(obj), mode_(mode) {
    // An entry point reads up to ~16 arrays: no reallocation on the per-call path.
    seen_->reserve(16);
    if (mode_ == ArrayMode::kCopy) arrays_ = std::make_shared<JobArrays>();
  }

  // The single argument of an entry point: must be a plain object.
  static ArgReader from_info(const Napi::CallbackInfo& info, const char* fn, ArrayMode mode = ArrayMode::kBorrow);

  Napi::Env env() const { return env_; }
  const std::string& fn() const { return fn_; }
  std::string name(const char* field) const { return prefix_ + field; }

  bool has(const char* field);  // present and neither undefined nor null
  Napi::Value get(const char* field) { return obj_.Get(field); }

  // An integer in [min, max] (a JavaScript number with an integral value; not NaN/Infinity/bigint/string).
  int64_t integer(const char* field, int64_t min, int64_t max);
  int64_t integer_or(const char* field, int64_t def, int64_t min, int64_t max);
  bool boolean_or(const char* field, bool def);
  // One of the strings `allowed`, or `def` when absent (anything else: DS_INVALID_ARGUMENT listing them).
  std::string choice_or(const char* field, const char* def, std::initializer_list<const char*> allowed);
  // A finite number in [min, max] (a JavaScript number; not NaN/Infinity/bigint/string).
  double number(const char* field, double min, double max);
  double number_or(const char* field, double def, double min, double max);
  ArgReader object(const char* field);  // a required nested object
  // A required array of between min_length and max_length elements: its length. Its elements are read with
  // element(), each a plain object whose fields are named "field[i].name".
  uint32_t array_length(const char* field, uint32_t min_length, uint32_t max_length);
  ArgReader element(const char* field, uint32_t index);

  // A Float32Array / Int32Array of exactly `expected` elements; `formula` explains the expectation in the
  // message ("inputSize*4*hiddenSize"). The array is remembered so that verify_inputs() can notice a getter
  // that detached it while later fields were read; in kCopy mode the view is the job's copy.
  View<const float> f32(const char* field, int64_t expected, const char* formula);
  View<const float> f32_opt(const char* field, int64_t expected, const char* formula);
  View<const int32_t> i32(const char* field, int64_t expected, const char* formula);
  View<const int32_t> i32_opt(const char* field, int64_t expected, const char* formula);
  // A Float32Array the call updates in place (an optimiser's state): the same checks as f32. In kCopy mode
  // the kernels update the job's copy, written back when the job completes (JobArrays).
  View<float> f32_inout(const char* field, int64_t expected, const char* formula);
  // An optional Float32Array the call writes a result into (every element overwritten) instead of a new array,
  // so that a caller repeating a call (a training loop) reuses its memory: f32_inout's checks, and
  // verify_inputs() refuses it when it shares memory with any other array the call reads or writes.
  View<float> f32_out_opt(const char* field, int64_t expected, const char* formula);

  [[noreturn]] void fail_field(const char* code, const char* field, const std::string& expected, Napi::Value got);
  [[noreturn]] void fail_msg(const char* code, const std::string& message);

  // kCopy: the copies of every typed array read so far by this reader and its children (shared), which the
  // job must own; kBorrow: null.
  std::shared_ptr<JobArrays> arrays() const { return arrays_; }
  // Re-reads every remembered array and fails if one was detached or changed since it was checked (a getter
  // or Proxy can run JavaScript between two field reads), or if an output (f32_out_opt) overlaps another array.
  void verify_inputs();

 private:
  struct Seen {
    Napi::Value array;  // a typed array, valid for the current callback
    std::string prefix;  // the reader's prefix ("forward."; short: no allocation) and the field (a string
    const char* field;   // literal): the name is built only for an error message
    const void* data;
    int64_t length;  // elements, 4 bytes each (Float32Array or Int32Array)
    bool output = false;
  };
  // A child reader (object()): shares the parent's lists.
  ArgReader(const ArgReader& parent, Napi::Object obj, std::string prefix)
      : env_(parent.env_), fn_(parent.fn_), obj_(obj), mode_(parent.mode_), prefix_(std::move(prefix)),
        seen_(parent.seen_), arrays_(parent.arrays_) {}
  template <class T>
  View<const T> typed(const char* field, int64_t expected, const char* formula, bool required);

  Napi::Env env_;
  std::string fn_;
  Napi::Object obj_;
  ArrayMode mode_;
  std::string prefix_;
  std::shared_ptr<std::vector<Seen>> seen_ = std::make_shared<std::vector<Seen>>();
  std::shared_ptr<JobArrays> arrays_;  // kCopy only
};

// Output arrays are new Float32Arrays, zero-filled by the engine, written in place by the kernels.
struct OutF32 {
  Napi::Float32Array array;
  float* data;
};
OutF32 new_f32(Napi::Env env, int64_t length);

}  // namespace binding
}  // namespace ds

// Boundary macro: check a condition, else throw a DeepSentryError. `msg` is any expression convertible to
// std::string (build it with std::string / std::to_string so nothing is formatted on the happy path).
#define DS_CHECK(env, cond, code, msg)                                   \
  do {                                                                   \
    if (!(cond)) ::ds::binding::fail((env), (code), (msg));              \
  } while (0)
