/**
 * npm run bench:overload — the same monolithic front end behind the HAProxy balancer
 * (`serve --balancer haproxy`: refusals in C, outside the front end's CPU; its in-flight limit
 * adapted, and fixed with --no-balancer-adaptive), with admission
 * control in the front end itself, and with neither, side by side in one run, driven at 1×,
 * 2×, 4× and 8× of its measured max QPS (open loop,
 * the same trace): goodput (answers within the SLA per second, as a share of the max; the max
 * is searched before the steps and again after them, and the higher counts),
 * p99 of the admitted (answered) queries, refusals, failures, and the p99 of a health probe on
 * a fresh connection every 25 ms meanwhile. Each deployment is a `shardwise serve` process of
 * its own (its supervisor does not share this process's event loop), its front end under a
 * cgroup CPU limit (FRONT_END_CPUS, default 0.5) so that the load generator on the same two
 * cores has room to send; where cgroups can't be written it runs unlimited (serve warns) and
 * the table says what was actually sent. The load generator's own CPU per query is printed, and
 * how late it sent (p99 of send − scheduled time: a step whose sender lagged measured the
 * sender too, and the health probe, in the same process, shares that lag), and
 * the balancer's (HAProxy shares the two cores too), and the share of the machine's CPU the
 * hypervisor stole during each step and each max search (a shared VM's noise, in the open). Without haproxy installed the balancer's
 * rows are skipped, saying so. Each step also shows the serving processes' CPU: cores used (their
 * limit, when saturated) and ms per answer, which falls as the batcher merges more in flight.
 *
 * Env: SLA_MS (default 50), ROWS per table (100000), STEP_S per overload step (6),
 * FRONT_END_CPUS (0.5), MULTIPLES (1,2,4,8), BALANCER_INFLIGHT and BALANCER_QUEUE_MS (serve's
 * --balancer-inflight and --balancer-queue-ms; default serve's own), SHARDS (0: the monolith;
 * N: a disaggregated deployment instead, N shards in hotness order and a router with the dense
 * half, every replica at FRONT_END_CPUS), DEPLOYMENTS (which to run beside the one without
 * admission control, on which the max is searched: any of adaptive,fixed,front-end; all by
 * default), BALANCER_TARGETS_MS (e.g. 30,35: one more adaptive balancer per value, its
 * --balancer-target-ms, beside the default's half of the SLA), BALANCER_QUEUES_MS (e.g. 25:
 * one more per --balancer-queue-ms, beside the default's quarter of the SLA).
 */
import { findMaxQps, runOpenLoop, type RunResult, type SecondStats } from '../src/bench/load-generator.ts';
import { probeHealth, type HealthProbeResult } from '../src/bench/health-probe.ts';
import { startServeProcess, type ServeProcess } from '../src/bench/serve-process.ts';
import { scrapeMetric } from '../src/protocol/oip-client.ts';
import { renderTable } from '../src/util/format.ts';
import { machineCpuTicks, processCpuSeconds, stealShare } from '../src/util/process-stats.ts';
import { findHaproxy } from '../src/cluster/balancer.ts';
import { writePlan } from '../src/plan/validate.ts';
import { hotnessRowWisePlan, rm1Workload } from './rm1-workload.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SLA_MS = Number(process.env.SLA_MS ?? 50);
const ROWS = Number(process.env.ROWS ?? 100_000);
const STEP_S = Number(process.env.STEP_S ?? 6);
const CPUS = Number(process.env.FRONT_END_CPUS ?? 0.5);
const MULTIPLES = (process.env.MULTIPLES ?? '1,2,4,8').split(',').map(Number);
const SHARDS = Number(process.env.SHARDS ?? 0);
const log = (s: string) => process.stderr.write(`${s}\n`);

const { config, modelDir, profileFile, encoded, remove } = rm1Workload('overload', ROWS, 2000, 3);
const planFile = path.join(path.dirname(modelDir), 'plan.json');
if (SHARDS > 0) writePlan(planFile, hotnessRowWisePlan(config, SHARDS, profileFile));
const shape = SHARDS > 0 ? `disaggregated (${SHARDS} shard${SHARDS > 1 ? 's' : ''} + router with the dense half), every replica` : 'monolithic front end';
log(`model: RM1 shape, ${ROWS} rows × 10 tables, ${shape} limited to ${CPUS} CPU; SLA p99 ≤ ${SLA_MS} ms`);

