import { configOf } from '../model/manifest.ts';
import { readManifest } from '../model/store.ts';
import { LocalSupervisor } from '../cluster/supervisor.ts';
import { rowWisePlan } from '../planner/row-wise.ts';
import { COST_FORMAT, COST_VERSION, type CostModel } from '../planner/cost-model.ts';
import { FrameClient } from '../serving/frame-client.ts';
import { FrameType } from '../serving/frame.ts';
import { encodeDenseRequest, encodeLookupRequest } from '../serving/messages.ts';
import { Rng } from '../util/rng.ts';
import { QueryGenerator } from '../workload/generate-trace.ts';
import { inferBinary } from '../protocol/oip-client.ts';
import { ShardwiseError, ErrorCodes } from '../util/errors.ts';
import { silentLogger } from '../util/log.ts';

export interface CalibrateOptions {
  modelDir: string;
  /** Samples per query: the dense service is measured at this batch. */
  batch: number;
  /** Lookups per query the shard is measured at (the fit uses all but `holdout`). */
  sweep: number[];
  holdout: number;
  secondsPerPoint: number;
  /** Measure every service under this CPU limit (cgroups, as `serve --replica-cpus`); the cost model records it as each replica's CPUs. */
  replicaCpus?: number;
  log: (line: string) => void;
}

export interface Calibration {
  cost: CostModel;
  points: { x: number; qps: number }[];
  holdout: { x: number; measured: number; predicted: number };
  denseByBatch: { batch: number; qps: number }[];
}

