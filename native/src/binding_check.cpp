// Implementation of check.h: argument reading and the errors it throws.
#include "check.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>

#include "binding_common.h"

namespace ds {
namespace binding {

napi_value make_error_value(napi_env env, const char* code, const std::string& message) {
  napi_value code_str = nullptr, msg_str = nullptr, err = nullptr;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_str) != napi_ok ||
      napi_create_string_utf8(env, message.data(), message.size(), &msg_str) != napi_ok) {
    return nullptr;
  }
  AddonData* data = nullptr;
  napi_get_instance_data(env, reinterpret_cast<void**>(&data));
  if (data != nullptr && !data->error_class.IsEmpty()) {
    // The class's constructor is JavaScript and could itself throw: fall back to a plain Error then.
    napi_value cls = nullptr;
    napi_value argv[2] = {code_str, msg_str};
    if (napi_get_reference_value(env, data->error_class, &cls) == napi_ok && cls != nullptr &&
        napi_new_instance(env, cls, 2, argv, &err) == napi_ok && err != nullptr) {
      return err;
    }
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
  }
  // napi_create_error sets the `code` property itself.
  if (napi_create_error(env, code_str, msg_str, &err) != napi_ok) return nullptr;
  return err;
}

Napi::Error make_error(Napi::Env env, const char* code, const std::string& message) {
  napi_value err = make_error_value(env, code, message);
  if (err == nullptr) return Napi::Error::New(env, message);
  return Napi::Error(env, err);
}

void fail(Napi::Env env, const char* code, const std::string& message) { throw make_error(env, code, message); }

static const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

static std::string number_text(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

std::string describe(Napi::Value v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return std::string("boolean ") + (v.As<Napi::Boolean>().Value() ? "true" : "false");
    case napi_number: return "number " + number_text(v.As<Napi::Number>().DoubleValue());
    case napi_bigint: return "bigint";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_string: {
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "string \"" + s + "\"";
    }
    default: break;
  }
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    std::string name = typed_array_name(ta.TypedArrayType());
    if (ta.ArrayBuffer().IsDetached()) return "detached " + name;
    return name + "(" + std::to_string(ta.ElementLength()) + ")";
  }
  if (v.IsArray()) return "array(" + std::to_string(v.As<Napi::Array>().Length()) + ")";
  if (v.IsArrayBuffer()) return "ArrayBuffer(" + std::to_string(v.As<Napi::ArrayBuffer>().ByteLength()) + " bytes)";
  if (v.IsDataView()) return "DataView";
  if (v.IsPromise()) return "Promise";
  return "object";
}

namespace {
// The product of the factors, or -1 when it overflows 64 bits.
int64_t product_or_overflow(std::initializer_list<int64_t> factors) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (__builtin_mul_overflow(p, f, &p)) return -1;
  }
  return p;
}

[[noreturn]] void fail_product(Napi::Env env, const std::string& where, int64_t p, int64_t limit) {
  fail(env, kOutOfRange,
       where + " is too large" + (p < 0 ? std::string(" (overflows 64 bits)") : " (" + std::to_string(p) + ")") +
           "; at most " + std::to_string(limit) + " is allowed");
}
}  // namespace

int64_t checked_product(Napi::Env env, const std::string& where, std::initializer_list<int64_t> factors,
                        int64_t limit) {
  int64_t p = product_or_overflow(factors);
  if (p < 0 || p > limit) fail_product(env, where, p, limit);
  return p;
}

int64_t checked_product(Napi::Env env, const std::string& fn, const char* what,
                        std::initializer_list<int64_t> factors, int64_t limit) {
  int64_t p = product_or_overflow(factors);
  if (p < 0 || p > limit) fail_product(env, fn + ": " + what, p, limit);
  return p;
}

namespace {
// Every Napi::Value::Is* is a napi_typeof of its own: the readers below take the type once (v.Type()) and
// decide from it, as these calls run for every field of every call.
bool absent(napi_valuetype t) { return t == napi_undefined || t == napi_null; }
// A plain object: not an array, typed array or function (typeof "function" is not napi_object).
bool plain_object(Napi::Value v) { return v.Type() == napi_object && !v.IsArray() && !v.IsTypedArray(); }
}  // namespace

ArgReader ArgReader::from_info(const Napi::CallbackInfo& info, const char* fn, ArrayMode mode) {
  Napi::Env env = info.Env();
  Napi::Value a = info.Length() > 0 ? info[0] : env.Undefined();
  if (!plain_object(a)) {
    fail(env, kInvalidArgument,
         std::string(fn) + ": expected one argument object (see lib/backend/binding.ts) but received " + describe(a));
  }
  return ArgReader(env, fn, a.As<Napi::Object>(), mode);
}

bool ArgReader::has(const char* field) { return !absent(obj_.Get(field).Type()); }

