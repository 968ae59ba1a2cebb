/**
 * What a query must compute, with nothing else around it: the kernels of each service on the
 * same queries, in this one process, no sockets, no parsing, no metrics. bench:cpu divides
 * each service's CPU per query by these.
 *
 *   monolith   every table's embedding-bags, the bottom and top MLPs and the interaction
 *   router     bucketize, the hot-row cache's bags, adding the shards' partials, the dense half
 *   shard s    the embedding-bags of its pieces over its part of each query
 */
import type { Batch } from '../src/model/batch.ts';
import type { ModelConfig } from '../src/model/types.ts';
import type { Plan } from '../src/plan/types.ts';
import { DEFAULT_ROW_LOADING, loadModel, readManifest } from '../src/model/store.ts';
import { ReferenceModel } from '../src/reference/reference-model.ts';
import { poolPieces } from '../src/serving/shard-service.ts';
import { poolCached } from '../src/serving/disaggregated-engine.ts';
import { Bucketizer, addPartials } from '../src/serving/bucketize.ts';
import { loadHotnessRanges, readHotnessOrder, readRouterCache } from '../src/serving/hotness.ts';

/** CPU ms per query of `fn` over every query, best of `passes` after one warm-up pass. */
async function cpuMsPerQuery(queries: Batch[], passes: number, fn: (q: Batch, i: number) => unknown): Promise<number> {
  let best = Infinity;
  for (let p = 0; p <= passes; p++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < queries.length; i++) await fn(queries[i], i);
    const u = process.cpuUsage(t0);
    if (p > 0) best = Math.min(best, (u.user + u.system) / 1000 / queries.length);
  }
  return best;
}

export interface KernelBaseline {
  monolith: number;
  /**
   * The monolith's kernels with the caches flushed before each query (an 8 MiB sweep, more than
   * this VM's 4 MiB of L2, its own CPU subtracted): closer to a server's, whose HTTP handling and
   * neighbours evict the working set between queries. Printed beside the "x kernels" column, not used in it.
   */
  monolithColdCache: number;
  router: number;
  /** Per shard name. */
  shards: Map<string, number>;
}

export async function kernelBaseline(modelDir: string, config: ModelConfig, plan: Plan, queries: Batch[], passes = 3): Promise<KernelBaseline> {
  const model = loadModel(modelDir, DEFAULT_ROW_LOADING);
  const reference = await ReferenceModel.create(model);
  try {
    const monolith = await cpuMsPerQuery(queries, passes, (q) => reference.predictValidated(q));
    const sweep = new Float64Array(1 << 20);
    const flush = () => {
      for (let i = 0; i < sweep.length; i += 8) sweep[i]++;
    };
    const flushMs = await cpuMsPerQuery(queries, passes, flush);
    const monolithColdCache = (await cpuMsPerQuery(queries, passes, (q) => (flush(), reference.predictValidated(q)))) - flushMs;

    const T = config.tables.length;
    const d = config.embeddingDim;
    const order = readHotnessOrder(plan, config);
    const cacheRows = plan.router.cacheRows;
    const bucketizer = new Bucketizer(T, plan.shards, cacheRows, order);
    const manifest = readManifest(modelDir);
    const cache = readRouterCache(modelDir, manifest, plan, config, DEFAULT_ROW_LOADING)?.tables ?? null;
    const pieces = plan.shards.map((s) => loadHotnessRanges(modelDir, manifest, plan, config, s.pieces, DEFAULT_ROW_LOADING).tables);
    const pieceTables = plan.shards.map((s) => s.pieces.map((p) => p.table));
    // Each shard's partials per query, computed once, so the router's pass adds them without redoing the shards' work.
    const splits = queries.map((q) => bucketizer.split(q));
    const gather = (s: number, _q: Batch, i: number) => poolPieces(pieces[s], d, splits[i].shards[s]);
    const partials = queries.map((q, i) => plan.shards.map((_, s) => gather(s, q, i)));
    const shards = new Map<string, number>();
    for (let s = 0; s < plan.shards.length; s++) shards.set(plan.shards[s].name, await cpuMsPerQuery(queries, passes, (q, i) => gather(s, q, i)));

    const router = await cpuMsPerQuery(queries, passes, (q, i) => {
      const split = bucketizer.split(q);
      const vectors = new Float32Array(q.size * (T + 1) * d);
      if (cache) poolCached(cache, split, q.size, d, vectors);
      partials[i].forEach((sums, s) => addPartials(vectors, sums, q.size, pieceTables[s], T, d));
      return reference.dense.forward(q.dense, vectors, q.size);
    });
    return { monolith, monolithColdCache, router, shards };
  } finally {
    await reference.close();
  }
}