/** Closed-loop throughput of one service: `concurrency` requests always outstanding. */
async function sustainedQps(client: FrameClient, type: number, requests: Buffer[][], seconds: number, concurrency = 2): Promise<number> {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = w; performance.now() < end; i += concurrency) {
        await client.request(type as never, requests[i % requests.length], 10_000);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

/** Least squares of y = α + β·x. */
function fitLine(xs: number[], ys: number[]): { alpha: number; beta: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const beta = sxx > 0 ? Math.max(0, sxy / sxx) : 0;
  return { alpha: Math.max(1e-6, my - beta * mx), beta };
}

/**
 * Measures this machine for the cost model: a real shard server (all rows of the model, one
 * process) under closed-loop lookup requests of x lookups per query, fitted to
 * 1/QPS = α + β·x and checked on a held-out x; the dense service per batch size; and the
 * resident memory of idle replicas.
 */
export async function calibrate(opts: CalibrateOptions): Promise<Calibration> {
  const config = configOf(readManifest(opts.modelDir));
  const T = config.tables.length;
  const plan = rowWisePlan(config, { shards: 1, replicas: 1, cacheRows: 0, dense: 'service', denseReplicas: 1 });
  // Measuring capacity: nothing is shed, so no 429 (and its retry) enters the timings.
  const c = opts.replicaCpus;
  const replicaCpus = c === undefined ? undefined : { shard: c, dense: c, router: c };
  const sup = new LocalSupervisor({ modelDir: opts.modelDir, plan, port: 0, deadlineMs: 10_000, coalesce: null, admission: null, replicaCpus, log: silentLogger });
  await sup.start();
  // One event loop per replica: unlimited, a replica uses about one CPU.
  const limited = c !== undefined && sup.replicas().every((r) => r.cpuLimit === c);
  if (c !== undefined && !limited) opts.log(`warning: the ${c}-CPU limit could not be enforced (no writable cgroup cpu controller); measuring unlimited replicas, recorded as 1 CPU each`);
  const cpus = limited ? c : 1;
  const clients: FrameClient[] = [];
  try {
    const replicas = sup.replicas();
    const find = (role: string) => {
      const r = replicas.find((x) => x.role === role);
      if (!r?.socketPath) throw new ShardwiseError(ErrorCodes.SERVICE, `calibration could not find the ${role} service's socket`);
      return { info: r, client: new FrameClient({ path: r.socketPath }) };
    };
    const shard = find('shard');
    const dense = find('dense');
    clients.push(shard.client, dense.client);
    const rng = new Rng(7);
    const lookupRequests = (x: number) =>
      Array.from({ length: 32 }, () => {
        // x lookups spread over the batch's bags, rows uniform over each table (no locality: the worst case).
        const bags = opts.batch * T;
        const offsets = new Int32Array(bags + 1);
        for (let b = 0; b < bags; b++) offsets[b + 1] = Math.round(((b + 1) * x) / bags);
        const ids = new Int32Array(x);
        for (let b = 0; b < bags; b++) for (let k = offsets[b]; k < offsets[b + 1]; k++) ids[k] = rng.below(config.tables[b % T].rows);
        return encodeLookupRequest({ batch: opts.batch, pieces: T, offsets, ids, weights: null, idleSamples: 0 });
      });
    await sustainedQps(shard.client, FrameType.LOOKUP_REQUEST, lookupRequests(opts.holdout), 1); // JIT and page-cache warm-up, not measured
    const points: { x: number; qps: number }[] = [];
    for (const x of [...opts.sweep, opts.holdout]) {
      const qps = await sustainedQps(shard.client, FrameType.LOOKUP_REQUEST, lookupRequests(x), opts.secondsPerPoint);
      opts.log(`  shard: ${x} lookups/query → ${qps.toFixed(0)} queries/s`);
      points.push({ x, qps });
    }
    const fitted = points.filter((p) => p.x !== opts.holdout);
    const { alpha, beta } = fitLine(fitted.map((p) => p.x), fitted.map((p) => 1000 / p.qps));
    const held = points.find((p) => p.x === opts.holdout)!;
    const predicted = 1000 / (alpha + beta * opts.holdout);

    const denseByBatch: { batch: number; qps: number }[] = [];
    await sustainedQps(dense.client, FrameType.DENSE_REQUEST, [encodeDenseRequest({ batch: opts.batch, dense: new Float32Array(opts.batch * config.numDense), pooled: new Float32Array(opts.batch * T * config.embeddingDim) })], 1);
    for (const batch of [...new Set([1, opts.batch, 64])].sort((a, b) => a - b)) {
      const reqs = Array.from({ length: 8 }, () => {
        const d = new Float32Array(batch * config.numDense).map(() => rng.next());
        const pooled = new Float32Array(batch * T * config.embeddingDim).map(() => rng.next() - 0.5);
        return encodeDenseRequest({ batch, dense: d, pooled });
      });
      const qps = await sustainedQps(dense.client, FrameType.DENSE_REQUEST, reqs, opts.secondsPerPoint);
      opts.log(`  dense: batch ${batch} → ${qps.toFixed(0)} queries/s`);
      denseByBatch.push({ batch, qps });
    }
    // The router: closed-loop queries through the public API. Shard and dense share this
    // machine's cores with it, so this is a lower bound on one router's capacity.
    const router = replicas.find((r) => r.role === 'router')!;
    const gen = new QueryGenerator(config, { queries: 64, batch: opts.batch, access: { kind: 'locality', p: 0.9 }, pooling: 'fixed', seed: 7 });
    const queries = Array.from({ length: 64 }, () => gen.next());
    const url = `http://127.0.0.1:${sup.routerPort}`;
    let served = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = w; performance.now() - t0 < opts.secondsPerPoint * 1000; i += 16, served++) await inferBinary(url, config.name, queries[i % queries.length], config.numDense);
      }),
    );
    const routerQps = served / ((performance.now() - t0) / 1000);
    opts.log(`  router (end to end, shard and dense on the same cores): ${routerQps.toFixed(0)} queries/s`);
    const rowBytes = config.embeddingDim * 4;
    const modelRows = config.tables.reduce((n, t) => n + t.rows, 0);
    const shardIdle = Math.max(0, shard.info.rssBytes - modelRows * rowBytes);
    const wholeModelLookups = opts.batch * config.tables.reduce((n, t) => n + t.poolingFactor, 0);
    const cost: CostModel = {
      format: COST_FORMAT,
      version: COST_VERSION,
      source: `calibrated on this machine for model '${config.name}', batch ${opts.batch}${limited ? `, ${c} CPU per replica` : ''}, ${new Date().toISOString().slice(0, 10)}`,
      shard: { curves: [{ dim: config.embeddingDim, alphaMs: alpha, betaMs: beta }], replica: { cpus, memBytes: shardIdle } },
      dense: { qps: denseByBatch.find((d) => d.batch === opts.batch)!.qps, replica: { cpus, memBytes: dense.info.rssBytes } },
      modelWise: { sparseQps: 1000 / (alpha + beta * wholeModelLookups), replica: { cpus, memBytes: shardIdle + dense.info.rssBytes } },
      router: { qps: routerQps, replica: { cpus, memBytes: router.rssBytes } },
    };
    return { cost, points, holdout: { x: opts.holdout, measured: held.qps, predicted }, denseByBatch };
  } finally {
    for (const c of clients) c.close();
    await sup.stop();
  }
}