void ArgReader::fail_field(const char* code, const char* field, const std::string& expected, Napi::Value got) {
  fail(env_, code, fn_ + ": expected " + name(field) + " to be " + expected + " but received " + describe(got));
}

void ArgReader::fail_msg(const char* code, const std::string& message) { fail(env_, code, fn_ + ": " + message); }

int64_t ArgReader::integer(const char* field, int64_t min, int64_t max) {
  Napi::Value v = obj_.Get(field);
  // Messages are built only on failure: this runs for every dimension of every call.
  auto expected = [&]() { return "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]"; };
  const napi_valuetype t = v.Type();
  if (absent(t)) fail_field(kInvalidArgument, field, expected() + " (required)", v);
  if (t != napi_number) fail_field(kInvalidArgument, field, expected(), v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) fail_field(kInvalidArgument, field, expected(), v);
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) fail_field(kOutOfRange, field, expected(), v);
  return static_cast<int64_t>(d);
}

int64_t ArgReader::integer_or(const char* field, int64_t def, int64_t min, int64_t max) {
  return has(field) ? integer(field, min, max) : def;
}

double ArgReader::number(const char* field, double min, double max) {
  Napi::Value v = obj_.Get(field);
  auto expected = [&]() { return "a finite number in [" + std::to_string(min) + ", " + std::to_string(max) + "]"; };
  const napi_valuetype t = v.Type();
  if (absent(t)) fail_field(kInvalidArgument, field, expected() + " (required)", v);
  if (t != napi_number) fail_field(kInvalidArgument, field, expected(), v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) fail_field(kInvalidArgument, field, expected(), v);
  if (d < min || d > max) fail_field(kOutOfRange, field, expected(), v);
  return d;
}

double ArgReader::number_or(const char* field, double def, double min, double max) {
  return has(field) ? number(field, min, max) : def;
}

