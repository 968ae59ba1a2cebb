import { native } from '../util/native.ts';

/**
 * The two passes of the router's bucketization (src/serving/bucketize.ts drives them).
 *
 * Count: id k of bag (b, t) has the route code c = codes[t][id], built once per plan: route
 * r = c >>> codeBits[t] (0 is the router's cache, r ≥ 1 a shard piece) and the row inside it
 * c & (2^codeBits[t] − 1) (local[k]). The route's bag slot is routeSlot[g] + b·routeStride[g]
 * with g = routeBase[t] + r (slotOf[k], counts[slot + 1]++). One table-sized read per id,
 * no search and no branch on the destination.
 *
 * The native count prefetches the codes of the ids `prefetchIds` ahead (0: none): they are
 * random reads into a table-sized array. The TypeScript passes ignore it.
 *
 * Place: every id's local row is written at its slot's next cursor in `out`, and its weight,
 * when weighted, at that position + weightShift[slot].
 */
export interface BucketizeKernels {
  count(
    indices: Int32Array, offsets: Int32Array, batch: number, tables: number, codes: Int32Array[], codeBits: Int32Array,
    routeBase: Int32Array, routeSlot: Int32Array, routeStride: Int32Array, slotOf: Int32Array, local: Int32Array, counts: Int32Array,
    prefetchIds: number,
  ): void;
  place(
    offsets: Int32Array, batch: number, tables: number, weights: Float32Array | null, slotOf: Int32Array, local: Int32Array,
    cursor: Int32Array, out: Int32Array, outWeights: Float32Array | null, weightShift: Int32Array,
  ): void;
}

/** Plain typed-array loops: the fallback where the addon is not built, and the test oracle. */
export const bucketizeTs: BucketizeKernels = {
  count(indices, offsets, batch, tables, codes, codeBits, routeBase, routeSlot, routeStride, slotOf, local, counts) {
    for (let b = 0, bag = 0; b < batch; b++) {
      for (let t = 0; t < tables; t++, bag++) {
        const code = codes[t];
        const bits = codeBits[t];
        const mask = 2 ** bits - 1;
        const base = routeBase[t];
        for (let k = offsets[bag], end = offsets[bag + 1]; k < end; k++) {
          const c = code[indices[k]];
          const g = base + (c >>> bits);
          const slot = routeSlot[g] + b * routeStride[g];
          slotOf[k] = slot;
          local[k] = c & mask;
          counts[slot + 1]++;
        }
      }
    }
  },
  place(offsets, batch, tables, weights, slotOf, local, cursor, out, outWeights, weightShift) {
    for (let k = offsets[0], end = offsets[batch * tables]; k < end; k++) {
      const slot = slotOf[k];
      const at = cursor[slot]++;
      out[at] = local[k];
      if (outWeights) outWeights[at + weightShift[slot]] = weights![k];
    }
  },
};

export const bucketizeNative: BucketizeKernels | null = native ? { count: native.bucketizeCount, place: native.bucketizePlace } : null;

/** The fastest passes available here (`npm run bench:kernels` measures both). */
export const bucketizeKernels: BucketizeKernels = bucketizeNative ?? bucketizeTs;
