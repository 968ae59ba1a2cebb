import { native } from '../util/native.ts';

/**
 * Marks the rows a request touched, for a shard's memory-utility meter: for bag b
 * (0 ≤ b < numBags) at bagStart + b·bagStride, every id in offsets[bag]..offsets[bag+1] sets
 * stamp[stampStart + id] to `window`. Returns how many of those rows were not stamped with
 * `window` before (rows first touched in this window). A row outside the stamp array throws.
 */
export type StampRowsKernel = (
  stamp: Uint8Array, stampStart: number, window: number, ids: Int32Array, offsets: Int32Array, numBags: number, bagStart: number, bagStride: number,
) => number;

/** Plain typed-array loops: the fallback where the addon is not built, and the test oracle. */
export const stampRowsTs: StampRowsKernel = (stamp, stampStart, window, ids, offsets, numBags, bagStart, bagStride) => {
  let touched = 0;
  for (let b = 0; b < numBags; b++) {
    const bag = bagStart + b * bagStride;
    for (let k = offsets[bag], end = offsets[bag + 1]; k < end; k++) {
      const at = stampStart + ids[k];
      if (!(at >= 0 && at < stamp.length)) throw new RangeError(`stampRows: row ${ids[k]} outside the stamp array`);
      if (stamp[at] !== window) {
        stamp[at] = window;
        touched++;
      }
    }
  }
  return touched;
};

export const stampRowsNative: StampRowsKernel | null = native ? native.stampRows : null;

/** The fastest kernel available here. */
export const stampRows: StampRowsKernel = stampRowsNative ?? stampRowsTs;
