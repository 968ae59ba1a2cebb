import type { ModelConfig } from '../model/types.ts';
import type { Batch } from '../model/batch.ts';
import { Rng, subSeed } from '../util/rng.ts';
import { badArgument } from '../util/errors.ts';
import { type AccessDistribution, TableAccessGenerator } from './distributions.ts';
import { TraceWriter } from './trace-format.ts';

/** How many lookups a bag gets: exactly the table's pooling factor, or Poisson around it (at least 1). */
export type PoolingDistribution = 'fixed' | 'poisson';

export interface TraceOptions {
  queries: number;
  batch: number;
  access: AccessDistribution;
  pooling: PoolingDistribution;
  seed: number;
}

/** Generates queries one at a time; deterministic for a given model shape and options. */
export class QueryGenerator {
  private readonly tables: TableAccessGenerator[];
  private readonly rng: Rng;

  constructor(private readonly config: ModelConfig, private readonly opts: TraceOptions) {
    if (!Number.isInteger(opts.batch) || opts.batch < 1) throw badArgument(`--batch must be a positive integer, got ${opts.batch}`);
    this.tables = config.tables.map((t, i) => new TableAccessGenerator(t.rows, opts.access, opts.seed, i));
    this.rng = new Rng(subSeed(opts.seed, 1));
  }

  private bagSize(t: number): number {
    const mean = this.config.tables[t].poolingFactor;
    return this.opts.pooling === 'fixed' ? Math.max(1, Math.round(mean)) : Math.max(1, this.rng.poisson(mean));
  }

  next(): Batch {
    const B = this.opts.batch;
    const T = this.config.tables.length;
    const dense = new Float32Array(B * this.config.numDense);
    for (let i = 0; i < dense.length; i++) dense[i] = this.rng.next();
    const offsets = new Int32Array(B * T + 1);
    for (let s = 0; s < B; s++) for (let t = 0; t < T; t++) offsets[s * T + t + 1] = offsets[s * T + t] + this.bagSize(t);
    const indices = new Int32Array(offsets[B * T]);
    for (let s = 0; s < B; s++) {
      for (let t = 0; t < T; t++) {
        const gen = this.tables[t];
        for (let k = offsets[s * T + t]; k < offsets[s * T + t + 1]; k++) indices[k] = gen.next();
      }
    }
    return { size: B, dense, indices, offsets, weights: null };
  }
}

/** Writes a trace file; calls `progress(done)` about every 5% of the queries. */
export function writeTrace(file: string, config: ModelConfig, opts: TraceOptions, progress?: (done: number) => void): number {
  if (!Number.isInteger(opts.queries) || opts.queries < 1) throw badArgument(`--queries must be a positive integer, got ${opts.queries}`);
  const gen = new QueryGenerator(config, opts);
  const writer = new TraceWriter(file, { numDense: config.numDense, rows: config.tables.map((t) => t.rows), hasWeights: false });
  const step = Math.max(1, Math.floor(opts.queries / 20));
  try {
    for (let q = 0; q < opts.queries; q++) {
      writer.write(gen.next());
      if (progress && (q + 1) % step === 0) progress(q + 1);
    }
  } finally {
    writer.close();
  }
  return opts.queries;
}
