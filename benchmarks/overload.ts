/**
 * npm run bench:overload — the same monolithic front end with and without admission control,
 * side by side in one run, driven at 1×, 2×, 4× and 8× of its measured max QPS (open loop,
 * the same trace): goodput (answers within the SLA per second, as a share of the max),
 * p99 of the admitted (answered) queries, refusals, failures, and the p99 of a health probe on
 * a fresh connection every 25 ms meanwhile. Each deployment is a `shardwise serve` process of
 * its own (its supervisor does not share this process's event loop), its front end under a
 * cgroup CPU limit (FRONT_END_CPUS, default 0.5) so that the load generator on the same two
 * cores has room to send; where cgroups can't be written it runs unlimited (serve warns) and
 * the table says what was actually sent. The load generator's own CPU per query is printed.
 *
 * Env: SLA_MS (default 50), ROWS per table (100000), STEP_S per overload step (6),
 * FRONT_END_CPUS (0.5), MULTIPLES (1,2,4,8).
 */
import { findMaxQps, runOpenLoop, type RunResult } from '../src/bench/load-generator.ts';
import { probeHealth, type HealthProbeResult } from '../src/bench/health-probe.ts';
import { startServeProcess, type ServeProcess } from '../src/bench/serve-process.ts';
import { scrapeMetric } from '../src/protocol/oip-client.ts';
import { renderTable } from '../src/util/format.ts';
import { rm1Workload } from './rm1-workload.ts';

const SLA_MS = Number(process.env.SLA_MS ?? 50);
const ROWS = Number(process.env.ROWS ?? 100_000);
const STEP_S = Number(process.env.STEP_S ?? 6);
const CPUS = Number(process.env.FRONT_END_CPUS ?? 0.5);
const MULTIPLES = (process.env.MULTIPLES ?? '1,2,4,8').split(',').map(Number);
const log = (s: string) => process.stderr.write(`${s}\n`);

log(`model: RM1 shape, ${ROWS} rows × 10 tables, monolithic front end limited to ${CPUS} CPU; SLA p99 ≤ ${SLA_MS} ms`);
const { config, modelDir, encoded, remove } = rm1Workload('overload', ROWS, 2000, 3);

interface Deployment {
  label: string;
  served: ServeProcess;
  url: string;
}

async function deploy(label: string, admission: boolean): Promise<Deployment> {
  const served = await startServeProcess(['--model', modelDir, '--monolithic', '--sla-p99-ms', String(SLA_MS), '--replica-cpus', String(CPUS), '--drain-grace-ms', '0', ...(admission ? [] : ['--no-admission'])], { stderr: 'inherit' });
  return { label, served, url: served.url };
}

/** Waits until the front end has answered everything it queued (a server without admission control works off its backlog long after the clients gave up). */
async function drained(d: Deployment): Promise<void> {
  const metrics = `http://127.0.0.1:${d.served.replicas[0].metricsPort}`;
  for (let i = 0; i < 600 && (await scrapeMetric(metrics, 'shardwise_inflight_requests')) > 0; i++) await new Promise((r) => setTimeout(r, 100));
}

const deployments = [await deploy('admission control', true), await deploy('no admission control', false)];
const target = (d: Deployment) => ({ url: d.url, modelName: config.name });
try {
  log('measuring the max QPS under the SLA (without admission control: its capacity, not its refusals)…');
  const { maxQps } = await findMaxQps(target(deployments[1]), encoded, { slaP99Ms: SLA_MS, stepS: 3, timeoutMs: 10_000, warmupS: 1, startQps: 50, onProgress: (l) => log(`[max] ${l.trim()}`) });
  if (maxQps <= 0) throw new Error('the front end met the SLA at no rate tried');
  log(`max QPS under the ${SLA_MS} ms SLA: ${maxQps.toFixed(0)}`);

  const rows: { multiple: number; d: Deployment; run: RunResult; health: HealthProbeResult; loadCpuMsPerQuery: number }[] = [];
  for (const multiple of MULTIPLES) {
    for (const d of deployments) {
      await drained(d);
      const probe = probeHealth(`${d.url}/v2/health/ready`, 25);
      const cpu0 = process.cpuUsage();
      const run = await runOpenLoop(target(d), encoded, { qps: multiple * maxQps, durationS: STEP_S, timeoutMs: 5000, warmupS: 1, slaMs: SLA_MS });
      const cpu = process.cpuUsage(cpu0);
      const health = await probe.stop();
      rows.push({ multiple, d, run, health, loadCpuMsPerQuery: (cpu.user + cpu.system) / 1000 / Math.max(1, run.sent) });
      log(`[${multiple}x ${d.label}] sent ${run.sent}, ok ${run.ok} (${run.okWithinSla} within the SLA), refused ${run.rejected}, failed ${run.errors + run.timeouts}, p99 ${run.latency.p99Ms.toFixed(1)} ms, health p99 ${health.latency.p99Ms.toFixed(1)} ms`);
    }
  }

  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  console.log(`\nbench:overload — monolithic front end at ${CPUS} CPU, max ${maxQps.toFixed(0)} qps at p99 ≤ ${SLA_MS} ms; ${STEP_S} s per step`);
  console.log(
    renderTable(
      ['load', 'deployment', 'offered qps', 'sent/s', 'goodput (in SLA) ÷ max', 'answered/s', 'refused', 'failed', 'admitted p50 ms', 'admitted p99 ms', 'health p99 ms', 'health failures', 'load gen ms/query'],
      rows.map(({ multiple, d, run, health, loadCpuMsPerQuery }) => [
        `${multiple}x`,
        d.label,
        (multiple * maxQps).toFixed(0),
        (run.sent / run.durationS).toFixed(0),
        pct(run.okWithinSla / run.durationS / maxQps),
        run.achievedQps.toFixed(0),
        pct(run.rejected / Math.max(1, run.sent)),
        run.errors + run.timeouts,
        run.latency.p50Ms.toFixed(1),
        run.latency.p99Ms.toFixed(1),
        health.latency.p99Ms.toFixed(1),
        health.failures,
        loadCpuMsPerQuery.toFixed(3),
      ]),
    ),
  );
  const at = (m: number, label: string) => rows.find((r) => r.multiple === m && r.d.label === label)!;
  const m = MULTIPLES.includes(4) ? 4 : MULTIPLES[MULTIPLES.length - 1];
  const withAc = at(m, 'admission control');
  const without = at(m, 'no admission control');
  const goodput = (r: RunResult) => r.okWithinSla / r.durationS / maxQps;
  console.log(
    `\nat ${m}x overload: goodput ${pct(goodput(withAc.run))} of max with admission control (${pct(goodput(without.run))} without), admitted p99 ${withAc.run.latency.p99Ms.toFixed(0)} ms (SLA ${SLA_MS} ms; ${without.run.latency.p99Ms.toFixed(0)} ms without), health p99 ${withAc.health.latency.p99Ms.toFixed(0)} ms (${without.health.latency.p99Ms.toFixed(0)} ms without)`,
  );
} finally {
  for (const d of deployments) await d.served.stop();
  remove();
}
