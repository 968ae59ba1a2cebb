/**
 * npm run bench:serving — the same trace against the monolithic server and disaggregated
 * row-wise plans of 4 and 2 shards (rows in the trace profile's hotness order) on this
 * machine, side by side: max QPS under a p99 SLA, p99 at half the monolithic max, memory (sum
 * of RSS), router cache hit rate, and bytes per query on the wire with and without shard-side
 * pooling. Every deployment runs from start to end and their searches take turns step by
 * step, so a slow phase of the shared machine falls on all of them.
 *
 * Env: SLA_MS (default 50), ROWS per table (100000), STEP_S per search step (3), SHARDS
 * (comma-separated shard counts, default 4,2), ROUTERS (router replicas of one more run of
 * the first shard count, default 2; 1 skips it), DENSE_SERVICE (one more run of the first shard
 * count with the dense half as its own service instead of inside the router; 0 skips it), COALESCE and QUEUE_DELAY_MS (dynamic batching
 * in every deployment, as `serve --coalesce N --max-queue-delay-ms D`; COALESCE=0 turns it off).
 */
import { readHotnessOrder } from '../src/serving/hotness.ts';
import type { Plan } from '../src/plan/types.ts';
import { LocalSupervisor } from '../src/cluster/supervisor.ts';
import { MaxQpsSearch, runInterleaved, runOpenLoop, type LoadTarget, type RunResult } from '../src/bench/load-generator.ts';
import { Bucketizer } from '../src/serving/bucketize.ts';
import { encodeLookupRequest, encodeLookupResponse, type LookupRequest } from '../src/serving/messages.ts';
import { formatBytes, renderTable } from '../src/util/format.ts';
import { processRss } from '../src/util/process-stats.ts';
import { scrapeMetric } from '../src/protocol/oip-client.ts';
import { BATCH, LOCALITY, coalescingFromEnv, hotnessRowWisePlan, rm1Workload } from './rm1-workload.ts';

const SLA_MS = Number(process.env.SLA_MS ?? 50);
const ROWS = Number(process.env.ROWS ?? 100_000);
const STEP_S = Number(process.env.STEP_S ?? 3);
const SHARDS = (process.env.SHARDS ?? '4,2').split(',').map(Number);
const ROUTERS = Number(process.env.ROUTERS ?? 2);
const DENSE_SERVICE = process.env.DENSE_SERVICE !== '0';
const COALESCE = coalescingFromEnv();
const log = (s: string) => process.stderr.write(`${s}\n`);

log(`model: RM1 shape, ${ROWS} rows × 10 tables; trace: 2000 queries of batch ${BATCH} at locality ${LOCALITY}; SLA p99 ≤ ${SLA_MS} ms`);
const { config, modelDir, profileFile, queries, encoded, remove } = rm1Workload('serving', ROWS, 2000, 2);

/** One deployment under test: its services run for the whole benchmark, its search steps interleave with the others'. */
interface Deployment {
  label: string;
  /** Prefix of its progress lines. */
  tag: string;
  sup: LocalSupervisor;
  target: LoadTarget;
  search: MaxQpsSearch;
  atHalf?: RunResult;
}

async function deploy(label: string, tag: string, plan: Plan | null): Promise<Deployment> {
  log(`starting ${label}…`);
  const sup = new LocalSupervisor({ modelDir, plan, port: 0, deadlineMs: 5000, coalesce: COALESCE });
  await sup.start();
  const search = new MaxQpsSearch({ slaP99Ms: SLA_MS, stepS: STEP_S, timeoutMs: 10_000, warmupS: 1, startQps: 100, onProgress: (line) => log(`[${tag}] ${line.trim()}`) });
  return { label, tag, sup, target: { url: `http://127.0.0.1:${sup.routerPort}`, modelName: config.name }, search };
}

/** Sum of a counter over the deployment's router replicas, each scraped on its own metrics port. */
async function routerTotal(d: Deployment, name: string, labels: string): Promise<number> {
  const routers = d.sup.replicas().filter((r) => r.role === 'router').map((r) => `http://127.0.0.1:${r.metricsPort}`);
  return (await Promise.all(routers.map((u) => scrapeMetric(u, name, labels)))).reduce((a, b) => a + b, 0);
}

/**
 * Internal payload bytes per query by construction (what shardwise_wire_bytes_total counts),
 * running the router's own bucketizer and frame encoders over the trace. The raw variant
 * answers with one row per id in a lookup response's layout; raw + dedupe sends each
 * distinct (piece, row) of a request once, both ways (FlexEMR's dedupe: the router would
 * keep the bag mapping and pool).
 */
function wireBytes(plan: Plan): { pooled: number; raw: number; rawDeduped: number; duplicateShare: number } {
  const b = new Bucketizer(config.tables.length, plan.shards, plan.router.cacheRows, readHotnessOrder(plan, config));
  const d = config.embeddingDim;
  const bytes = (parts: Buffer[]) => parts.reduce((sum, part) => sum + part.length, 0);
  const response = (batch: number, pieces: number) => bytes(encodeLookupResponse({ batch, pieces, dim: d, sums: new Float32Array(batch * pieces * d) }));
  let pooled = 0;
  let raw = 0;
  let rawDeduped = 0;
  let lookups = 0;
  let distinct = 0;
  for (const q of queries) {
    for (const req of b.split(q).shards) {
      if (req.ids.length === 0) continue;
      const request = bytes(encodeLookupRequest(req));
      const unique = distinctRows(req);
      pooled += request + response(req.batch, req.pieces);
      raw += request + response(req.ids.length, 1);
      rawDeduped += request - 4 * (req.ids.length - unique) + response(unique, 1);
      lookups += req.ids.length;
      distinct += unique;
    }
  }
  return { pooled: pooled / queries.length, raw: raw / queries.length, rawDeduped: rawDeduped / queries.length, duplicateShare: 1 - distinct / lookups };
}

