import type { Batch } from '../model/batch.ts';
import type { ShardSpec } from '../plan/types.ts';
import type { LookupRequest } from './messages.ts';

/** Lookups split by destination: one request per shard, plus the ones the router's hot-row cache serves. */
export interface SplitBatch {
  shards: LookupRequest[];
  /** Lookups of rows the router caches: CSR over (sample, table), ids are cache rows. */
  cache: { offsets: Int32Array; ids: Int32Array; weights: Float32Array | null; lookups: number };
}

/**
 * Splits a batch's lookups by shard row range, keeping bag membership and subtracting each
 * range's first row (ElasticRec's bucketization, Fig. 11). A shard's request is CSR over
 * (sample, piece) in sample-major order; a bag with no ids there is empty (a zero partial).
 * Positions below `cacheRows` of a table go to the router's cache instead.
 */
export class Bucketizer {
  /** Per table: piece starts ascending, and for each the shard, the piece index in that shard, its first row. */
  private readonly routes: { starts: Int32Array; shard: Int32Array; piece: Int32Array }[];
  readonly piecesPerShard: number[];

  constructor(private readonly tableCount: number, shards: ShardSpec[], private readonly cacheRows: number) {
    const perTable: { start: number; shard: number; piece: number }[][] = Array.from({ length: tableCount }, () => []);
    shards.forEach((s, si) => s.pieces.forEach((p, pi) => perTable[p.table].push({ start: p.rowStart, shard: si, piece: pi })));
    this.routes = perTable.map((list) => {
      list.sort((a, b) => a.start - b.start);
      return {
        starts: Int32Array.from(list, (r) => r.start),
        shard: Int32Array.from(list, (r) => r.shard),
        piece: Int32Array.from(list, (r) => r.piece),
      };
    });
    this.piecesPerShard = shards.map((s) => s.pieces.length);
  }

  split(batch: Batch): SplitBatch {
    const T = this.tableCount;
    const B = batch.size;
    const { indices, offsets, weights } = batch;
    const n = indices.length;
    const dest = new Int32Array(n); // shard index, or −1 for the cache
    const slot = new Int32Array(n); // bag slot inside the destination's CSR
    const local = new Int32Array(n);
    const shardCounts = this.piecesPerShard.map((p) => new Int32Array(B * p + 1));
    const cacheCounts = new Int32Array(B * T + 1);
    for (let bag = 0; bag < B * T; bag++) {
      const t = bag % T;
      const b = (bag - t) / T;
      const { starts, shard, piece } = this.routes[t];
      for (let k = offsets[bag]; k < offsets[bag + 1]; k++) {
        const pos = indices[k];
        if (pos < this.cacheRows) {
          dest[k] = -1;
          slot[k] = bag;
          local[k] = pos;
          cacheCounts[bag + 1]++;
          continue;
        }
        // Last piece whose start ≤ pos (few pieces per table: binary search is plenty).
        let lo = 0;
        let hi = starts.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (starts[mid] <= pos) lo = mid;
          else hi = mid - 1;
        }
        const s = shard[lo];
        const sl = b * this.piecesPerShard[s] + piece[lo];
        dest[k] = s;
        slot[k] = sl;
        local[k] = pos - starts[lo];
        shardCounts[s][sl + 1]++;
      }
    }
    // Counts → offsets; the same arrays then serve as fill cursors (shifted copies).
    const toOffsets = (c: Int32Array) => {
      for (let i = 1; i < c.length; i++) c[i] += c[i - 1];
      return c;
    };
    const shardOffsets = shardCounts.map(toOffsets);
    const cacheOffsets = toOffsets(cacheCounts);
    const shardIds = shardOffsets.map((o) => new Int32Array(o[o.length - 1]));
    const shardWeights = weights ? shardOffsets.map((o) => new Float32Array(o[o.length - 1])) : null;
    const cacheIds = new Int32Array(cacheOffsets[B * T]);
    const cacheWeights = weights ? new Float32Array(cacheIds.length) : null;
    const shardCursor = shardOffsets.map((o) => o.slice(0, o.length - 1));
    const cacheCursor = cacheOffsets.slice(0, B * T);
    for (let k = 0; k < n; k++) {
      const s = dest[k];
      if (s < 0) {
        const at = cacheCursor[slot[k]]++;
        cacheIds[at] = local[k];
        if (cacheWeights) cacheWeights[at] = weights![k];
      } else {
        const at = shardCursor[s][slot[k]]++;
        shardIds[s][at] = local[k];
        if (shardWeights) shardWeights[s][at] = weights![k];
      }
    }
    return {
      shards: shardOffsets.map((o, s) => ({ batch: B, pieces: this.piecesPerShard[s], offsets: o, ids: shardIds[s], weights: shardWeights?.[s] ?? null })),
      cache: { offsets: cacheOffsets, ids: cacheIds, weights: cacheWeights, lookups: cacheIds.length },
    };
  }
}

/**
 * Adds a shard's partial sums [B, P, dim] into the interaction input [B, 1 + T, dim] at each
 * piece's table slot. `pieceTables[p]` is the table of the shard's piece p.
 */
export function addPartials(vectors: Float32Array, sums: Float32Array, batch: number, pieceTables: number[], tables: number, dim: number): void {
  const P = pieceTables.length;
  const row = (tables + 1) * dim;
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < P; p++) {
      const src = (b * P + p) * dim;
      const dst = b * row + (pieceTables[p] + 1) * dim;
      for (let j = 0; j < dim; j++) vectors[dst + j] += sums[src + j];
    }
  }
}

/** Mean pooling across shards: every partial was a sum, so divide by the whole bag's size. */
export function divideByBagSizes(vectors: Float32Array, offsets: Int32Array, batch: number, tables: number, dim: number): void {
  const row = (tables + 1) * dim;
  for (let bag = 0; bag < batch * tables; bag++) {
    const size = offsets[bag + 1] - offsets[bag];
    if (size <= 1) continue;
    const t = bag % tables;
    const at = ((bag - t) / tables) * row + (t + 1) * dim;
    const inv = Math.fround(1 / size);
    for (let j = 0; j < dim; j++) vectors[at + j] *= inv;
  }
}
