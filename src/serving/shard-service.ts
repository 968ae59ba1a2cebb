import type { Manifest } from '../model/manifest.ts';
import type { EmbeddingTable } from '../model/types.ts';
import type { ModelConfig } from '../model/types.ts';
import { UTILITY_WINDOW_QUERIES, type Plan } from '../plan/types.ts';
import { embeddingBag } from '../kernels/embedding-bag.ts';
import { FrameType, type Frame } from './frame.ts';
import { FrameError } from './frame.ts';
import type { Reply } from './frame-server.ts';
import { decodeLookupRequest, encodeLookupResponse, type LookupRequest } from './messages.ts';
import type { ServiceMetrics } from './metrics.ts';
import { loadHotnessRanges, type RowSource } from './hotness.ts';
import type { RowLoading } from '../model/store.ts';
import { UtilityMeter } from './utility-meter.ts';

/**
 * An embedding shard: holds its pieces' rows (only its ranges, in the plan's hotness order:
 * mapped or read from the tables' hotness-ordered copies where they exist) and answers lookup requests with one sum-pooled
 * vector per (sample, piece) bag: partials, never raw rows. Measures its memory utility.
 */
export class ShardService {
  private readonly pieces: EmbeddingTable[];
  private readonly utility: UtilityMeter;
  readonly name: string;
  readonly dim: number;

  /** Where the rows came from (for the start-up log). */
  readonly rowSource: RowSource;

  constructor(dir: string, manifest: Manifest, config: ModelConfig, plan: Plan, shard: number, loading: RowLoading, private readonly metrics: ServiceMetrics) {
    this.dim = manifest.embeddingDim;
    const spec = plan.shards[shard];
    this.name = spec.name;
    const loaded = loadHotnessRanges(dir, manifest, plan, config, spec.pieces, loading);
    this.pieces = loaded.tables;
    this.rowSource = loaded.source;
    const windowSamples = UTILITY_WINDOW_QUERIES * (plan.workload?.samplesPerQuery ?? 1);
    this.utility = new UtilityMeter(this.pieces.map((p) => p.rows), windowSamples, (u) => metrics.memoryUtility.set(u));
    metrics.rowsHeld.set(this.utility.rowsHeld);
  }

  get bytesHeld(): number {
    return this.pieces.reduce((s, p) => s + p.data.byteLength, 0);
  }

  handle = (frame: Frame): Reply => {
    if (frame.type !== FrameType.LOOKUP_REQUEST) throw new FrameError(`a shard takes lookup requests, got frame type ${frame.type}`);
    const t0 = performance.now();
    const req = decodeLookupRequest(frame.payload);
    const P = this.pieces.length;
    if (req.pieces !== P) throw new FrameError(`request is for ${req.pieces} pieces; ${this.name} holds ${P}`);
    const { batch, offsets, ids, weights } = req;
    for (let i = 0; i < offsets.length - 1; i++) {
      if (offsets[i + 1] < offsets[i]) throw new FrameError(`offsets decrease at ${i + 1}`);
    }
    if (offsets[0] !== 0 || offsets[offsets.length - 1] !== ids.length) throw new FrameError('offsets do not span the ids');
    const d = this.dim;
    const reply = req.raw ? { batch: ids.length, pieces: 1, dim: d, sums: this.rawRows(req) } : { batch, pieces: P, dim: d, sums: poolPieces(this.pieces, d, req) };
    this.utility.record(req);
    this.metrics.rowsServed.inc(ids.length);
    this.metrics.observe('gather', t0);
    return { type: FrameType.LOOKUP_RESPONSE, parts: encodeLookupResponse(reply) };
  };

  /** The row of every lookup, in request order (the router pools them). */
  private rawRows({ batch, offsets, ids }: LookupRequest): Float32Array {
    const d = this.dim;
    const P = this.pieces.length;
    const rows = new Float32Array(ids.length * d);
    for (let bag = 0; bag < batch * P; bag++) {
      const table = this.pieces[bag % P].data;
      const held = table.length / d;
      for (let k = offsets[bag]; k < offsets[bag + 1]; k++) {
        const id = ids[k];
        if (!(id >= 0 && id < held)) throw new FrameError(`id ${id} outside the ${held} rows of piece ${bag % P}`);
        rows.set(table.subarray(id * d, id * d + d), k * d);
      }
    }
    return rows;
  }
}

/** A shard's answer to a lookup request: one sum-pooled partial per (sample, piece) bag, [B, P, dim]. */
export function poolPieces(pieces: EmbeddingTable[], dim: number, { batch, offsets, ids, weights }: LookupRequest): Float32Array {
  const P = pieces.length;
  const sums = new Float32Array(batch * P * dim);
  for (let p = 0; p < P; p++) embeddingBag(pieces[p].data, dim, ids, offsets, weights, false, batch, p, P, sums, p * dim, P * dim);
  return sums;
}