/** Distinct (piece, row) pairs among a request's lookups. */
function distinctRows(req: LookupRequest): number {
  const keys = new Float64Array(req.ids.length);
  for (let bag = 0; bag < req.batch * req.pieces; bag++) {
    for (let k = req.offsets[bag]; k < req.offsets[bag + 1]; k++) keys[k] = (bag % req.pieces) * 2 ** 31 + req.ids[k];
  }
  keys.sort();
  let n = keys.length > 0 ? 1 : 0;
  for (let k = 1; k < keys.length; k++) if (keys[k] !== keys[k - 1]) n++;
  return n;
}

const planOf = (shards: number): Plan => hotnessRowWisePlan(config, shards, profileFile);
const runs: { label: string; tag: string; plan: Plan }[] = SHARDS.map((shards) => ({ label: `${shards} shards, dense in router`, tag: `${shards} shards`, plan: planOf(shards) }));
if (ROUTERS > 1) {
  const plan = planOf(SHARDS[0]);
  runs.push({ label: `${SHARDS[0]} shards, ${ROUTERS} routers, dense in router`, tag: `${SHARDS[0]}s/${ROUTERS}r`, plan: { ...plan, router: { ...plan.router, replicas: ROUTERS } } });
}
if (DENSE_SERVICE) runs.push({ label: `${SHARDS[0]} shards, dense service`, tag: `${SHARDS[0]}s/dense`, plan: hotnessRowWisePlan(config, SHARDS[0], profileFile, 'service') });
const deployments: Deployment[] = [];
try {
  deployments.push(await deploy('monolithic (one process, whole model)', 'mono', null));
  for (const r of runs) deployments.push(await deploy(`disaggregated: ${r.label}, row-wise in hotness order, cache 2% of rows`, r.tag, r.plan));
  log(`\ninterleaved max-QPS searches (p99 SLA ${SLA_MS} ms):`);
  await runInterleaved(deployments, encoded, { timeoutMs: 10_000, warmupS: 1 });
  const half = deployments[0].search.maxQps / 2;
  if (half === 0) throw new Error(`the monolithic server met the ${SLA_MS} ms SLA at no rate tried: nothing to compare (raise SLA_MS?)`);
  for (const d of deployments) {
    d.atHalf = await runOpenLoop(d.target, encoded, { qps: half, durationS: 10, warmupS: 1, timeoutMs: 10_000 });
    log(`[${d.tag}] at ${half.toFixed(0)} qps: p99 ${d.atHalf.latency.p99Ms.toFixed(2)} ms`);
  }
  const rss = (d: Deployment) => d.sup.replicas().reduce((sum, r) => sum + processRss(r.pid), 0);
  const [mono, ...disaggs] = deployments;
  const row = (d: Deployment) => [d.label, d.sup.replicas().length, d.search.maxQps.toFixed(0), d.search.best?.latency.p99Ms.toFixed(2) ?? '-', d.atHalf!.latency.p99Ms.toFixed(2), formatBytes(rss(d))];
  console.log(`\nbench:serving — RM1 shape, ${ROWS} rows/table, batch ${BATCH}, locality ${LOCALITY}, p99 SLA ${SLA_MS} ms, load generator in the same 2-core machine, searches interleaved`);
  console.log(renderTable(['deployment', 'processes', 'max qps', 'p99 at max ms', `p99 at ${half.toFixed(0)} qps ms`, 'memory (RSS)'], deployments.map(row)));
  console.log('');
  for (const [i, d] of disaggs.entries()) {
    console.log(`ratios, ${runs[i].label} ÷ monolithic: max QPS ${(d.search.maxQps / mono.search.maxQps).toFixed(2)}×, p99 at ${half.toFixed(0)} qps ${(d.atHalf!.latency.p99Ms / mono.atHalf!.latency.p99Ms).toFixed(2)}×, memory ${(rss(d) / rss(mono)).toFixed(2)}×`);
  }
  const first = disaggs[0];
  const hits = await routerTotal(first, 'shardwise_cache_lookups_total', 'result="hit"');
  const misses = await routerTotal(first, 'shardwise_cache_lookups_total', 'result="miss"');
  const wire = (await routerTotal(first, 'shardwise_wire_bytes_total', 'direction="sent"')) + (await routerTotal(first, 'shardwise_wire_bytes_total', 'direction="received"'));
  const served = await routerTotal(first, 'shardwise_requests_total', 'outcome="ok"');
  const bytes = wireBytes(planOf(SHARDS[0]));
  console.log(`router cache hit rate: ${((100 * hits) / Math.max(1, hits + misses)).toFixed(1)}% of lookups (the hottest 2% of each table's rows by the trace profile)`);
  console.log(`internal bytes per query (${SHARDS[0]} shards): measured ${formatBytes(wire / Math.max(1, served))}; by construction ${formatBytes(bytes.pooled)} with shard-side pooling vs ${formatBytes(bytes.raw)} if shards returned raw rows (${(bytes.raw / bytes.pooled).toFixed(1)}× more), ${formatBytes(bytes.rawDeduped)} raw with ids deduped within the batch (${(bytes.rawDeduped / bytes.pooled).toFixed(1)}×; ${(100 * bytes.duplicateShare).toFixed(1)}% of a request's lookups repeat a row)`);
} finally {
  for (const d of deployments) await d.sup.stop();
  remove();
}
