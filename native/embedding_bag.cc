// Embedding-bag gather + pool: the one kernel shardwise runs natively. A gather is bound by
// memory latency (each row is a random DRAM access), so the loop keeps PREFETCH_ROWS rows in
// flight ahead of the one being summed, following the lookups across bag boundaries.
// Semantics match src/kernels/embedding-bag.ts exactly; that file is the fallback and oracle.
#include "napi_util.h"
#include <cstring>
#include <sys/mman.h>

namespace shardwise {
namespace {

constexpr int64_t PREFETCH_ROWS = 16;
constexpr size_t CACHE_LINE = 64;

inline void prefetchRow(const float* row, size_t rowBytes) {
  const char* p = reinterpret_cast<const char*>(row);
  for (size_t b = 0; b < rowBytes; b += CACHE_LINE) __builtin_prefetch(p + b, 0, 3);
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

struct BagArgs {
  F32 table, out, weights;
  I32 indices, offsets;
  bool hasWeights, mean;
  int64_t dim, rows, numBags, bagStart, bagStride, outStart, outStride;
};

// Pools every bag. D > 0 fixes the row width at compile time so the bag's running sum lives
// in vector registers for the whole bag (FBGEMM does the same by JIT); D = 0 is any width.
template <int D>
const char* poolBags(const BagArgs& a, Cursor& ahead) {
  const int64_t dim = D > 0 ? D : a.dim;
  const size_t rowBytes = static_cast<size_t>(dim) * sizeof(float);
  float acc[D > 0 ? D : 1];
  for (int64_t b = 0; b < a.numBags; b++) {
    const int64_t bag = a.bagStart + b * a.bagStride;
    const int64_t s = a.offsets.data[bag], e = a.offsets.data[bag + 1];
    float* __restrict o = a.out.data + a.outStart + b * a.outStride;
    float* __restrict sum = D > 0 ? acc : o;
    for (int64_t j = 0; j < dim; j++) sum[j] = 0.0f;
    if (s < 0 || e < s || e > static_cast<int64_t>(a.indices.length) || (a.hasWeights && e > static_cast<int64_t>(a.weights.length))) {
      return "embeddingBag: offsets outside the indices array";
    }
    for (int64_t k = s; k < e; k++) {
      if (ahead.valid()) {
        const int32_t pid = a.indices.data[ahead.k];
        if (pid >= 0 && pid < a.rows) prefetchRow(a.table.data + static_cast<int64_t>(pid) * dim, rowBytes);
        ahead.k++;
        ahead.advance();
      }
      const int32_t id = a.indices.data[k];
      if (id < 0 || id >= a.rows) return "embeddingBag: id outside the table";
      const float* __restrict r = a.table.data + static_cast<int64_t>(id) * dim;
      const float w = a.hasWeights ? a.weights.data[k] : 1.0f;
      for (int64_t j = 0; j < dim; j++) sum[j] += w * r[j];
    }
    const float scale = a.mean && e > s ? 1.0f / static_cast<float>(e - s) : 1.0f;
    for (int64_t j = 0; j < dim; j++) o[j] = sum[j] * scale;
  }
  return nullptr;
}

}  // namespace

// embeddingBag(table, dim, indices, offsets, weights|null, mean, numBags, bagStart, bagStride,
//              out, outStart, outStride)
napi_value EmbeddingBag(napi_env env, napi_callback_info info) {
  napi_value a[12];
  if (!args(env, info, a)) {
    napi_throw_type_error(env, "SW_NATIVE", "embeddingBag takes 12 arguments");
    return nullptr;
  }
  F32 table, out, weights;
  I32 indices, offsets;
  const bool hasWeights = !isNull(env, a[4]);
  if (!f32(env, a[0], &table) || !i32(env, a[2], &indices) || !i32(env, a[3], &offsets) || (hasWeights && !f32(env, a[4], &weights)) ||
      !f32(env, a[9], &out)) {
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
  const BagArgs args{table, out, weights, indices, offsets, hasWeights, mean, dim, rows, numBags, bagStart, bagStride, outStart, outStride};
  Cursor ahead{offsets.data, numBags, bagStart, bagStride};
  ahead.begin();
  for (int64_t i = 0; i < PREFETCH_ROWS && ahead.valid(); i++) {
    const int32_t id = indices.data[ahead.k];
    if (id >= 0 && id < rows) prefetchRow(table.data + static_cast<int64_t>(id) * dim, rowBytes);
    ahead.k++;
    ahead.advance();
  }

  const char* error = nullptr;
  switch (dim) {
    case 16: error = poolBags<16>(args, ahead); break;
    case 32: error = poolBags<32>(args, ahead); break;
    case 64: error = poolBags<64>(args, ahead); break;
    case 128: error = poolBags<128>(args, ahead); break;
    case 256: error = poolBags<256>(args, ahead); break;
    default: error = poolBags<0>(args, ahead); break;
  }
  if (error) napi_throw_range_error(env, "SW_NATIVE", error);
  return nullptr;
}

// adviseHugePages(array): asks the kernel to back the array's 2 MiB-aligned interior with
// transparent huge pages. Random row gathers over a big table miss the TLB on nearly every
// row with 4 KiB pages; with 2 MiB pages the page walks mostly vanish. Call it before the
// memory is first touched (the pages are chosen at first fault). Returns the bytes advised.
napi_value AdviseHugePages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  napi_get_cb_info(env, info, &argc, a, nullptr, nullptr);
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  napi_value result;
  if (argc < 1 || napi_get_typedarray_info(env, a[0], &type, &length, &data, &buffer, &offset) != napi_ok) {
    napi_throw_type_error(env, "SW_NATIVE", "adviseHugePages takes a typed array");
    return nullptr;
  }
  size_t bytes = 0;
  napi_get_arraybuffer_info(env, buffer, nullptr, &bytes);
  constexpr uintptr_t HUGE = 2u << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + HUGE - 1) & ~(HUGE - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes - offset) & ~(HUGE - 1);
  double advised = 0;
#ifdef MADV_HUGEPAGE
  if (end > begin && madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0) advised = static_cast<double>(end - begin);
#endif
  napi_create_double(env, advised, &result);
  return result;
}

}  // namespace shardwise
