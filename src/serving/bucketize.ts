import type { Batch } from '../model/batch.ts';
import type { ShardSpec } from '../plan/types.ts';
import type { LookupRequest } from './messages.ts';
import type { HotnessOrder } from './hotness.ts';
import { bucketizeKernels, type BucketizeKernels } from '../kernels/bucketize.ts';
import { badArgument } from '../util/errors.ts';

/**
 * How far ahead the native count pass prefetches route codes: `bench:kernels` measures 0
 * and this on 100k- and 20M-row tables.
 */
export const PREFETCH_IDS = 16;

/** Lookups split by destination: one request per shard, plus the ones the router's hot-row cache serves. */
export interface SplitBatch {
  /** Views of one allocation per split: they may be handed to a socket and outlive the next split. */
  shards: LookupRequest[];
  /** Lookups of rows the router caches: CSR over (sample, table), ids are cache rows; views of the same allocation. */
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
 * Hotness positions below `cacheRows` of a table go to the router's cache instead.
 *
 * Per table the constructor builds a route code per id (4 bytes a row, replacing the hotness
 * permutation, which the router need not keep): the destination and the row inside it, so
 * the split reads one word per id. Destinations are regions: one per shard, bag (b, p) at
 * b·P_s + p, and the cache last, bag (b, t) at b·T + t.
 */
export class Bucketizer {
  private readonly codes: Int32Array[];
  private readonly codeBits: Int32Array;
  /** Per table, its routes are `routeBase[t] ..`: route 0 the cache, then its pieces. */
  private readonly routeBase: Int32Array;
  /** Region and first bag slot inside it of every route; a route's bag for sample b is slot + b·stride. */
  private readonly routeRegion: Int32Array;
  private readonly routeOffset: Int32Array;
  private readonly routeStride: Int32Array;
  /** Bags per sample of each region: the shards' piece counts, then the cache's T. */
  private readonly stride: Int32Array;
  private readonly routeSlot = new Scratch(Int32Array);
  private readonly slotOf = new Scratch(Int32Array);
  private readonly local = new Scratch(Int32Array);
  private readonly counts = new Scratch(Int32Array);
  private readonly cursor = new Scratch(Int32Array);
  private readonly weightShift = new Scratch(Int32Array);

  constructor(
    private readonly tableCount: number,
    shardSpecs: ShardSpec[],
    cacheRows: number,
    order: HotnessOrder | null = null,
    private readonly kernels: BucketizeKernels = bucketizeKernels,
    private readonly prefetchIds = PREFETCH_IDS,
  ) {
    const T = tableCount;
    const S = shardSpecs.length;
    this.stride = Int32Array.from([...shardSpecs.map((s) => s.pieces.length), T]);
    const perTable: { start: number; end: number; shard: number; piece: number }[][] = Array.from({ length: T }, () => []);
    shardSpecs.forEach((s, si) => s.pieces.forEach((p, pi) => perTable[p.table].push({ start: p.rowStart, end: p.rowEnd, shard: si, piece: pi })));
    this.routeBase = new Int32Array(T);
    const region: number[] = [];
    const offset: number[] = [];
    this.codes = [];
    this.codeBits = new Int32Array(T);
    perTable.forEach((pieces, t) => {
      this.routeBase[t] = region.length;
      region.push(S);
      offset.push(t);
      for (const p of pieces) {
        region.push(p.shard);
        offset.push(p.piece);
      }
      const built = routeCodes(t, pieces, cacheRows, order?.[t] ?? null);
      this.codes.push(built.codes);
      this.codeBits[t] = built.bits;
    });
    this.routeRegion = Int32Array.from(region);
    this.routeOffset = Int32Array.from(offset);
    this.routeStride = Int32Array.from(region, (r) => this.stride[r]);
  }

