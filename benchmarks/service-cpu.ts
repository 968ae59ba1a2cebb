/**
 * npm run bench:cpu — where the CPU goes at a fixed load: the RM1 trace offered at QPS
 * (default 450) for DURATION_S (30) against the monolithic server and a row-wise plan of
 * SHARDS (4) in hotness order, side by side: CPU of every service process and of the load
 * generator (this process), in cores (CPU seconds per second) and ms per query, with the shares
 * spent in the kernel (system time) and on threads other than the main one, and latency.
 * CPU time is steadier than latency on a shared VM, so optimizations are judged here first.
 * Each service's CPU per query is also given as a multiple of its kernels alone on the same
 * queries in one process (benchmarks/kernel-baseline.ts): what serving costs above the math.
 *
 * Env: QPS, DURATION_S, SHARDS, ROWS per table (100000), DENSE=service (the dense half in its
 * own service instead of the router), COALESCE and QUEUE_DELAY_MS (as in bench:serving),
 * PROFILE=1 (every service runs under V8's CPU profiler; prints each one's busiest functions
 * by self time over the measured window only, not start-up). The services' own settings apply as usual:
 * SHARDWISE_SERVICE_HEAP_MB=0 runs them on V8's default heap sizing,
 * SHARDWISE_SERVICE_NODE_FLAGS=--trace-gc prints their collections. PERF=<service> (e.g. shard-1)
 * records that service's first replica with Linux `perf` over the measured window (all its
 * threads, kernel included; JIT frames named through --perf-basic-prof) and prints its top
 * symbols by self time.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Plan } from '../src/plan/types.ts';
import { compiledSupervisor } from './compiled.ts';
import { LOAD_CLIENTS, type LoadClient, runOpenLoop, type RunResult } from '../src/bench/load-generator.ts';
import { type CpuTimes, processCpuTimes } from '../src/util/process-stats.ts';
import { renderTable } from '../src/util/format.ts';
import { BATCH, LOCALITY, coalescingFromEnv, hotnessRowWisePlan, rm1Workload } from './rm1-workload.ts';
import { kernelBaseline } from './kernel-baseline.ts';

const QPS = Number(process.env.QPS ?? 450);
const DURATION_S = Number(process.env.DURATION_S ?? 30);
const SHARDS = Number(process.env.SHARDS ?? 4);
const ROWS = Number(process.env.ROWS ?? 100_000);
const DENSE = process.env.DENSE === 'service' ? 'service' : 'router';
const log = (s: string) => process.stderr.write(`${s}\n`);
const LocalSupervisor = await compiledSupervisor();
const profileDir = process.env.PROFILE === '1' ? fs.mkdtempSync(path.join(os.tmpdir(), 'shardwise-cpuprofile-')) : null;
if (profileDir) process.env.SHARDWISE_SERVICE_NODE_FLAGS = `${process.env.SHARDWISE_SERVICE_NODE_FLAGS ?? ''} --cpu-prof --cpu-prof-dir=${profileDir}`;
const PERF = process.env.PERF;
// --perf-basic-prof names JIT frames in /tmp/perf-PID.map and, as a side effect, writes V8's code log (isolate-*.log in the working directory): kept in a temporary folder instead, both removed at the end.
const perfLogDir = PERF ? fs.mkdtempSync(path.join(os.tmpdir(), 'shardwise-perf-')) : null;
if (perfLogDir) process.env.SHARDWISE_SERVICE_NODE_FLAGS = `${process.env.SHARDWISE_SERVICE_NODE_FLAGS ?? ''} --perf-basic-prof --no-logfile-per-isolate --logfile=${perfLogDir}/v8-%p.log`;

/** `perf record` of one process for `seconds`; resolves to its top symbols by self time once done. */
function perfRecord(pid: number, seconds: number): Promise<string> {
  const file = path.join(os.tmpdir(), `shardwise-perf-${pid}.data`);
  const perf = spawn('perf', ['record', '-q', '-F', '1000', '-g', '-p', String(pid), '-o', file, '--', 'sleep', String(seconds)], { stdio: 'ignore' });
  return new Promise((resolve) => {
    perf.on('error', (e) => resolve(`perf did not run (${e.message}): install linux-perf`));
    perf.on('exit', () => {
      // By library first (the kernel, node's C++ and builtins, JIT-compiled JavaScript, the addon, onnxruntime, libc), then by symbol.
      const top = (sort: string, n: number) => {
        const report = spawnSync('perf', ['report', '-i', file, '--no-children', '--sort', sort, '-g', 'none', '--stdio'], { encoding: 'utf8' });
        return (report.stdout ?? '').split('\n').filter((l) => /%/.test(l) && !l.startsWith('#')).slice(0, n).join('\n') || `perf report gave nothing: ${report.stderr}`;
      };
      const byDso = top('dso', 8);
      const bySymbol = top('dso,sym', 15);
      fs.rmSync(file, { force: true });
      resolve(`by library:\n${byDso}\nby symbol:\n${bySymbol}`);
    });
  });
}
let perfReport: Promise<string> | null = null;

