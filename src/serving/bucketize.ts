import type { Batch } from '../model/batch.ts';
import type { ShardSpec } from '../plan/types.ts';
import type { LookupRequest } from './messages.ts';
import type { HotnessOrder } from './hotness.ts';

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
 * Ids are first mapped to hotness positions when the plan has an order. Positions below
 * `cacheRows` of a table go to the router's cache instead.
 */
export class Bucketizer {
  /** Per table, its routes (pieces) are `routeBase[t] .. routeBase[t + 1]`, ascending by first row. */
  private readonly routeBase: Int32Array;
  private readonly routeStart: Int32Array;
  private readonly routeShard: Int32Array;
  private readonly routePiece: Int32Array;
  readonly piecesPerShard: number[];

  constructor(
    private readonly tableCount: number,
    shardSpecs: ShardSpec[],
    private readonly cacheRows: number,
    private readonly order: HotnessOrder | null = null,
  ) {
    const perTable: { start: number; shard: number; piece: number }[][] = Array.from({ length: tableCount }, () => []);
    shardSpecs.forEach((s, si) => s.pieces.forEach((p, pi) => perTable[p.table].push({ start: p.rowStart, shard: si, piece: pi })));
    const routes = perTable.flatMap((list) => list.sort((a, b) => a.start - b.start));
    this.routeBase = new Int32Array(tableCount + 1);
    perTable.forEach((list, t) => (this.routeBase[t + 1] = this.routeBase[t] + list.length));
    this.routeStart = Int32Array.from(routes, (r) => r.start);
    this.routeShard = Int32Array.from(routes, (r) => r.shard);
    this.routePiece = Int32Array.from(routes, (r) => r.piece);
    this.piecesPerShard = shardSpecs.map((s) => s.pieces.length);
  }

  /**
   * Two passes over the ids: the first finds each id's destination bag and counts bag sizes,
   * the second writes ids at their CSR positions. All shards' CSRs live in one counts array
   * and one ids array (per-shard regions), so the loops index flat typed arrays.
   */
  split(batch: Batch): SplitBatch {
    const T = this.tableCount;
    const B = batch.size;
    const { indices, offsets, weights } = batch;
    const { routeBase, routeStart, routeShard, routePiece, cacheRows, order } = this;
    const S = this.piecesPerShard.length;
    // Shard s's offsets occupy counts[countBase[s] .. countBase[s] + B·P_s]; its bag (b, p) is slot b·P_s + p.
    const countBase = new Int32Array(S + 1);
    const stride = Int32Array.from(this.piecesPerShard);
    for (let s = 0; s < S; s++) countBase[s + 1] = countBase[s] + B * stride[s] + 1;
    const counts = new Int32Array(countBase[S]);
    const cacheOffsets = new Int32Array(B * T + 1);
    // Per id: its bag's index in `counts` (−1: the cache) and its row inside the destination.
    const slotOf = new Int32Array(indices.length);
    const local = new Int32Array(indices.length);

    for (let b = 0, bag = 0; b < B; b++) {
      for (let t = 0; t < T; t++, bag++) {
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
    // Counts → offsets per region; cursors are absolute positions in the shared ids array.
    const idBase = new Int32Array(S + 1);
    const cursor = new Int32Array(counts.length);
    for (let s = 0; s < S; s++) {
      for (let i = countBase[s] + 1; i < countBase[s + 1]; i++) counts[i] += counts[i - 1];
      idBase[s + 1] = idBase[s] + counts[countBase[s + 1] - 1];
      for (let i = countBase[s]; i < countBase[s + 1]; i++) cursor[i] = idBase[s] + counts[i];
    }
    for (let i = 1; i <= B * T; i++) cacheOffsets[i] += cacheOffsets[i - 1];
    const ids = new Int32Array(idBase[S]);
    const idWeights = weights ? new Float32Array(ids.length) : null;
    const cacheIds = new Int32Array(cacheOffsets[B * T]);
    const cacheWeights = weights ? new Float32Array(cacheIds.length) : null;
    const cacheCursor = cacheOffsets.slice();

    for (let b = 0, bag = 0; b < B; b++) {
      for (let t = 0; t < T; t++, bag++) {
        for (let k = offsets[bag], end = offsets[bag + 1]; k < end; k++) {
          const slot = slotOf[k];
          const at = slot < 0 ? cacheCursor[bag]++ : cursor[slot]++;
          if (slot < 0) cacheIds[at] = local[k];
          else ids[at] = local[k];
          if (weights) (slot < 0 ? cacheWeights! : idWeights!)[at] = weights[k];
        }
      }
    }
    const shards: LookupRequest[] = [];
    for (let s = 0; s < S; s++) {
      shards.push({
        batch: B,
        pieces: stride[s],
        offsets: counts.subarray(countBase[s], countBase[s + 1]),
        ids: ids.subarray(idBase[s], idBase[s + 1]),
        weights: idWeights ? idWeights.subarray(idBase[s], idBase[s + 1]) : null,
        idleSamples: 0,
      });
    }
    return { shards, cache: { offsets: cacheOffsets, ids: cacheIds, weights: cacheWeights, lookups: cacheIds.length } };
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