  /**
   * Two passes over the ids (src/kernels/bucketize.ts): the first finds each id's destination
   * bag and counts bag sizes, the second writes ids at their CSR positions. Per region, the
   * offsets, ids and weights lie together in a single output allocation; everything else is
   * scratch.
   */
  split(batch: Batch): SplitBatch {
    const T = this.tableCount;
    const B = batch.size;
    const N = batch.indices.length;
    const { indices, offsets, weights } = batch;
    const { stride, routeRegion, routeOffset } = this;
    const regions = stride.length;
    // Region r's bag counts occupy counts[countBase[r] .. countBase[r] + B·stride[r] + 1].
    const countBase = new Int32Array(regions + 1);
    for (let r = 0; r < regions; r++) countBase[r + 1] = countBase[r] + B * stride[r] + 1;
    const routeSlot = this.routeSlot.take(routeRegion.length, false);
    for (let g = 0; g < routeRegion.length; g++) routeSlot[g] = countBase[routeRegion[g]] + routeOffset[g];
    const counts = this.counts.take(countBase[regions], true);
    // Per id: its bag's index in `counts` and its row inside the destination.
    const slotOf = this.slotOf.take(N, false);
    const local = this.local.take(N, false);

    this.kernels.count(indices, offsets, B, T, this.codes, this.codeBits, this.routeBase, routeSlot, this.routeStride, slotOf, local, counts, this.prefetchIds);
    // Output layout, per region: offsets[B·stride + 1] | ids[n] | weights[n]?
    const w = weights ? 2 : 1;
    const regionBase = new Int32Array(regions + 1);
    for (let r = 0; r < regions; r++) {
      for (let i = countBase[r] + 1; i < countBase[r + 1]; i++) counts[i] += counts[i - 1];
      regionBase[r + 1] = regionBase[r] + (countBase[r + 1] - countBase[r]) + w * counts[countBase[r + 1] - 1];
    }
    // Every element is written below, so the allocation skips zeroing.
    const out = new Int32Array(Buffer.allocUnsafeSlow(4 * regionBase[regions]).buffer, 0, regionBase[regions]);
    const outWeights = weights ? new Float32Array(out.buffer) : null;
    // Cursors are absolute positions in `out` of each bag's next id.
    const cursor = this.cursor.take(countBase[regions], false);
    // A region's weights sit n after its ids: the shift from an id's slot to its weight's.
    const weightShift = this.weightShift.take(weights ? countBase[regions] : 0, false);
    const views: LookupRequest[] = [];
    for (let r = 0; r < regions; r++) {
      const bags = countBase[r + 1] - countBase[r];
      const n = counts[countBase[r + 1] - 1];
      const at = regionBase[r];
      out.set(counts.subarray(countBase[r], countBase[r + 1]), at);
      for (let i = 0; i < bags; i++) cursor[countBase[r] + i] = at + bags + counts[countBase[r] + i];
      if (weights) weightShift.fill(n, countBase[r], countBase[r + 1]);
      views.push({
        batch: B,
        pieces: stride[r],
        offsets: out.subarray(at, at + bags),
        ids: out.subarray(at + bags, at + bags + n),
        weights: outWeights ? outWeights.subarray(at + bags + n, at + bags + 2 * n) : null,
        idleSamples: 0,
      });
    }
    this.kernels.place(offsets, B, T, weights, slotOf, local, cursor, out, outWeights, weightShift);
    const cache = views.pop()!;
    return { shards: views, cache: { offsets: cache.offsets, ids: cache.ids, weights: cache.weights, lookups: cache.ids.length } };
  }
}

/**
 * Table t's route code per id: route r in the high bits (0: the cache, holding hotness
 * positions below cacheRows; r ≥ 1: the table's piece r − 1), the row inside it in the low
 * `bits`. Built from the positions by ranges, then read through the permutation once.
 */
function routeCodes(t: number, pieces: { start: number; end: number }[], cacheRows: number, position: Int32Array | null): { codes: Int32Array; bits: number } {
  const rows = Math.max(position?.length ?? 0, ...pieces.map((p) => p.end));
  const widest = Math.max(1, Math.min(cacheRows, rows), ...pieces.map((p) => p.end - p.start));
  const bits = Math.max(1, 32 - Math.clz32(widest - 1));
  if (pieces.length + 1 > 2 ** (31 - bits)) {
    throw badArgument(`table ${t}: ${pieces.length} pieces of up to ${widest} rows do not fit the router's 31-bit route codes`, 'cut the table into fewer pieces');
  }
  const byPosition = new Int32Array(rows).fill(-1);
  pieces.forEach((p, i) => {
    for (let pos = p.start; pos < p.end; pos++) byPosition[pos] = ((i + 1) << bits) | (pos - p.start);
  });
  for (let pos = 0; pos < Math.min(cacheRows, rows); pos++) byPosition[pos] = pos;
  const missing = byPosition.indexOf(-1);
  if (missing >= 0) throw badArgument(`table ${t}: hotness position ${missing} is in no shard and not cached`, 'give the plan pieces that cover every row');
  if (!position) return { codes: byPosition, bits };
  const codes = new Int32Array(position.length);
  for (let id = 0; id < position.length; id++) codes[id] = byPosition[position[id]];
  return { codes, bits };
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

/**
 * Pools a shard's raw rows (one per lookup of `req`, in request order) into the interaction
 * input at each bag's table slot, applying the request's weights: what the shard does when it
 * pools (FlexEMR's baseline, for `bench:network`).
 */
export function addRawRows(vectors: Float32Array, rows: Float32Array, req: LookupRequest, pieceTables: number[], tables: number, dim: number): void {
  const P = pieceTables.length;
  const row = (tables + 1) * dim;
  const { offsets, weights } = req;
  for (let bag = 0; bag < req.batch * P; bag++) {
    const p = bag % P;
    const dst = ((bag - p) / P) * row + (pieceTables[p] + 1) * dim;
    for (let k = offsets[bag]; k < offsets[bag + 1]; k++) {
      const w = weights ? weights[k] : 1;
      const src = k * dim;
      for (let j = 0; j < dim; j++) vectors[dst + j] += w * rows[src + j];
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
