// The router's bucketization in two passes (ElasticRec Fig. 11): look each id's route code
// up (destination: the router's cache or a shard piece, and the row inside it), and lay each
// destination's bags out as CSR. Semantics match src/kernels/bucketize.ts exactly; that file
// is the fallback and oracle. Every index is checked, so a bad argument throws instead of
// writing outside an array.
#include "napi_util.h"
#include <vector>

namespace shardwise {
namespace {

napi_value fail(napi_env env, const char* message) {
  napi_throw_range_error(env, "SW_NATIVE", message);
  return nullptr;
}

}  // namespace

// bucketizeCount(indices, offsets, batch, tables, codes[], codeBits, routeBase, routeSlot,
//                routeStride, slotOf, local, counts, prefetchIds)
napi_value BucketizeCount(napi_env env, napi_callback_info info) {
  napi_value a[13];
  if (!args(env, info, a)) return fail(env, "bucketizeCount takes 13 arguments");
  I32 indices, offsets, codeBits, routeBase, routeSlot, routeStride, slotOf, local, counts;
  if (!i32(env, a[0], &indices) || !i32(env, a[1], &offsets) || !i32(env, a[5], &codeBits) || !i32(env, a[6], &routeBase) ||
      !i32(env, a[7], &routeSlot) || !i32(env, a[8], &routeStride) || !i32(env, a[9], &slotOf) || !i32(env, a[10], &local) ||
      !i32(env, a[11], &counts)) {
    return fail(env, "bucketizeCount: expected Int32Array arguments");
  }
  const int64_t B = toInt(env, a[2]), T = toInt(env, a[3]), prefetchIds = toInt(env, a[12]);
  const int64_t bags = B * T;
  if (B < 0 || T < 0 || static_cast<int64_t>(offsets.length) < bags + 1 || static_cast<int64_t>(codeBits.length) < T ||
      static_cast<int64_t>(routeBase.length) < T || routeStride.length < routeSlot.length || slotOf.length < indices.length ||
      local.length < indices.length) {
    return fail(env, "bucketizeCount: an array is shorter than the batch needs");
  }
  std::vector<I32> codes(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; t++) {
    napi_value v;
    if (napi_get_element(env, a[4], static_cast<uint32_t>(t), &v) != napi_ok || !i32(env, v, &codes[t])) {
      return fail(env, "bucketizeCount: codes must hold one Int32Array per table");
    }
  }
  const int64_t routes = static_cast<int64_t>(routeSlot.length), slots = static_cast<int64_t>(counts.length) - 1;
  for (int64_t b = 0, bag = 0; b < B; b++) {
    for (int64_t t = 0; t < T; t++, bag++) {
      const I32 code = codes[t];
      const int64_t rows = static_cast<int64_t>(code.length);
      const int32_t bits = codeBits.data[t];
      if (bits < 1 || bits > 31) return fail(env, "bucketizeCount: code bits outside 1..31");
      const uint32_t mask = (1u << bits) - 1;
      const int64_t base = routeBase.data[t];
      const int64_t s0 = offsets.data[bag], e0 = offsets.data[bag + 1];
      if (s0 < 0 || e0 < s0 || e0 > static_cast<int64_t>(indices.length)) return fail(env, "bucketizeCount: offsets outside the indices");
      for (int64_t k = s0; k < e0; k++) {
        // Code reads are random over a table-sized array (80 MB at 20M rows): keep several
        // cache misses in flight instead of waiting on each.
        if (prefetchIds > 0 && k + prefetchIds < e0) {
          const int64_t ahead = indices.data[k + prefetchIds];
          if (ahead >= 0 && ahead < rows) __builtin_prefetch(code.data + ahead, 0, 3);
        }
        const int64_t id = indices.data[k];
        if (id < 0 || id >= rows) return fail(env, "bucketizeCount: id outside its table");
        const uint32_t c = static_cast<uint32_t>(code.data[id]);
        const int64_t g = base + (c >> bits);
        if (g < 0 || g >= routes) return fail(env, "bucketizeCount: route code outside the routes");
        const int64_t slot = routeSlot.data[g] + b * routeStride.data[g];
        if (slot < 0 || slot >= slots) return fail(env, "bucketizeCount: bag slot outside the counts");
        slotOf.data[k] = static_cast<int32_t>(slot);
        local.data[k] = static_cast<int32_t>(c & mask);
        counts.data[slot + 1]++;
      }
    }
  }
  return nullptr;
}

// bucketizePlace(offsets, batch, tables, weights|null, slotOf, local, cursor, out, outWeights|null, weightShift)
napi_value BucketizePlace(napi_env env, napi_callback_info info) {
  napi_value a[10];
  if (!args(env, info, a)) return fail(env, "bucketizePlace takes 10 arguments");
  I32 offsets, slotOf, local, cursor, out, weightShift;
  F32 weights, outWeights;
  const bool weighted = !isNull(env, a[3]);
  if (!i32(env, a[0], &offsets) || !i32(env, a[4], &slotOf) || !i32(env, a[5], &local) || !i32(env, a[6], &cursor) || !i32(env, a[7], &out) ||
      (weighted && (!f32(env, a[3], &weights) || !f32(env, a[8], &outWeights) || !i32(env, a[9], &weightShift)))) {
    return fail(env, "bucketizePlace: expected Int32Array ids and Float32Array weights");
  }
  const int64_t bags = toInt(env, a[1]) * toInt(env, a[2]);
  if (bags < 0 || static_cast<int64_t>(offsets.length) < bags + 1) return fail(env, "bucketizePlace: offsets shorter than the batch");
  const int64_t s0 = offsets.data[0], e0 = offsets.data[bags];
  if (s0 < 0 || e0 < s0 || e0 > static_cast<int64_t>(slotOf.length) || e0 > static_cast<int64_t>(local.length) ||
      (weighted && e0 > static_cast<int64_t>(weights.length))) {
    return fail(env, "bucketizePlace: offsets outside the ids");
  }
  for (int64_t k = s0; k < e0; k++) {
    const int64_t slot = slotOf.data[k];
    if (slot < 0 || slot >= static_cast<int64_t>(cursor.length) || (weighted && slot >= static_cast<int64_t>(weightShift.length))) {
      return fail(env, "bucketizePlace: bag slot outside the cursors");
    }
    const int64_t at = cursor.data[slot]++;
    if (at < 0 || at >= static_cast<int64_t>(out.length)) return fail(env, "bucketizePlace: cursor outside the output");
    out.data[at] = local.data[k];
    if (weighted) {
      const int64_t wat = at + weightShift.data[slot];
      if (wat < 0 || wat >= static_cast<int64_t>(outWeights.length)) return fail(env, "bucketizePlace: weight outside the output");
      outWeights.data[wat] = weights.data[k];
    }
  }
  return nullptr;
}

}  // namespace shardwise