interface Deployment {
  label: string;
  served: ServeProcess;
  url: string;
  /** Behind HAProxy (whose CPU its rows report). */
  balanced: boolean;
}

async function deploy(label: string, flags: string[]): Promise<Deployment> {
  const served = await startServeProcess(['--model', modelDir, ...(SHARDS > 0 ? ['--plan', planFile] : ['--monolithic']), '--sla-p99-ms', String(SLA_MS), '--replica-cpus', String(CPUS), '--drain-grace-ms', '0', ...flags], { stderr: 'inherit' });
  return { label, served, url: served.url, balanced: flags.includes('haproxy') };
}

/** The haproxy processes `serve` started (its grandchildren), whose CPU the balancer's rows report. */
function haproxyPids(servePid: number): number[] {
  const parent = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      names.set(Number(entry), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const descends = (pid: number): boolean => pid > 1 && (parent.get(pid) === servePid || descends(parent.get(pid) ?? 0));
  return [...names].filter(([pid, name]) => name === 'haproxy' && descends(pid)).map(([pid]) => pid);
}
/** The processes that answer queries (the monolith, or the router and its shards): the table's serving CPU. */
const servingPids = (d: Deployment): number[] => d.served.replicas.map((r) => r.pid);
const pct = (x: number) => (Number.isNaN(x) ? '?' : `${(100 * x).toFixed(0)}%`);
const cpuOf = (pids: number[]) => pids.reduce((s, pid) => s + processCpuSeconds(pid), 0);

/**
 * Waits until the front end has answered everything it queued: a server without admission
 * control works off its backlog long after the clients gave up, on the CPU the next step's
 * deployment needs.
 */
async function drained(d: Deployment): Promise<void> {
  const front = d.served.replicas.find((r) => r.role === 'router' || r.role === 'monolithic')!;
  const metrics = `http://127.0.0.1:${front.metricsPort}`;
  for (let i = 0; i < 600 && (await scrapeMetric(metrics, 'shardwise_inflight_requests')) > 0; i++) await new Promise((r) => setTimeout(r, 100));
}

const BALANCER = 'balancer (haproxy)';
const FIXED = 'balancer, fixed limit';
const balancerFlags = [
  ...(process.env.BALANCER_INFLIGHT ? ['--balancer-inflight', process.env.BALANCER_INFLIGHT] : []),
  ...(process.env.BALANCER_QUEUE_MS ? ['--balancer-queue-ms', process.env.BALANCER_QUEUE_MS] : []),
];
const NONE = 'no admission control';
const haproxy = findHaproxy() !== null;
if (!haproxy) log('haproxy is not installed (Debian: apt-get install haproxy): the balancer rows are skipped');
const KINDS = new Set((process.env.DEPLOYMENTS ?? 'adaptive,fixed,front-end').split(','));
const listOf = (v: string | undefined) => (v ?? '').split(',').filter(Boolean).map(Number);
const TARGETS_MS = listOf(process.env.BALANCER_TARGETS_MS);
const QUEUES_MS = listOf(process.env.BALANCER_QUEUES_MS);
const balanced = (flags: string[]) => ['--balancer', 'haproxy', ...balancerFlags, ...flags];
const specs: [label: string, flags: string[]][] = [];
if (haproxy && KINDS.has('adaptive')) specs.push([BALANCER, balanced([])]);
for (const ms of haproxy ? TARGETS_MS : []) specs.push([`balancer, target ${ms} ms`, balanced(['--balancer-target-ms', String(ms)])]);
for (const ms of haproxy ? QUEUES_MS : []) specs.push([`balancer, queue ${ms} ms`, balanced(['--balancer-queue-ms', String(ms)])]);
if (haproxy && KINDS.has('fixed')) specs.push([FIXED, balanced(['--no-balancer-adaptive'])]);
if (KINDS.has('front-end')) specs.push(['admission in the front end', []]);
specs.push([NONE, ['--no-admission']]);
// One after another: serve processes started at once would pick their free ports at once.
const deployments: Deployment[] = [];
for (const [label, flags] of specs) deployments.push(await deploy(label, flags));
const noAdmission = deployments.find((d) => d.label === NONE)!;
const target = (d: Deployment) => ({ url: d.url, modelName: config.name });
/** Every deployment warmed up before anything counts (JIT, the first onnxruntime runs, the rows' pages): a cold front end missed the SLA at 50 qps and the max search settled there. */
const WARMUP_S = 5;
const WARMUP_QPS = 200;
try {
  for (const d of deployments) {
    const w = await runOpenLoop(target(d), encoded, { qps: WARMUP_QPS, durationS: WARMUP_S, timeoutMs: 10_000 });
    log(`[${d.label}] warm-up: ${WARMUP_S} s at ${WARMUP_QPS} qps, p99 ${w.latency.p99Ms.toFixed(1)} ms (not counted)`);
  }
  log(`measuring the max QPS under the SLA (without admission control: its capacity, not its refusals), over ${STEP_S} s steps as the overload steps run…`);
  const searchMax = async (startQps: number, when: string) => {
    for (const d of deployments) await drained(d);
    const ticks = machineCpuTicks();
    const { maxQps } = await findMaxQps(target(noAdmission), encoded, { slaP99Ms: SLA_MS, stepS: STEP_S, timeoutMs: 10_000, warmupS: 1, startQps, onProgress: (l) => log(`[max ${when}] ${l.trim()}`) });
    log(`max QPS under the ${SLA_MS} ms SLA ${when}: ${maxQps.toFixed(0)} (the hypervisor stole ${pct(stealShare(ticks, machineCpuTicks()))} of the machine's CPU meanwhile)`);
    return maxQps;
  };
  const maxQps = await searchMax(50, 'before the steps');
  if (maxQps <= 0) throw new Error('the front end met the SLA at no rate tried');

  const rows: { multiple: number; d: Deployment; run: RunResult; health: HealthProbeResult; loadCpuMsPerQuery: number; balancerMsPerQuery: number | null; servingCores: number; servingMsPerAnswer: number; steal: number }[] = [];
  for (const multiple of MULTIPLES) {
    for (const d of deployments) {
      for (const other of deployments) await drained(other);
      const probe = probeHealth(`${d.url}/v2/health/ready`, 25);
      const balancer = d.balanced ? haproxyPids(d.served.child.pid!) : [];
      const balancer0 = cpuOf(balancer);
      const serving = servingPids(d);
      const serving0 = cpuOf(serving);
      const wall0 = performance.now();
      const cpu0 = process.cpuUsage();
      const ticks = machineCpuTicks();
      const seconds: SecondStats[] = [];
      const run = await runOpenLoop(target(d), encoded, { qps: multiple * maxQps, durationS: STEP_S, timeoutMs: 5000, warmupS: 1, slaMs: SLA_MS, onSecond: (x) => seconds.push(x) });
      const cpu = process.cpuUsage(cpu0);
      const steal = stealShare(ticks, machineCpuTicks());
      const health = await probe.stop();
      const balancerMsPerQuery = balancer.length ? (1000 * (cpuOf(balancer) - balancer0)) / Math.max(1, run.sent) : null;
      // Over the whole call (its warm-up second too): the answer rate is steady across it.
      const servingCores = (cpuOf(serving) - serving0) / ((performance.now() - wall0) / 1000);
      rows.push({ multiple, d, run, health, loadCpuMsPerQuery: (cpu.user + cpu.system) / 1000 / Math.max(1, run.sent), balancerMsPerQuery, servingCores, servingMsPerAnswer: (1000 * servingCores) / Math.max(1, run.achievedQps), steal });
      // Over the SLA: whether one second or all of them, and whether the sender was late then.
      if (d.label !== NONE && run.ok > 0 && run.latency.p99Ms > SLA_MS) log(`[${multiple}x ${d.label}] over the SLA; each second's admitted p99 / the sender's latest send, ms: ${seconds.map((x) => `${x.p99Ms.toFixed(0)}/${x.sendLagMaxMs.toFixed(0)}`).join(' ')}`);
      log(`[${multiple}x ${d.label}] sent ${run.sent}, ok ${run.ok} (${run.okWithinSla} within the SLA), refused ${run.rejected}, failed ${run.errors + run.timeouts}, p99 ${run.latency.p99Ms.toFixed(1)} ms, health p99 ${health.latency.p99Ms.toFixed(1)} ms, send lag p99 ${run.sendLag.p99Ms.toFixed(1)} ms`);
    }
  }

  // One stall of this VM in a step of the search is enough to miss the SLA, so the search is
  // run again after the steps, and goodput is counted against the higher of the two.
  const maxAfter = await searchMax(Math.max(50, Math.round(maxQps / 2)), 'after the steps');
  const capacity = Math.max(maxQps, maxAfter);
  console.log(`\nbench:overload — ${shape} at ${CPUS} CPU, max ${maxQps.toFixed(0)} qps at p99 ≤ ${SLA_MS} ms before the steps (the multiples' base), ${maxAfter.toFixed(0)} after; goodput ÷ ${capacity.toFixed(0)}, the higher; ${STEP_S} s per step`);
  console.log(
    renderTable(
      ['load', 'deployment', 'offered qps', 'sent/s', 'goodput (in SLA) ÷ max', 'answered/s', 'refused', 'failed', 'admitted p50 ms', 'admitted p99 ms', 'health p99 ms', 'health failures', 'load gen ms/query', 'load gen send lag p99 ms', 'balancer ms/query', 'serving cores', 'serving ms/answer', 'VM steal'],
      rows.map(({ multiple, d, run, health, loadCpuMsPerQuery, balancerMsPerQuery, servingCores, servingMsPerAnswer, steal }) => [
        `${multiple}x`,
        d.label,
        (multiple * maxQps).toFixed(0),
        (run.sent / run.durationS).toFixed(0),
        pct(run.okWithinSla / run.durationS / capacity),
        run.achievedQps.toFixed(0),
        pct(run.rejected / Math.max(1, run.sent)),
        run.errors + run.timeouts,
        run.latency.p50Ms.toFixed(1),
        run.latency.p99Ms.toFixed(1),
        health.latency.p99Ms.toFixed(1),
        health.failures,
        loadCpuMsPerQuery.toFixed(3),
        run.sendLag.p99Ms.toFixed(1),
        balancerMsPerQuery?.toFixed(3) ?? '',
        servingCores.toFixed(2),
        servingMsPerAnswer.toFixed(3),
        pct(steal),
      ]),
    ),
  );
  // The load generator shares the cores: where it sent late, its lag is in those latencies (and in its health probes').
  const lagging = rows.filter((r) => r.run.sendLag.p99Ms > SLA_MS / 10);
  if (lagging.length > 0) {
    const steps = lagging.map((r) => `${r.multiple}x ${r.d.label} (p99 ${r.run.sendLag.p99Ms.toFixed(0)} ms, max ${r.run.sendLag.maxMs.toFixed(0)} ms)`);
    console.log(`\nthe load generator itself sent late in ${lagging.length} step(s), by more than a tenth of the SLA: ${steps.join('; ')}; those latencies include its own delay`);
  }
  const at = (m: number, label: string) => rows.find((r) => r.multiple === m && r.d.label === label)!;
  const m = MULTIPLES.includes(4) ? 4 : MULTIPLES[MULTIPLES.length - 1];
  const goodput = (r: RunResult) => r.okWithinSla / r.durationS / capacity;
  const summary = deployments.map((d) => at(m, d.label)).map(({ d, run, health }) => `${d.label}: goodput ${pct(goodput(run))} of max, admitted p99 ${run.latency.p99Ms.toFixed(0)} ms, health p99 ${health.latency.p99Ms.toFixed(0)} ms`);
  console.log(`\nat ${m}x overload (SLA ${SLA_MS} ms, max ${capacity.toFixed(0)} qps): ${summary.join('; ')}`);
} finally {
  for (const d of deployments) await d.served.stop();
  remove();
}
