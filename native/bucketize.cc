// The router's bucketization in two passes (ElasticRec Fig. 11): map each id to its hotness
// position, send it to the router's cache or to the shard piece whose row range holds it,
// and lay each destination's bags out as CSR. Semantics match src/kernels/bucketize.ts
// exactly; that file is the fallback and oracle. Every index is checked, so a bad argument
// throws instead of writing outside an array.
#include "napi_util.h"
#include <vector>

namespace shardwise {
namespace {

napi_value fail(napi_env env, const char* message) {
  napi_throw_range_error(env, "SW_NATIVE", message);
  return nullptr;
}

}  // namespace

// bucketizeCount(indices, offsets, batch, tables, order|null, routeBase, routeStart, routeShard,
//                routePiece, stride, countBase, cacheRows, slotOf, local, counts, cacheOffsets, prefetchIds)
napi_value BucketizeCount(napi_env env, napi_callback_info info) {
  napi_value a[17];
  if (!args(env, info, a)) return fail(env, "bucketizeCount takes 17 arguments");
  I32 indices, offsets, routeBase, routeStart, routeShard, routePiece, stride, countBase, slotOf, local, counts, cacheOffsets;
  if (!i32(env, a[0], &indices) || !i32(env, a[1], &offsets) || !i32(env, a[5], &routeBase) || !i32(env, a[6], &routeStart) ||
      !i32(env, a[7], &routeShard) || !i32(env, a[8], &routePiece) || !i32(env, a[9], &stride) || !i32(env, a[10], &countBase) ||
      !i32(env, a[12], &slotOf) || !i32(env, a[13], &local) || !i32(env, a[14], &counts) || !i32(env, a[15], &cacheOffsets)) {
    return fail(env, "bucketizeCount: expected Int32Array arguments");
  }
  const int64_t B = toInt(env, a[2]), T = toInt(env, a[3]), cacheRows = toInt(env, a[11]), prefetchIds = toInt(env, a[16]);
  const int64_t bags = B * T;
  if (B < 0 || T < 0 || static_cast<int64_t>(offsets.length) < bags + 1 || static_cast<int64_t>(cacheOffsets.length) < bags + 1 ||
      static_cast<int64_t>(routeBase.length) < T + 1 || slotOf.length < indices.length || local.length < indices.length) {
    return fail(env, "bucketizeCount: an array is shorter than the batch needs");
  }
  // Per table, its position permutation (or none: identity order).
  std::vector<I32> order(static_cast<size_t>(T));
  if (!isNull(env, a[4])) {
    for (int64_t t = 0; t < T; t++) {
      napi_value v;
      napi_get_element(env, a[4], static_cast<uint32_t>(t), &v);
      if (!isNull(env, v) && !i32(env, v, &order[t])) return fail(env, "bucketizeCount: order holds a non-Int32Array");
    }
  }
  const int64_t routes = static_cast<int64_t>(routeStart.length), shards = static_cast<int64_t>(stride.length);
  for (int64_t b = 0, bag = 0; b < B; b++) {
    for (int64_t t = 0; t < T; t++, bag++) {
      const int64_t first = routeBase.data[t], last = routeBase.data[t + 1] - 1;
      if (first < 0 || last >= routes) return fail(env, "bucketizeCount: route table out of range");
      const I32 position = order[t];
      const int64_t s0 = offsets.data[bag], e0 = offsets.data[bag + 1];
      if (s0 < 0 || e0 < s0 || e0 > static_cast<int64_t>(indices.length)) return fail(env, "bucketizeCount: offsets outside the indices");
      for (int64_t k = s0; k < e0; k++) {
        // Permutation reads are random over a table-sized array (80 MB at 20M rows): keep
        // several cache misses in flight instead of waiting on each.
        if (position.data && prefetchIds > 0 && k + prefetchIds < e0) {
          const int64_t ahead = indices.data[k + prefetchIds];
          if (ahead >= 0 && ahead < static_cast<int64_t>(position.length)) __builtin_prefetch(position.data + ahead, 0, 3);
        }
        int64_t pos = indices.data[k];
        if (position.data) {
          if (pos < 0 || pos >= static_cast<int64_t>(position.length)) return fail(env, "bucketizeCount: id outside its table's order");
          pos = position.data[pos];
        }
        if (pos < cacheRows) {
          slotOf.data[k] = -1;
          local.data[k] = static_cast<int32_t>(pos);
          cacheOffsets.data[bag + 1]++;
          continue;
        }
        int64_t r = first - 1;
        for (int64_t j = first; j <= last; j++) r += routeStart.data[j] <= pos;
        if (r < first) return fail(env, "bucketizeCount: a position below every piece of its table");
        const int64_t s = routeShard.data[r];
        if (s < 0 || s >= shards || s + 1 >= static_cast<int64_t>(countBase.length)) return fail(env, "bucketizeCount: route to an unknown shard");
        const int64_t slot = countBase.data[s] + b * stride.data[s] + routePiece.data[r];
        if (slot < 0 || slot + 1 >= static_cast<int64_t>(counts.length)) return fail(env, "bucketizeCount: bag slot outside the counts");
        slotOf.data[k] = static_cast<int32_t>(slot);
        local.data[k] = static_cast<int32_t>(pos - routeStart.data[r]);
        counts.data[slot + 1]++;
      }
    }
  }
  return nullptr;
}

// bucketizePlace(offsets, batch, tables, weights|null, slotOf, local, cursor, out, outWeights|null,
//                weightShift, cacheCursor, cacheIds, cacheWeights|null)
napi_value BucketizePlace(napi_env env, napi_callback_info info) {
  napi_value a[13];
  if (!args(env, info, a)) return fail(env, "bucketizePlace takes 13 arguments");
  I32 offsets, slotOf, local, cursor, out, weightShift, cacheCursor, cacheIds;
  F32 weights, outWeights, cacheWeights;
  const bool weighted = !isNull(env, a[3]);
  if (!i32(env, a[0], &offsets) || !i32(env, a[4], &slotOf) || !i32(env, a[5], &local) || !i32(env, a[6], &cursor) || !i32(env, a[7], &out) ||
      !i32(env, a[10], &cacheCursor) || !i32(env, a[11], &cacheIds) ||
      (weighted && (!f32(env, a[3], &weights) || !f32(env, a[8], &outWeights) || !i32(env, a[9], &weightShift) || !f32(env, a[12], &cacheWeights)))) {
    return fail(env, "bucketizePlace: expected Int32Array ids and Float32Array weights");
  }
  const int64_t bags = toInt(env, a[1]) * toInt(env, a[2]);
  if (bags < 0 || static_cast<int64_t>(offsets.length) < bags + 1 || static_cast<int64_t>(cacheCursor.length) < bags) {
    return fail(env, "bucketizePlace: an array is shorter than the batch needs");
  }
  for (int64_t bag = 0; bag < bags; bag++) {
    const int64_t s0 = offsets.data[bag], e0 = offsets.data[bag + 1];
    if (s0 < 0 || e0 < s0 || e0 > static_cast<int64_t>(slotOf.length) || e0 > static_cast<int64_t>(local.length) ||
        (weighted && e0 > static_cast<int64_t>(weights.length))) {
      return fail(env, "bucketizePlace: offsets outside the ids");
    }
    for (int64_t k = s0; k < e0; k++) {
      const int64_t slot = slotOf.data[k];
      if (slot < 0) {
        const int64_t at = cacheCursor.data[bag]++;
        if (at < 0 || at >= static_cast<int64_t>(cacheIds.length) || (weighted && at >= static_cast<int64_t>(cacheWeights.length))) {
          return fail(env, "bucketizePlace: cache cursor outside the cache ids");
        }
        cacheIds.data[at] = local.data[k];
        if (weighted) cacheWeights.data[at] = weights.data[k];
      } else {
        if (slot >= static_cast<int64_t>(cursor.length) || (weighted && slot >= static_cast<int64_t>(weightShift.length))) {
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
    }
  }
  return nullptr;
}

}  // namespace shardwise
