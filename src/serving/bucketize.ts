import type { Batch } from '../model/batch.ts';
import type { ShardSpec } from '../plan/types.ts';
import type { LookupRequest } from './messages.ts';
import type { HotnessOrder } from './hotness.ts';
import { bucketizeKernels, type BucketizeKernels } from '../kernels/bucketize.ts';

/**
 * How far ahead the native count pass prefetches permutation entries: `bench:kernels`
 * measures 0 and this on 100k- and 20M-row tables.
 */
export const PREFETCH_IDS = 16;

/** Lookups split by destination: one request per shard, plus the ones the router's hot-row cache serves. */
export interface SplitBatch {
  /** Views of one allocation per split: they may be handed to a socket and outlive the next split. */
  shards: LookupRequest[];
  /**
   * Lookups of rows the router caches: CSR over (sample, table), ids are cache rows. These
   * are the bucketizer's scratch: valid until its next split, so pool them at once.
   */
  cache: { offsets: Int32Array; ids: Int32Array; weights: Float32Array | null; lookups: number };
}

/** A grow-only typed array: per-batch scratch without per-batch allocation (and the major GCs it triggers). */
class Scratch<A extends Int32Array | Float32Array> {
  private array: A;
  constructor(private readonly Type: new (n: number) => A) {
    this.array = new Type(1024);
  }
  /** The first n elements; zeroed when asked (counters), else left as they were. */
  take(n: number, zero: boolean): A {
    if (this.array.length < n) this.array = new this.Type(Math.max(n, 2 * this.array.length));
    const out = this.array.subarray(0, n) as A;
    if (zero) out.fill(0);
    return out;
  }
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
  private readonly stride: Int32Array;
  private readonly slotOf = new Scratch(Int32Array);
  private readonly local = new Scratch(Int32Array);
  private readonly counts = new Scratch(Int32Array);
  private readonly cursor = new Scratch(Int32Array);
  private readonly weightShift = new Scratch(Int32Array);
  private readonly cacheOffsets = new Scratch(Int32Array);
  private readonly cacheCursor = new Scratch(Int32Array);
  private readonly cacheIds = new Scratch(Int32Array);
  private readonly cacheWeights = new Scratch(Float32Array);

  constructor(
    private readonly tableCount: number,
    shardSpecs: ShardSpec[],
    private readonly cacheRows: number,
    private readonly order: HotnessOrder | null = null,
    private readonly kernels: BucketizeKernels = bucketizeKernels,
    private readonly prefetchIds = PREFETCH_IDS,
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
    this.stride = Int32Array.from(this.piecesPerShard);
  }

  /**
   * Two passes over the ids (src/kernels/bucketize.ts): the first finds each id's destination
   * bag and counts bag sizes, the second writes ids at their CSR positions. Per shard, the
   * request's offsets, ids and weights lie in one region of a single output allocation;
   * everything else is scratch.
   */
  split(batch: Batch): SplitBatch {
    const T = this.tableCount;
    const B = batch.size;
    const N = batch.indices.length;
    const { indices, offsets, weights } = batch;
    const { routeBase, routeStart, routeShard, routePiece, cacheRows, order, stride } = this;
    const S = stride.length;
    // Shard s's bag counts occupy counts[countBase[s] .. countBase[s] + B·P_s + 1]; its bag (b, p) is slot b·P_s + p.
    const countBase = new Int32Array(S + 1);
    for (let s = 0; s < S; s++) countBase[s + 1] = countBase[s] + B * stride[s] + 1;
    const counts = this.counts.take(countBase[S], true);
    const cacheOffsets = this.cacheOffsets.take(B * T + 1, true);
    // Per id: its bag's index in `counts` (−1: the cache) and its row inside the destination.
    const slotOf = this.slotOf.take(N, false);
    const local = this.local.take(N, false);

    this.kernels.count(indices, offsets, B, T, order, routeBase, routeStart, routeShard, routePiece, stride, countBase, cacheRows, slotOf, local, counts, cacheOffsets, this.prefetchIds);
    // Output layout, per shard: offsets[B·P_s + 1] | ids[n_s] | weights[n_s]?
    const w = weights ? 2 : 1;
    const regionBase = new Int32Array(S + 1);
    for (let s = 0; s < S; s++) {
      for (let i = countBase[s] + 1; i < countBase[s + 1]; i++) counts[i] += counts[i - 1];
      regionBase[s + 1] = regionBase[s] + (countBase[s + 1] - countBase[s]) + w * counts[countBase[s + 1] - 1];
    }
    // Every element is written below, so the allocation skips zeroing.
    const out = new Int32Array(Buffer.allocUnsafeSlow(4 * regionBase[S]).buffer, 0, regionBase[S]);
    const outWeights = weights ? new Float32Array(out.buffer) : null;
    // Cursors are absolute positions in `out` of each bag's next id.
    const cursor = this.cursor.take(countBase[S], false);
    // A shard's weights sit n_s after its ids: the shift from an id's slot to its weight's.
    const weightShift = this.weightShift.take(weights ? countBase[S] : 0, false);
    const shards: LookupRequest[] = [];
    for (let s = 0; s < S; s++) {
      const bags = countBase[s + 1] - countBase[s];
      const n = counts[countBase[s + 1] - 1];
      const at = regionBase[s];
      out.set(counts.subarray(countBase[s], countBase[s + 1]), at);
      for (let i = 0; i < bags; i++) cursor[countBase[s] + i] = at + bags + counts[countBase[s] + i];
      if (weights) weightShift.fill(n, countBase[s], countBase[s + 1]);
      shards.push({
        batch: B,
        pieces: stride[s],
        offsets: out.subarray(at, at + bags),
        ids: out.subarray(at + bags, at + bags + n),
        weights: outWeights ? outWeights.subarray(at + bags + n, at + bags + 2 * n) : null,
        idleSamples: 0,
      });
    }
    for (let i = 1; i <= B * T; i++) cacheOffsets[i] += cacheOffsets[i - 1];
    const cached = cacheOffsets[B * T];
    const cacheIds = this.cacheIds.take(cached, false);
    const cacheWeights = weights ? this.cacheWeights.take(cached, false) : null;
    const cacheCursor = this.cacheCursor.take(B * T + 1, false);
    cacheCursor.set(cacheOffsets);

    this.kernels.place(offsets, B, T, weights, slotOf, local, cursor, out, outWeights, weightShift, cacheCursor, cacheIds, cacheWeights);
    return { shards, cache: { offsets: cacheOffsets, ids: cacheIds, weights: cacheWeights, lookups: cached } };
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
