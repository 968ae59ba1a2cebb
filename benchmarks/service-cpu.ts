/**
 * npm run bench:cpu — where the CPU goes at a fixed load: the RM1 trace offered at QPS
 * (default 450) for DURATION_S (30) against the monolithic server and a row-wise plan of
 * SHARDS (4) in hotness order, side by side: CPU of every service process and of the load
 * generator (this process), in cores (CPU seconds per second) and ms per query, and latency.
 * CPU time is steadier than latency on a shared VM, so optimizations are judged here first.
 *
 * Env: QPS, DURATION_S, SHARDS, ROWS per table (100000). SHARDWISE_SERVICE_NODE_FLAGS applies
 * to every service as usual (e.g. `--trace-gc` to count collections in the services' logs).
 */
import type { Plan } from '../src/plan/types.ts';
import { LocalSupervisor } from '../src/cluster/supervisor.ts';
import { DEFAULT_COALESCING } from '../src/serving/coalescing-engine.ts';
import { runOpenLoop, type RunResult } from '../src/bench/load-generator.ts';
import { processCpuSeconds } from '../src/util/process-stats.ts';
import { renderTable } from '../src/util/format.ts';
import { BATCH, LOCALITY, hotnessRowWisePlan, rm1Workload } from './rm1-workload.ts';

const QPS = Number(process.env.QPS ?? 450);
const DURATION_S = Number(process.env.DURATION_S ?? 30);
const SHARDS = Number(process.env.SHARDS ?? 4);
const ROWS = Number(process.env.ROWS ?? 100_000);
const log = (s: string) => process.stderr.write(`${s}\n`);

log(`model: RM1 shape, ${ROWS} rows × 10 tables; trace: 2000 queries of batch ${BATCH} at locality ${LOCALITY}; ${QPS} qps offered for ${DURATION_S} s`);
const { config, modelDir, profileFile, encoded, remove } = rm1Workload('cpu', ROWS, 2000, 2);

interface Measured {
  label: string;
  /** CPU seconds per service (replicas summed) over the measured window. */
  cpu: Map<string, number>;
  run: RunResult;
}

async function measure(label: string, plan: Plan | null): Promise<Measured> {
  log(`== ${label}`);
  const sup = new LocalSupervisor({ modelDir, plan, port: 0, deadlineMs: 5000, coalesce: DEFAULT_COALESCING, log });
  await sup.start();
  try {
    const target = { url: `http://127.0.0.1:${sup.routerPort}`, modelName: config.name };
    await runOpenLoop(target, encoded, { qps: QPS, durationS: 2, timeoutMs: 10_000 }); // warm-up: JIT, connections
    const replicas = sup.replicas();
    const before = replicas.map((r) => processCpuSeconds(r.pid));
    const self = process.cpuUsage();
    const run = await runOpenLoop(target, encoded, { qps: QPS, durationS: DURATION_S, timeoutMs: 10_000 });
    const selfUsage = process.cpuUsage(self);
    const cpu = new Map<string, number>();
    replicas.forEach((r, i) => cpu.set(r.service, (cpu.get(r.service) ?? 0) + processCpuSeconds(r.pid) - before[i]));
    cpu.set('load generator (this process)', (selfUsage.user + selfUsage.system) / 1e6);
    log(`  ${run.achievedQps.toFixed(0)} qps served, p99 ${run.latency.p99Ms.toFixed(1)} ms`);
    return { label, cpu, run };
  } finally {
    await sup.stop();
  }
}

const deployments = [await measure('monolithic', null), await measure(`disaggregated: ${SHARDS} shards, row-wise in hotness order, dense in router, cache 2%`, hotnessRowWisePlan(config, SHARDS, profileFile))];

const rows: (string | number)[][] = [];
for (const d of deployments) {
  const queries = d.run.ok;
  const services = d.cpu.size - 1;
  let total = 0;
  for (const [service, seconds] of d.cpu) {
    if (!service.startsWith('load generator')) total += seconds;
    rows.push([d.label, service, (seconds / DURATION_S).toFixed(3), ((1000 * seconds) / queries).toFixed(3)]);
  }
  rows.push([d.label, `all ${services} services`, (total / DURATION_S).toFixed(3), ((1000 * total) / queries).toFixed(3)]);
}
console.log(`\nbench:cpu — RM1 shape, ${ROWS} rows/table, batch ${BATCH}, ${QPS} qps offered for ${DURATION_S} s, everything on this machine`);
console.log(renderTable(['deployment', 'process', 'cores', 'CPU ms per query'], rows));
console.log('');
for (const d of deployments) {
  const l = d.run.latency;
  console.log(`${d.label}: ${d.run.achievedQps.toFixed(0)} qps served, p50 ${l.p50Ms.toFixed(2)} ms, p99 ${l.p99Ms.toFixed(2)} ms, errors ${d.run.errors + d.run.timeouts}`);
}
const servicesCpu = (d: Measured) => [...d.cpu].filter(([s]) => !s.startsWith('load generator')).reduce((sum, [, c]) => sum + c, 0) / d.run.ok;
console.log(`service CPU per query, disaggregated ÷ monolithic: ${(servicesCpu(deployments[1]) / servicesCpu(deployments[0])).toFixed(2)}×`);
remove();
