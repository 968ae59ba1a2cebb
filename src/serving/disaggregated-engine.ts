import type { Batch } from '../model/batch.ts';
import type { EmbeddingTable, ModelConfig } from '../model/types.ts';
import type { Plan } from '../plan/types.ts';
import { embeddingBag } from '../kernels/embedding-bag.ts';
import type { DenseModel } from '../reference/dense-model.ts';
import { Bucketizer, type SplitBatch, addPartials, addRawRows, divideByBagSizes } from './bucketize.ts';
import { FrameType } from './frame.ts';
import type { ReplicaPool } from './replica-pool.ts';
import { decodeLookupResponse, decodeScores, encodeDenseRequest, encodeLookupRequest } from './messages.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { InferenceEngine } from './engine.ts';
import type { HotnessOrder } from './hotness.ts';

export interface DisaggregatedParts {
  config: ModelConfig;
  plan: Plan;
  /** Original id → hotness position per table (the plan's profile), or null for identity order. */
  order: HotnessOrder | null;
  shards: ReplicaPool[];
  /** The dense half in this process, or the pool of the dense service. */
  dense: DenseModel | ReplicaPool;
  /** Per table, the hottest `plan.router.cacheRows` rows (hotness order), or none. */
  cache: EmbeddingTable[] | null;
  metrics: ServiceMetrics;
  deadlineMs: number;
  /** Where rows are pooled: on the shards (partials on the wire, the default) or here (raw rows on the wire: the baseline `bench:network` measures). */
  pooling?: 'shard' | 'router';
}

const bytesOf = (parts: Buffer[]) => parts.reduce((s, p) => s + p.length, 0);

/**
 * Pools the lookups the router's hot-row cache serves into the interaction input [B, 1 + T, dim].
 * Writes every table slot (zeros for bags with no cached rows), so shards' partials add on top.
 */
export function poolCached(cache: EmbeddingTable[], split: SplitBatch, batch: number, dim: number, vectors: Float32Array): void {
  const T = cache.length;
  for (let t = 0; t < T; t++) embeddingBag(cache[t].data, dim, split.cache.ids, split.cache.offsets, split.cache.weights, false, batch, t, T, vectors, (t + 1) * dim, (T + 1) * dim);
}

/**
 * The router's side of a query: map ids to hotness order and bucketize by shard range, pool cached hot rows locally,
 * fan out to one replica of every shard that has lookups (in parallel, one deadline, hedged on a slow replica),
 * sum the partials into the interaction input, then the dense half.
 */
export class DisaggregatedEngine implements InferenceEngine {
  private readonly bucketizer: Bucketizer;
  private readonly pieceTables: number[][];
  /** Per shard, samples routed since its last request that had no lookups there (see LookupRequest.idleSamples). */
  private readonly idleSamples: Float64Array;
  readonly config: ModelConfig;

  /** Everything but the hotness order: the bucketizer's route codes replace it (4 bytes a row not kept twice). */
  private readonly parts: Omit<DisaggregatedParts, 'order'>;

  constructor({ order, ...parts }: DisaggregatedParts) {
    this.parts = parts;
    this.config = parts.config;
    this.bucketizer = new Bucketizer(parts.config.tables.length, parts.plan.shards, parts.cache ? parts.plan.router.cacheRows : 0, order);
    this.pieceTables = parts.plan.shards.map((s) => s.pieces.map((p) => p.table));
    this.idleSamples = new Float64Array(parts.plan.shards.length);
  }

  async infer(batch: Batch): Promise<Float32Array> {
    const { config, metrics, shards, cache } = this.parts;
    const T = config.tables.length;
    const d = config.embeddingDim;
    const B = batch.size;
    let t0 = performance.now();
    const split = this.bucketizer.split(batch);
    metrics.observe('bucketize', t0);

    const vectors = new Float32Array(B * (T + 1) * d);
    if (cache) poolCached(cache, split, B, d, vectors);
    metrics.cacheLookups.inc({ service: metrics.service, result: 'hit' }, split.cache.lookups);
    metrics.cacheLookups.inc({ service: metrics.service, result: 'miss' }, batch.indices.length - split.cache.lookups);

    t0 = performance.now();
    const deadline = Date.now() + this.parts.deadlineMs;
    const raw = this.parts.pooling === 'router';
    const calls: Promise<void>[] = [];
    split.shards.forEach((req, s) => {
      if (req.ids.length === 0) {
        this.idleSamples[s] += B; // nothing of this batch lives there: its partials are zero
        return;
      }
      req.idleSamples = this.idleSamples[s];
      this.idleSamples[s] = 0;
      req.raw = raw;
      const parts = encodeLookupRequest(req);
      metrics.wireBytes.inc({ service: metrics.service, direction: 'sent' }, bytesOf(parts));
      calls.push(
        shards[s].request(FrameType.LOOKUP_REQUEST, parts, deadline).then((frame) => {
          metrics.wireBytes.inc({ service: metrics.service, direction: 'received' }, frame.payload.length);
          const { sums } = decodeLookupResponse(frame.payload);
          if (raw) addRawRows(vectors, sums, req, this.pieceTables[s], T, d);
          else addPartials(vectors, sums, B, this.pieceTables[s], T, d);
        }),
      );
    });
    await Promise.all(calls);
    metrics.observe('fanout', t0);
    if (config.poolingMode === 'mean') divideByBagSizes(vectors, batch.offsets, B, T, d);

    t0 = performance.now();
    const scores = await this.dense(batch, vectors, deadline);
    metrics.observe('dense', t0);
    return scores;
  }

  queueAgeMs(): number {
    return 0;
  }

  unready(): string | null {
    const { shards, dense } = this.parts;
    for (const pool of shards) {
      const why = pool.unready();
      if (why) return why;
    }
    return 'request' in dense ? dense.unready() : null;
  }

  private async dense(batch: Batch, vectors: Float32Array, deadline: number): Promise<Float32Array> {
    const { dense, config, metrics } = this.parts;
    if (!('request' in dense)) return dense.forward(batch.dense, vectors, batch.size);
    const T = config.tables.length;
    const d = config.embeddingDim;
    const pooled = new Float32Array(batch.size * T * d);
    for (let b = 0; b < batch.size; b++) pooled.set(vectors.subarray((b * (T + 1) + 1) * d, (b + 1) * (T + 1) * d), b * T * d);
    const parts = encodeDenseRequest({ batch: batch.size, dense: batch.dense, pooled });
    metrics.wireBytes.inc({ service: metrics.service, direction: 'sent' }, bytesOf(parts));
    const frame = await dense.request(FrameType.DENSE_REQUEST, parts, deadline);
    metrics.wireBytes.inc({ service: metrics.service, direction: 'received' }, frame.payload.length);
    return decodeScores(frame.payload);
  }

  async close(): Promise<void> {
    for (const s of this.parts.shards) s.close();
    const { dense } = this.parts;
    if ('request' in dense) dense.close();
    else await dense.close();
  }
}