log(`model: RM1 shape, ${ROWS} rows × 10 tables; trace: 2000 queries of batch ${BATCH} at locality ${LOCALITY}; ${QPS} qps offered for ${DURATION_S} s`);
const { config, modelDir, profileFile, queries, encoded, remove } = rm1Workload('cpu', ROWS, 2000, 2);
const plan = hotnessRowWisePlan(config, SHARDS, profileFile, DENSE);
log('kernels alone, in this process, on the same queries …');
const kernels = await kernelBaseline(modelDir, config, plan, queries);

interface Measured {
  label: string;
  /** Service of each replica's pid, to name its CPU profile. */
  pids: Map<number, string>;
  /** CPU seconds per service (replicas summed) over the measured window. */
  cpu: Map<string, ServiceCpu>;
  /** The measured window on the monotonic clock V8's profiles use, in µs. */
  windowUs: [number, number];
  /** Seconds spent per `service/stage` over the window, from the services' stage histograms. */
  stages: Map<string, number>;
  run: RunResult;
}

/** Per `service/stage`, the sum of its duration histogram on one replica's metrics port. */
async function stageSeconds(metricsPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^shardwise_request_duration_seconds_sum\{service="([^"]+)",stage="([^"]+)"\} (\S+)$/gm)) out.set(`${m[1]}/${m[2]}`, Number(m[3]));
  return out;
}

