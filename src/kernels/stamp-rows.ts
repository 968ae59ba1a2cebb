import { native } from '../util/native.ts';

/**
 * Marks the rows a request touched, for a shard's memory-utility meter. Bag j
 * (0 ≤ j < numBags) holds ids offsets[j]..offsets[j+1] of piece j % pieces. With
 * sampleShift s, only one row in every 2^s is tracked, the one at position 2^(s-1) of its block
 * (id & (2^s - 1) = 2^(s-1); every row when s = 0), at stamp[pieceBase[piece] + (id >> s)];
 * each tracked id sets its stamp to `window`. Returns how many tracked rows were not stamped
 * with `window` before (first touched in this window). A tracked row outside the stamp array
 * throws.
 */
export type StampRowsKernel = (
  stamp: Uint8Array, pieceBase: Int32Array, window: number, ids: Int32Array, offsets: Int32Array, numBags: number, pieces: number, sampleShift: number,
) => number;

/** The position inside each block of 2^sampleShift rows whose row is tracked (the middle; 0 when every row is). */
export const trackedPosition = (sampleShift: number): number => (sampleShift === 0 ? 0 : 1 << (sampleShift - 1));

/** Plain typed-array loops: the fallback where the addon is not built, and the test oracle. */
export const stampRowsTs: StampRowsKernel = (stamp, pieceBase, window, ids, offsets, numBags, pieces, sampleShift) => {
  const mask = (1 << sampleShift) - 1;
  const tracked = trackedPosition(sampleShift);
  let touched = 0;
  for (let j = 0; j < numBags; j++) {
    const base = pieceBase[j % pieces];
    for (let k = offsets[j], end = offsets[j + 1]; k < end; k++) {
      const id = ids[k];
      if ((id & mask) !== tracked) continue;
      const at = base + (id >> sampleShift);
      if (!(at >= 0 && at < stamp.length)) throw new RangeError(`stampRows: row ${id} outside the stamp array`);
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
