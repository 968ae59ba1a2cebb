import { native } from '../util/native.ts';

/**
 * The two passes of the router's bucketization (src/serving/bucketize.ts drives them).
 *
 * Count: for every id k of bag (b, t), its position is order[t][id] (or the id itself), and
 * a position below `cacheRows` goes to the cache (slotOf[k] = −1, cacheOffsets[bag + 1]++);
 * otherwise the last route of table t starting at or below it names a shard s and piece p,
 * its bag slot is countBase[s] + b·stride[s] + p (slotOf[k], counts[slot + 1]++), and its row
 * inside the piece is position − routeStart (local[k]).
 *
 * The native count prefetches the order entries of the ids `prefetchIds` ahead (0: none): they
 * are random reads into a table-sized permutation. The TypeScript passes ignore it.
 *
 * Place: every id's local row is written at its destination's next cursor (out or cacheIds),
 * and its weight, when weighted, at that position + weightShift[slot] (or into cacheWeights).
 */
export interface BucketizeKernels {
  count(
    indices: Int32Array, offsets: Int32Array, batch: number, tables: number, order: (Int32Array | null)[] | null,
    routeBase: Int32Array, routeStart: Int32Array, routeShard: Int32Array, routePiece: Int32Array, stride: Int32Array,
    countBase: Int32Array, cacheRows: number, slotOf: Int32Array, local: Int32Array, counts: Int32Array, cacheOffsets: Int32Array,
    prefetchIds: number,
  ): void;
  place(
    offsets: Int32Array, batch: number, tables: number, weights: Float32Array | null, slotOf: Int32Array, local: Int32Array,
    cursor: Int32Array, out: Int32Array, outWeights: Float32Array | null, weightShift: Int32Array,
    cacheCursor: Int32Array, cacheIds: Int32Array, cacheWeights: Float32Array | null,
  ): void;
}

/** Plain typed-array loops: the fallback where the addon is not built, and the test oracle. */
export const bucketizeTs: BucketizeKernels = {
  count(indices, offsets, batch, tables, order, routeBase, routeStart, routeShard, routePiece, stride, countBase, cacheRows, slotOf, local, counts, cacheOffsets) {
    for (let b = 0, bag = 0; b < batch; b++) {
      for (let t = 0; t < tables; t++, bag++) {
        const first = routeBase[t];
        const last = routeBase[t + 1] - 1;
        const position = order ? order[t] : null;
        for (let k = offsets[bag], end = offsets[bag + 1]; k < end; k++) {
          const pos = position ? position[indices[k]] : indices[k];
          if (pos < cacheRows) {
            slotOf[k] = -1;
            local[k] = pos;
            cacheOffsets[bag + 1]++;
            continue;
          }
          // The last route whose start ≤ pos, found by counting starts ≤ pos without branches
          // (sign bit of start − pos − 1): ids arrive in random order, and a binary search's
          // mispredicted branches measured 3× slower for the few pieces a table has.
          let r = first - 1;
          for (let j = first; j <= last; j++) r += (routeStart[j] - pos - 1) >>> 31;
          const s = routeShard[r];
          const slot = countBase[s] + b * stride[s] + routePiece[r];
          slotOf[k] = slot;
          local[k] = pos - routeStart[r];
          counts[slot + 1]++;
        }
      }
    }
  },
  place(offsets, batch, tables, weights, slotOf, local, cursor, out, outWeights, weightShift, cacheCursor, cacheIds, cacheWeights) {
    for (let bag = 0; bag < batch * tables; bag++) {
      for (let k = offsets[bag], end = offsets[bag + 1]; k < end; k++) {
        const slot = slotOf[k];
        if (slot < 0) {
          const at = cacheCursor[bag]++;
          cacheIds[at] = local[k];
          if (cacheWeights) cacheWeights[at] = weights![k];
        } else {
          const at = cursor[slot]++;
          out[at] = local[k];
          if (outWeights) outWeights[at + weightShift[slot]] = weights![k];
        }
      }
    }
  },
};

export const bucketizeNative: BucketizeKernels | null = native ? { count: native.bucketizeCount, place: native.bucketizePlace } : null;

/** The fastest passes available here (`npm run bench:kernels` measures both). */
export const bucketizeKernels: BucketizeKernels = bucketizeNative ?? bucketizeTs;
