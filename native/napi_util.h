// Argument helpers shared by the addon's kernels.
#pragma once
#include <node_api.h>
#include <cstddef>
#include <cstdint>

namespace shardwise {

struct F32 { float* data = nullptr; size_t length = 0; };
struct I32 { int32_t* data = nullptr; size_t length = 0; };
struct U8 { uint8_t* data = nullptr; size_t length = 0; };

inline bool typedArray(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, data, &buffer, &offset) != napi_ok) return false;
  return type == want;
}

inline bool i32(napi_env env, napi_value v, I32* out) { return typedArray(env, v, napi_int32_array, (void**)&out->data, &out->length); }
inline bool f32(napi_env env, napi_value v, F32* out) { return typedArray(env, v, napi_float32_array, (void**)&out->data, &out->length); }
inline bool u8(napi_env env, napi_value v, U8* out) { return typedArray(env, v, napi_uint8_array, (void**)&out->data, &out->length); }

inline bool isNull(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_null || t == napi_undefined;
}

// Reads exactly N arguments; false when the call passed another count.
template <size_t N>
bool args(napi_env env, napi_callback_info info, napi_value (&a)[N]) {
  size_t argc = N;
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  return argc == N;
}

inline int64_t toInt(napi_env env, napi_value v) {
  int64_t out = 0;
  napi_get_value_int64(env, v, &out);
  return out;
}

// The kernels, registered by addon.cc.
napi_value EmbeddingBag(napi_env env, napi_callback_info info);
napi_value AdviseHugePages(napi_env env, napi_callback_info info);
napi_value BucketizeCount(napi_env env, napi_callback_info info);
napi_value BucketizePlace(napi_env env, napi_callback_info info);
napi_value MapFile(napi_env env, napi_callback_info info);
napi_value StampRows(napi_env env, napi_callback_info info);

}  // namespace shardwise
