/**
 * A hotness profile: per table, the order of rows by descending access count and the lookup
 * CDF over that order. Sorted position 0 is a table's hottest row; plans cut tables into
 * contiguous ranges of sorted positions.
 */
export interface TableProfile {
  rows: number;
  /** Lookups the profile was measured on (0 for a synthetic profile). */
  lookups: number;
  /**
   * The CDF at knots: `knotCdf[i]` is the share of lookups on sorted positions
   * [0, knotPos[i]). Ascending, from position 0 (share 0) to `rows` (share 1); linear in
   * between. A few thousand knots describe a 20M-row table.
   */
  knotPos: Int32Array;
  knotCdf: Float64Array;
  /** Original id → sorted position; null means the identity (ids already in hotness order). */
  permutation: Int32Array | null;
}

export interface HotnessProfile {
  /** How the profile was made, for reports: "trace t.bin (2000 queries)", "synthetic locality 0.9". */
  source: string;
  tables: TableProfile[];
}

/** Share of a table's lookups on sorted positions [0, pos). */
export function cdfAt(t: TableProfile, pos: number): number {
  const { knotPos, knotCdf } = t;
  if (pos <= 0) return 0;
  if (pos >= t.rows) return 1;
  let lo = 0;
  let hi = knotPos.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (knotPos[mid] <= pos) lo = mid;
    else hi = mid;
  }
  const span = knotPos[hi] - knotPos[lo];
  return knotCdf[lo] + ((knotCdf[hi] - knotCdf[lo]) * (pos - knotPos[lo])) / span;
}