bool ArgReader::boolean_or(const char* field, bool def) {
  Napi::Value v = obj_.Get(field);
  const napi_valuetype t = v.Type();
  if (absent(t)) return def;
  if (t != napi_boolean) fail_field(kInvalidArgument, field, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

std::string ArgReader::choice_or(const char* field, const char* def, std::initializer_list<const char*> allowed) {
  Napi::Value v = obj_.Get(field);
  if (absent(v.Type())) return def;
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    for (const char* a : allowed)
      if (s == a) return s;
  }
  std::string expected;  // "'a', 'b' or 'c'"
  size_t i = 0;
  for (const char* a : allowed) {
    if (i > 0) expected += i + 1 == allowed.size() ? " or " : ", ";
    expected += std::string("'") + a + "'";
    ++i;
  }
  fail_field(kInvalidArgument, field, expected, v);
}

ArgReader ArgReader::object(const char* field) {
  Napi::Value v = obj_.Get(field);
  if (!plain_object(v)) fail_field(kInvalidArgument, field, "an object", v);
  return ArgReader(*this, v.As<Napi::Object>(), name(field) + ".");
}

uint32_t ArgReader::array_length(const char* field, uint32_t min_length, uint32_t max_length) {
  Napi::Value v = obj_.Get(field);
  auto expected = [&]() {
    return "an array of " + std::to_string(min_length) + " to " + std::to_string(max_length) + " elements";
  };
  if (!v.IsArray()) fail_field(kInvalidArgument, field, expected(), v);
  const uint32_t n = v.As<Napi::Array>().Length();
  if (n < min_length || n > max_length) {
    fail(env_, kOutOfRange,
         fn_ + ": expected " + name(field) + " to be " + expected() + " but received an array of " + std::to_string(n));
  }
  return n;
}

ArgReader ArgReader::element(const char* field, uint32_t index) {
  Napi::Value list = obj_.Get(field);
  const std::string path = name(field) + "[" + std::to_string(index) + "]";
  // The array was checked by array_length, but a getter read since may have replaced or shortened it.
  Napi::Value v = list.IsArray() ? list.As<Napi::Array>().Get(index) : env_.Undefined();
  if (!plain_object(v)) fail(env_, kInvalidArgument, fn_ + ": expected " + path + " to be an object but received " + describe(v));
  return ArgReader(*this, v.As<Napi::Object>(), path + ".");
}

template <class T>
View<const T> ArgReader::typed(const char* field, int64_t expected, const char* formula, bool required) {
  constexpr napi_typedarray_type want = std::is_same<T, float>::value ? napi_float32_array : napi_int32_array;
  const char* want_name = typed_array_name(want);
  Napi::Value v = obj_.Get(field);
  auto expectation = [&]() {
    return std::string("a ") + want_name + " of length " + std::to_string(expected) + " (" + formula + ")";
  };
  const napi_valuetype t = v.Type();
  if (absent(t)) {
    if (!required) return {};
    fail_field(kInvalidArgument, field, expectation() + " (required)", v);
  }
  // One napi_get_typedarray_info gives type, length and data (a detached buffer reports length 0, no data).
  bool is_typed = false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (t != napi_object || napi_is_typedarray(env_, v, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env_, v, &type, &length, &data, nullptr, nullptr) != napi_ok || type != want) {
    fail_field(kInvalidArgument, field, expectation(), v);
  }
  const int64_t len = static_cast<int64_t>(length);
  if (len != expected) {
    if (v.As<Napi::TypedArray>().ArrayBuffer().IsDetached()) {
      fail_field(kInvalidArgument, field, expectation() + " (its buffer must not be detached)", v);
    }
    fail_field(kShapeMismatch, field, expectation(), v);
  }
  View<const T> view;
  view.length = len;
  view.data = static_cast<const T*>(data);
  view.source = data;
  view.array = v;
  // A zero-length array may report a null data pointer; the kernels are never called with zero elements
  // (every dimension is >= 1), so a null pointer here only happens for len 0, which cannot match.
  seen_->push_back({v, prefix_, field, data, len});
  if (mode_ == ArrayMode::kCopy) {
    // Default-initialised (not zeroed): every element is overwritten at once. std::bad_alloc becomes
    // DS_OUT_OF_RANGE "out of memory" (guarded()).
    std::shared_ptr<T> copy(new T[static_cast<size_t>(len)], std::default_delete<T[]>());
    std::memcpy(copy.get(), data, static_cast<size_t>(len) * sizeof(T));
    view.data = copy.get();
    arrays_->copies.push_back(std::move(copy));
  }
  return view;
}

View<float> ArgReader::f32_inout(const char* field, int64_t expected, const char* formula) {
  View<const float> c = typed<float>(field, expected, formula, true);
  // A Float32Array's elements are always writable (typed arrays with elements cannot be frozen); in kCopy
  // mode c.data is the job's copy, which is the job's to write.
  View<float> w;
  w.data = const_cast<float*>(c.data);
  w.length = c.length;
  w.source = c.source;
  w.array = c.array;
  if (mode_ == ArrayMode::kCopy) {
    arrays_->in_place.push_back({seen_->back().array, name(field), c.source, c.length, w.data,
                                 static_cast<size_t>(c.length) * sizeof(float)});
  }
  return w;
}

View<float> ArgReader::f32_out_opt(const char* field, int64_t expected, const char* formula) {
  if (!has(field)) return {};
  View<float> w = f32_inout(field, expected, formula);
  seen_->back().output = true;
  return w;
}

View<const float> ArgReader::f32(const char* field, int64_t expected, const char* formula) {
  return typed<float>(field, expected, formula, true);
}
View<const float> ArgReader::f32_opt(const char* field, int64_t expected, const char* formula) {
  return typed<float>(field, expected, formula, false);
}
View<const int32_t> ArgReader::i32(const char* field, int64_t expected, const char* formula) {
  return typed<int32_t>(field, expected, formula, true);
}
View<const int32_t> ArgReader::i32_opt(const char* field, int64_t expected, const char* formula) {
  return typed<int32_t>(field, expected, formula, false);
}

void ArgReader::verify_inputs() {
  for (const Seen& s : *seen_) {
    // napi_get_typedarray_info reports length 0 and no data once the buffer is detached (and works for
    // SharedArrayBuffer-backed arrays, unlike napi_get_arraybuffer_info).
    size_t len = 0;
    void* data = nullptr;
    napi_status st = napi_get_typedarray_info(env_, s.array, nullptr, &len, &data, nullptr, nullptr);
    if (st != napi_ok || data != s.data || static_cast<int64_t>(len) != s.length) {
      fail(env_, kInvalidArgument,
           fn_ + ": " + s.prefix + s.field + " was detached or resized while the arguments were being read (by a getter?)");
    }
  }
  // An output must not share memory with any other array: the kernels would read what they have overwritten.
  for (size_t i = 0; i < seen_->size(); i++) {
    const Seen& o = (*seen_)[i];
    if (!o.output) continue;
    const char* o0 = static_cast<const char*>(o.data);
    const char* o1 = o0 + o.length * 4;
    for (size_t j = 0; j < seen_->size(); j++) {
      const Seen& s = (*seen_)[j];
      const char* s0 = static_cast<const char*>(s.data);
      if (j == i || !(o0 < s0 + s.length * 4 && s0 < o1)) continue;
      fail(env_, kInvalidArgument,
           fn_ + ": " + o.prefix + o.field + " shares memory with " + s.prefix + s.field + "; the call writes " +
               o.prefix + o.field + ", so it must not overlap any other array of the call");
    }
  }
}

OutF32 new_f32(Napi::Env env, int64_t length) {
  // The engine zero-fills new ArrayBuffers, which the kernels rely on for outputs past a sequence's length.
  Napi::Float32Array a = Napi::Float32Array::New(env, static_cast<size_t>(length));
  return {a, a.Data()};
}

}  // namespace binding
}  // namespace ds
