// Row stamping for a shard's memory-utility meter (src/serving/utility-meter.ts): marks the
// sampled rows a request touched with the current window's number and counts the ones it
// marked first. One call per request (every piece's bags), so a shard pays one N-API crossing,
// not one per table. Semantics match src/kernels/stamp-rows.ts, the fallback and oracle.
#include "napi_util.h"

namespace shardwise {

// stampRows(stamp, pieceBase, window, ids, offsets, numBags, pieces, sampleShift) -> rows newly stamped
napi_value StampRows(napi_env env, napi_callback_info info) {
  napi_value a[8];
  if (!args(env, info, a)) {
    napi_throw_type_error(env, "SW_NATIVE", "stampRows takes 8 arguments");
    return nullptr;
  }
  U8 stamp;
  I32 pieceBase, ids, offsets;
  if (!u8(env, a[0], &stamp) || !i32(env, a[1], &pieceBase) || !i32(env, a[3], &ids) || !i32(env, a[4], &offsets)) {
    napi_throw_type_error(env, "SW_NATIVE", "stampRows: expected a Uint8Array stamp and Int32Array pieceBase/ids/offsets");
    return nullptr;
  }
  const uint8_t window = static_cast<uint8_t>(toInt(env, a[2]));
  const int64_t numBags = toInt(env, a[5]), pieces = toInt(env, a[6]), shift = toInt(env, a[7]);
  if (pieces < 1 || static_cast<size_t>(pieces) > pieceBase.length || shift < 0 || shift > 30) {
    napi_throw_range_error(env, "SW_NATIVE", "stampRows: pieces outside pieceBase, or sampleShift outside 0..30");
    return nullptr;
  }
  if (numBags < 0 || static_cast<size_t>(numBags) + 1 > offsets.length) {
    napi_throw_range_error(env, "SW_NATIVE", "stampRows: bags outside the offsets array");
    return nullptr;
  }
  const int32_t mask = static_cast<int32_t>((1u << shift) - 1);
  // trackedPosition() in src/kernels/stamp-rows.ts: the middle of each block.
  const int32_t tracked = shift == 0 ? 0 : static_cast<int32_t>(1u << (shift - 1));
  const int64_t n = static_cast<int64_t>(stamp.length);
  int64_t touched = 0;
  // Sampled, the tracked ids of a run of lookups are first gathered branch-free (one in 2^s
  // at random positions would mispredict a branch per lookup), then stamped.
  constexpr int64_t kRun = 256;
  int32_t hits[kRun];
  for (int64_t j = 0; j < numBags; j++) {
    const int64_t base = pieceBase.data[j % pieces];
    const int64_t s = offsets.data[j], e = offsets.data[j + 1];
    if (s < 0 || e < s || e > static_cast<int64_t>(ids.length)) {
      napi_throw_range_error(env, "SW_NATIVE", "stampRows: offsets outside the ids array");
      return nullptr;
    }
    for (int64_t from = s; from < e; from += kRun) {
      const int64_t m = e - from < kRun ? e - from : kRun;
      const int32_t* run = ids.data + from;
      const int32_t* rows = run;
      int64_t count = m;
      if (shift != 0) {
        count = 0;
        for (int64_t i = 0; i < m; i++) {
          hits[count] = run[i] >> shift;
          count += (run[i] & mask) == tracked;
        }
        rows = hits;
      }
      for (int64_t i = 0; i < count; i++) {
        const int64_t at = base + rows[i];
        if (at < 0 || at >= n) {
          napi_throw_range_error(env, "SW_NATIVE", "stampRows: row outside the stamp array");
          return nullptr;
        }
        touched += stamp.data[at] != window;
        stamp.data[at] = window;
      }
    }
  }
  napi_value result;
  napi_create_double(env, static_cast<double>(touched), &result);
  return result;
}

}  // namespace shardwise
