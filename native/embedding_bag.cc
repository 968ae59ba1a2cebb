// Embedding-bag gather + pool: the one kernel shardwise runs natively. A gather is bound by
// memory latency (each row is a random DRAM access), so the loop keeps PREFETCH_ROWS rows in
// flight ahead of the one being summed, following the lookups across bag boundaries.
// Semantics match src/kernels/embedding-bag.ts exactly; that file is the fallback and oracle.
#include <node_api.h>
#include <cstdint>
#include <cstring>

namespace {

constexpr int64_t PREFETCH_ROWS = 12;
constexpr size_t CACHE_LINE = 64;

struct F32 { float* data; size_t length; };
struct I32 { int32_t* data; size_t length; };

bool typedArray(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, data, &buffer, &offset) != napi_ok) return false;
  return type == want;
}

int64_t toInt(napi_env env, napi_value v) {
  int64_t out = 0;
  napi_get_value_int64(env, v, &out);
  return out;
}

inline void prefetchRow(const float* row, size_t rowBytes) {
  const char* p = reinterpret_cast<const char*>(row);
  for (size_t b = 0; b < rowBytes; b += CACHE_LINE) __builtin_prefetch(p + b, 0, 0);
}

// Walks the flattened (bag, lookup) sequence; used to run the prefetch cursor ahead.
struct Cursor {
  const int32_t* offsets;
  int64_t numBags, bagStart, bagStride;
  int64_t bag = 0, k = 0, end = 0;
  void begin() { bag = -1; k = end = 0; advance(); }
  void advance() {
    while (k >= end && ++bag < numBags) {
      const int64_t b = bagStart + bag * bagStride;
      k = offsets[b];
      end = offsets[b + 1];
    }
  }
  bool valid() const { return bag < numBags; }
};

// embeddingBag(table, dim, indices, offsets, weights|null, mean, numBags, bagStart, bagStride,
//              out, outStart, outStride)
napi_value EmbeddingBag(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value a[12];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  if (argc != 12) {
    napi_throw_type_error(env, "SW_NATIVE", "embeddingBag takes 12 arguments");
    return nullptr;
  }
  F32 table{}, out{}, weights{};
  I32 indices{}, offsets{};
  napi_valuetype wtype;
  napi_typeof(env, a[4], &wtype);
  const bool hasWeights = wtype != napi_null && wtype != napi_undefined;
  if (!typedArray(env, a[0], napi_float32_array, (void**)&table.data, &table.length) ||
      !typedArray(env, a[2], napi_int32_array, (void**)&indices.data, &indices.length) ||
      !typedArray(env, a[3], napi_int32_array, (void**)&offsets.data, &offsets.length) ||
      (hasWeights && !typedArray(env, a[4], napi_float32_array, (void**)&weights.data, &weights.length)) ||
      !typedArray(env, a[9], napi_float32_array, (void**)&out.data, &out.length)) {
    napi_throw_type_error(env, "SW_NATIVE", "embeddingBag: expected Float32Array table/weights/out and Int32Array indices/offsets");
    return nullptr;
  }
  const int64_t dim = toInt(env, a[1]);
  bool mean = false;
  napi_get_value_bool(env, a[5], &mean);
  const int64_t numBags = toInt(env, a[6]), bagStart = toInt(env, a[7]), bagStride = toInt(env, a[8]);
  const int64_t outStart = toInt(env, a[10]), outStride = toInt(env, a[11]);
  if (dim <= 0 || numBags < 0) return nullptr;
  const int64_t rows = static_cast<int64_t>(table.length) / dim;

  // Bounds: every bag's offsets, every output row and every id must lie inside its array.
  if (numBags > 0) {
    const int64_t lastBag = bagStart + (numBags - 1) * bagStride;
    const int64_t lastOut = outStart + (numBags - 1) * outStride + dim;
    if (bagStart < 0 || lastBag + 1 > static_cast<int64_t>(offsets.length) - 1 || outStart < 0 || lastOut > static_cast<int64_t>(out.length)) {
      napi_throw_range_error(env, "SW_NATIVE", "embeddingBag: bag or output range outside its array");
      return nullptr;
    }
  }

  const size_t rowBytes = static_cast<size_t>(dim) * sizeof(float);
  Cursor ahead{offsets.data, numBags, bagStart, bagStride};
  ahead.begin();
  for (int64_t i = 0; i < PREFETCH_ROWS && ahead.valid(); i++) {
    const int32_t id = indices.data[ahead.k];
    if (id >= 0 && id < rows) prefetchRow(table.data + static_cast<int64_t>(id) * dim, rowBytes);
    ahead.k++;
    ahead.advance();
  }

  for (int64_t b = 0; b < numBags; b++) {
    const int64_t bag = bagStart + b * bagStride;
    const int64_t s = offsets.data[bag], e = offsets.data[bag + 1];
    float* __restrict o = out.data + outStart + b * outStride;
    std::memset(o, 0, rowBytes);
    if (s < 0 || e < s || e > static_cast<int64_t>(indices.length) || (hasWeights && e > static_cast<int64_t>(weights.length))) {
      napi_throw_range_error(env, "SW_NATIVE", "embeddingBag: offsets outside the indices array");
      return nullptr;
    }
    for (int64_t k = s; k < e; k++) {
      if (ahead.valid()) {
        const int32_t pid = indices.data[ahead.k];
        if (pid >= 0 && pid < rows) prefetchRow(table.data + static_cast<int64_t>(pid) * dim, rowBytes);
        ahead.k++;
        ahead.advance();
      }
      const int32_t id = indices.data[k];
      if (id < 0 || id >= rows) {
        napi_throw_range_error(env, "SW_NATIVE", "embeddingBag: id outside the table");
        return nullptr;
      }
      const float* __restrict r = table.data + static_cast<int64_t>(id) * dim;
      if (hasWeights) {
        const float w = weights.data[k];
        for (int64_t j = 0; j < dim; j++) o[j] += w * r[j];
      } else {
        for (int64_t j = 0; j < dim; j++) o[j] += r[j];
      }
    }
    if (mean && e > s) {
      const float inv = 1.0f / static_cast<float>(e - s);
      for (int64_t j = 0; j < dim; j++) o[j] *= inv;
    }
  }
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "embeddingBag", NAPI_AUTO_LENGTH, EmbeddingBag, nullptr, &fn);
  napi_set_named_property(env, exports, "embeddingBag", fn);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