async function allStageSeconds(ports: number[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const one of await Promise.all(ports.map(stageSeconds))) for (const [k, v] of one) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

/** The load generator's CPU ms per query through its other clients (its default is raw), on the monolith. */
const otherClientMs = new Map<LoadClient, number>();

/** A service's CPU over the window: all of it, in the kernel (system time), and on threads other than its main (JavaScript) thread: V8's GC and compiler, libuv's pool. */
interface ServiceCpu {
  total: number;
  system: number;
  otherThreads: number;
}

/** CPU times of a process, all threads and its main thread. */
const cpuSnapshot = (pid: number): { all: CpuTimes; main: CpuTimes } => ({ all: processCpuTimes(pid), main: processCpuTimes(pid, pid) });

function cpuSince(pid: number, before: { all: CpuTimes; main: CpuTimes }): ServiceCpu {
  const now = cpuSnapshot(pid);
  const total = now.all.user + now.all.system - before.all.user - before.all.system;
  const main = now.main.user + now.main.system - before.main.user - before.main.system;
  return { total, system: now.all.system - before.all.system, otherThreads: total - main };
}

const addCpu = (a: ServiceCpu | undefined, b: ServiceCpu): ServiceCpu => (a ? { total: a.total + b.total, system: a.system + b.system, otherThreads: a.otherThreads + b.otherThreads } : b);

async function measure(label: string, plan: Plan | null): Promise<Measured> {
  log(`== ${label}`);
  // No admission control: at a fixed load under capacity, a refusal on a scheduling stall would only skew the per-query figures.
  const sup = new LocalSupervisor({ modelDir, plan, port: 0, deadlineMs: 5000, coalesce: coalescingFromEnv(), admission: null });
  await sup.start();
  try {
    const target = { url: `http://127.0.0.1:${sup.routerPort}`, modelName: config.name };
    await runOpenLoop(target, encoded, { qps: QPS, durationS: 2, timeoutMs: 10_000 }); // warm-up: JIT, connections
    const replicas = sup.replicas();
    const ports = replicas.map((r) => r.metricsPort);
    const stagesBefore = await allStageSeconds(ports);
    const before = replicas.map((r) => cpuSnapshot(r.pid));
    const self = cpuSnapshot(process.pid);
    const from = Number(process.hrtime.bigint() / 1000n);
    const perfTarget = PERF ? replicas.find((r) => r.service === PERF) : undefined;
    if (perfTarget) perfReport = perfRecord(perfTarget.pid, DURATION_S);
    const run = await runOpenLoop(target, encoded, { qps: QPS, durationS: DURATION_S, timeoutMs: 10_000 });
    const selfCpu = cpuSince(process.pid, self);
    const windowUs: [number, number] = [from, Number(process.hrtime.bigint() / 1000n)];
    const stages = await allStageSeconds(ports);
    for (const [k, v] of stagesBefore) stages.set(k, stages.get(k)! - v);
    const cpu = new Map<string, ServiceCpu>();
    replicas.forEach((r, i) => cpu.set(r.service, addCpu(cpu.get(r.service), cpuSince(r.pid, before[i]))));
    cpu.set('load generator (this process)', selfCpu);
    log(`  ${run.achievedQps.toFixed(0)} qps served, p99 ${run.latency.p99Ms.toFixed(1)} ms`);
    if (!plan) {
      // The load generator's baselines: the same load on the same deployment through its other clients.
      for (const client of LOAD_CLIENTS.filter((c) => c !== 'raw')) {
        const base = process.cpuUsage();
        const baseline = await runOpenLoop(target, encoded, { qps: QPS, durationS: DURATION_S, timeoutMs: 10_000, client });
        const used = process.cpuUsage(base);
        otherClientMs.set(client, (used.user + used.system) / 1000 / baseline.ok);
        log(`  load generator through ${client}: ${otherClientMs.get(client)!.toFixed(3)} ms CPU per query`);
      }
    }
    return { label, pids: new Map(replicas.map((r) => [r.pid, r.service])), windowUs, cpu, stages, run };
  } finally {
    await sup.stop();
  }
}

const deployments = [await measure('monolithic', null), await measure(`disaggregated: ${SHARDS} shards, row-wise in hotness order, dense ${DENSE === 'service' ? 'service' : 'in router'}, cache 2%`, plan)];

const perQueryOf = (d: Measured, service: string) => (1000 * d.cpu.get(service)!.total) / d.run.ok;

/** The kernels' CPU ms per query of a service, where bench:cpu has one (the dense service's is not split out). */
const kernelMs = (service: string): number | undefined => (service === 'model' ? kernels.monolith : service === 'router' && DENSE === 'router' ? kernels.router : kernels.shards.get(service));
const multiple = (service: string, ms: number) => {
  const k = kernelMs(service);
  return k === undefined ? '' : `${(ms / k).toFixed(1)}x`;
};

const rows: (string | number)[][] = [];
for (const d of deployments) {
  const queries = d.run.ok;
  const services = d.cpu.size - 1;
  let total = 0;
  let system = 0;
  let otherThreads = 0;
  const share = (part: number, of: number) => `${Math.round((100 * part) / Math.max(of, 1e-9))}%`;
  for (const [service, c] of d.cpu) {
    if (!service.startsWith('load generator')) {
      total += c.total;
      system += c.system;
      otherThreads += c.otherThreads;
    }
    const ms = (1000 * c.total) / queries;
    rows.push([d.label, service, (c.total / DURATION_S).toFixed(3), ms.toFixed(3), share(c.system, c.total), share(c.otherThreads, c.total), kernelMs(service)?.toFixed(3) ?? '', multiple(service, ms)]);
  }
  rows.push([d.label, `all ${services} services`, (total / DURATION_S).toFixed(3), ((1000 * total) / queries).toFixed(3), share(system, total), share(otherThreads, total), '', '']);
}
console.log(`\nbench:cpu — RM1 shape, ${ROWS} rows/table, batch ${BATCH}, ${QPS} qps offered for ${DURATION_S} s, everything on this machine`);
console.log(renderTable(['deployment', 'process', 'cores', 'CPU ms per query', 'in the kernel', 'off the main thread', 'kernels ms per query', 'x kernels'], rows));
console.log('');
for (const d of deployments) {
  const l = d.run.latency;
  console.log(`${d.label}: ${d.run.achievedQps.toFixed(0)} qps served, p50 ${l.p50Ms.toFixed(2)} ms, p99 ${l.p99Ms.toFixed(2)} ms, refused ${d.run.rejected}, errors ${d.run.errors + d.run.timeouts}`);
}
const rawMs = perQueryOf(deployments[0], 'load generator (this process)');
console.log(`load generator CPU per query on the monolith: raw ${rawMs.toFixed(3)} ms, ${[...otherClientMs].map(([c, ms]) => `${c} ${ms.toFixed(3)} ms (raw ${(rawMs / ms).toFixed(2)}x)`).join(', ')}`);
console.log('\nwall time per query in each stage (stage histograms; includes waiting, so stages overlap):');
for (const d of deployments) {
  const parts = [...d.stages].filter(([k]) => !k.endsWith('/total')).map(([k, v]) => `${k} ${((1000 * v) / d.run.ok).toFixed(3)} ms`);
  console.log(`  ${d.label}: ${parts.join(', ') || '(none besides total)'}`);
}
const servicesCpu = (d: Measured) => [...d.cpu].filter(([s]) => !s.startsWith('load generator')).reduce((sum, [, c]) => sum + c.total, 0) / d.run.ok;
console.log(`the monolith's kernels alone with the caches flushed before each query: ${kernels.monolithColdCache.toFixed(3)} ms (${(kernels.monolithColdCache / kernels.monolith).toFixed(2)}x warm); the monolith serving is ${(perQueryOf(deployments[0], 'model') / kernels.monolithColdCache).toFixed(1)}x that`);
console.log(`service CPU per query, disaggregated ÷ monolithic: ${(servicesCpu(deployments[1]) / servicesCpu(deployments[0])).toFixed(2)}×`);

if (profileDir) {
  // Main-thread profiles are CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile, written when a service exits.
  for (const d of deployments) {
    for (const file of fs.readdirSync(profileDir)) {
      const m = /^CPU\.\d+\.\d+\.(\d+)\.0\.\d+\.cpuprofile$/.exec(file);
      const service = m && d.pids.get(Number(m[1]));
      if (!service) continue;
      const { busyMs, top } = summarizeProfile(JSON.parse(fs.readFileSync(path.join(profileDir, file), 'utf8')), d.windowUs, 10);
      console.log(`\nprofile of ${d.label} / ${service} (measured window, ${(busyMs / 1000).toFixed(1)} s busy): ${top.map(([f, share]) => `${f} ${(100 * share).toFixed(1)}%`).join(', ')}`);
    }
  }
  fs.rmSync(profileDir, { recursive: true, force: true });
}
if (perfLogDir) {
  console.log(`\nperf of ${PERF} over the measured window, by self time (all threads):\n${perfReport ? await perfReport : `no service named ${PERF}`}`);
  fs.rmSync(perfLogDir, { recursive: true, force: true });
  for (const d of deployments) for (const pid of d.pids.keys()) fs.rmSync(`/tmp/perf-${pid}.map`, { force: true });
}
remove();

const shardMultiples = plan.shards.map((s) => perQueryOf(deployments[1], s.name) / kernels.shards.get(s.name)!);
const generatorMs = deployments.map((d) => perQueryOf(d, 'load generator (this process)'));
console.log(
  `\nmonolith ${multiple('model', perQueryOf(deployments[0], 'model'))} kernels, ` +
    (DENSE === 'router' ? `router ${multiple('router', perQueryOf(deployments[1], 'router'))}, ` : '') +
    `shards ${Math.min(...shardMultiples).toFixed(1)}-${Math.max(...shardMultiples).toFixed(1)}x; load generator ${Math.min(...generatorMs).toFixed(2)}-${Math.max(...generatorMs).toFixed(2)} ms/query`,
);

/** V8 .cpuprofile: the busiest functions by self time within [from, to] µs (its clock), as shares of the non-idle samples. */
function summarizeProfile(
  profile: { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; startTime: number; samples: number[]; timeDeltas: number[] },
  [from, to]: [number, number],
  n: number,
) {
  const frame = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const self = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i];
    const f = frame.get(id)!;
    if (at < from || at > to || f.functionName === '(idle)') return;
    const name = `${f.functionName || '(anonymous)'}${f.url ? ` (${path.basename(f.url)})` : ''}`;
    self.set(name, (self.get(name) ?? 0) + profile.timeDeltas[i]);
    busy += profile.timeDeltas[i];
  });
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => [name, us / busy] as const);
  return { busyMs: busy / 1000, top };
}
