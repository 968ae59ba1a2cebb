/**
 * npm run bench:plans — plans every strategy for one target on this machine and serves each:
 * planned vs measured memory (sum of RSS), capacity and memory utility, and whether the
 * plan meets the SLA at the target under open-loop load.
 *
 * Steps: generate an RM1-shaped model; a locality-0.9 trace and its hotness profile;
 * calibrate this machine (or COST=cost.json); plan all six strategies for TARGET_QPS; serve
 * each plan, replay the trace at the target; find the max QPS under the SLA for model-wise
 * and elastic.
 *
 * Env: ROWS per table (500000), TARGET_QPS (60), SLA_MS (50), RUN_S at the target (20),
 * CACHE_ROWS per table (1000), COST (a cost.json to skip calibration), STEP_S per search step (3).
 */
import { calibrate } from '../src/bench/calibrate.ts';
import { readCostModel, type CostModel } from '../src/planner/cost-model.ts';
import { allStrategies } from '../src/planner/strategies.ts';
import { runPlanner, type PlannedStrategy } from '../src/planner/planner.ts';
import { LocalSupervisor } from '../src/cluster/supervisor.ts';
import { DEFAULT_COALESCING } from '../src/serving/coalescing-engine.ts';
import { findMaxQps, meetsSla, runOpenLoop, type RunResult } from '../src/bench/load-generator.ts';
import { scrapeMetric } from '../src/protocol/oip-client.ts';
import { renderTable } from '../src/util/format.ts';
import { processRss } from '../src/util/process-stats.ts';
import { planHotness } from '../src/profile/format.ts';
import { BATCH, LOCALITY, rm1Workload } from './rm1-workload.ts';

const ROWS = Number(process.env.ROWS ?? 500_000);
const TARGET_QPS = Number(process.env.TARGET_QPS ?? 60);
const SLA_MS = Number(process.env.SLA_MS ?? 50);
const RUN_S = Number(process.env.RUN_S ?? 20);
const CACHE_ROWS = Number(process.env.CACHE_ROWS ?? 1000);
const STEP_S = Number(process.env.STEP_S ?? 3);
const log = (s: string) => process.stderr.write(`${s}\n`);

log(`model: RM1 shape, ${ROWS} rows per table; trace: 4000 queries of batch ${BATCH}, locality ${LOCALITY}`);
const { config, modelDir, profile, profileFile, encoded, remove } = rm1Workload('plans', ROWS, 4000, 3);

let cost: CostModel;
if (process.env.COST) {
  cost = readCostModel(process.env.COST);
} else {
  log('calibrating this machine…');
  cost = (await calibrate({ modelDir, batch: BATCH, sweep: [64, 256, 1024, 4096], holdout: 2048, secondsPerPoint: 2, log })).cost;
}

const input = { config, profile, hotness: planHotness(profileFile), cost, targetQps: TARGET_QPS, slaP99Ms: SLA_MS, batch: BATCH, shards: 4, maxShards: 16, cacheRows: CACHE_ROWS };
const planned = runPlanner(input, allStrategies(), null);

interface Served {
  strategy: string;
  processes: number;
  rss: number;
  atTarget: RunResult;
  /** Replica-weighted mean of the shards' measured utility (last complete window). */
  utility: number;
  maxQps?: number;
}

/** The most queries/s the plan's services sustain by the cost model: its bottleneck service. */
const plannedCapacity = (p: PlannedStrategy) => Math.min(...p.estimate.services.map((s) => s.replicas * s.qpsPerReplica));

async function serve(p: PlannedStrategy, searchMax: boolean): Promise<Served> {
  log(`\n== ${p.plan.strategy}: ${p.plan.shards.map((s) => `${s.name}×${s.replicas}`).join(' ')}`);
  const sup = new LocalSupervisor({ modelDir, plan: p.plan, port: 0, deadlineMs: 5000, coalesce: DEFAULT_COALESCING });
  await sup.start();
  try {
    const target = { url: `http://127.0.0.1:${sup.routerPort}`, modelName: config.name };
    const atTarget = await runOpenLoop(target, encoded, { qps: TARGET_QPS, durationS: RUN_S, warmupS: 2, timeoutMs: 10_000, onProgress: log });
    log(`  at ${TARGET_QPS} qps: p99 ${atTarget.latency.p99Ms.toFixed(2)} ms, ${atTarget.errors} errors, ${atTarget.timeouts} timeouts`);
    const replicas = sup.replicas();
    const rss = replicas.reduce((sum, r) => sum + processRss(r.pid), 0);
    const shards = replicas.filter((r) => r.role === 'shard');
    const utilities = await Promise.all(shards.map((r) => scrapeMetric(`http://127.0.0.1:${r.metricsPort}`, 'shardwise_memory_utility_ratio')));
    const served: Served = { strategy: p.plan.strategy, processes: replicas.length, rss, atTarget, utility: utilities.reduce((a, b) => a + b, 0) / Math.max(1, utilities.length) };
    if (searchMax) {
      served.maxQps = (await findMaxQps(target, encoded, { slaP99Ms: SLA_MS, stepS: STEP_S, timeoutMs: 10_000, warmupS: 1, startQps: TARGET_QPS, onProgress: log })).maxQps;
    }
    return served;
  } finally {
    await sup.stop();
  }
}

const results: Served[] = [];
for (const p of planned) results.push(await serve(p, p.plan.strategy === 'model-wise' || p.plan.strategy === 'elastic'));

const mib = (b: number) => (b / 2 ** 20).toFixed(0);
console.log(`\nbench:plans — RM1 shape, ${ROWS} rows/table, batch ${BATCH}, locality ${LOCALITY}, target ${TARGET_QPS} qps, p99 SLA ${SLA_MS} ms, cache ${CACHE_ROWS} rows/table; costs: ${cost.source}`);
console.log(
  renderTable(
    ['strategy', 'services', 'processes', 'planned MiB', 'measured RSS MiB', 'p99 at target ms', 'SLA met', 'utility planned', 'utility measured', 'capacity planned', 'max qps measured'],
    planned.map((p, i) => {
      const r = results[i];
      return [
        p.plan.strategy,
        p.plan.shards.map((s) => `${s.name}×${s.replicas}`).join(' '),
        r.processes,
        mib(p.estimate.memBytes),
        mib(r.rss),
        r.atTarget.latency.p99Ms.toFixed(2),
        meetsSla(r.atTarget, SLA_MS) ? 'yes' : 'NO',
        p.estimate.utility.toFixed(3),
        r.utility.toFixed(3),
        plannedCapacity(p).toFixed(0),
        r.maxQps?.toFixed(0) ?? '-',
      ];
    }),
  ),
);
const estimateOf = (s: string) => planned.find((p) => p.plan.strategy === s)!.estimate;
const mw = results.find((r) => r.strategy === 'model-wise')!;
const el = results.find((r) => r.strategy === 'elastic')!;
console.log(`\nelastic ÷ model-wise: measured memory ${(el.rss / mw.rss).toFixed(2)}× (planned ${(estimateOf('elastic').memBytes / estimateOf('model-wise').memBytes).toFixed(2)}×), max QPS ${((el.maxQps ?? 0) / Math.max(1, mw.maxQps ?? 0)).toFixed(2)}×`);
remove();
