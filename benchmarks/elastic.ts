/**
 * npm run bench:elastic — ElasticRec's dynamic-traffic experiment (Fig 19) scaled to this
 * machine. One RM1-shaped model whose tables dominate its memory, served two ways, one after
 * the other, each a `shardwise serve --autoscale` process with every replica under a CPU
 * limit: model-wise (whole-model replicas, scaled on in-flight queries per replica) and
 * elastic (rows in the trace's hotness order, cut where the lookup share reaches 50%, 80% and
 * 95%: a small hot shard and large cold ones; every shard scaled on its lookups/s, the router
 * on in-flight queries, by the same autoscaler). Both follow the same staircase of offered load
 * (open loop, the same trace). Per deployment: memory·time and peak memory (each ready
 * replica counted at its RSS when it became ready: its rows or weights plus its fixed
 * overhead, what a cluster would reserve for it on a node of its own), seconds in SLA
 * violation (p99 of the second above the SLA), queries lost (errors, timeouts and refusals),
 * replica timelines; then the ratios. PSS sums are recorded beside (pages shared between
 * replicas on this one machine counted once), never used for the ratios.
 *
 * Writes docs/bench-elastic.json (both timelines) and docs/bench-elastic.svg (vega-lite).
 *
 * Env: ROWS per table (1000000), STAIRS qps per step (100,300,600,900,600,300,100), STEP_S (20),
 * CPUS per replica (0.25), SLA_MS (50), SYNC_S (2), DOWN_WINDOW_S (30), SHARD_LOOKUPS (unset: each shard's target is UTILIZATION, 0.7, of its capacity by a cost model calibrated first at CPUS per replica; set: one lookups/s target for every shard),
 * INFLIGHT (4) per front-end replica. Admission control is off in both: the autoscaler, not
 * refusals, is what follows the load here, and a refused query would count as lost.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { runOpenLoop, type SecondStats } from '../src/bench/load-generator.ts';
import { startServeProcess } from '../src/bench/serve-process.ts';
import { type DeploymentSample, sampleEverySecond } from '../src/bench/deployment-sample.ts';
import { cdfAt } from '../src/profile/types.ts';
import { planHotness } from '../src/profile/format.ts';
import { PLAN_FORMAT, PLAN_VERSION, type Plan } from '../src/plan/types.ts';
import { writePlan } from '../src/plan/validate.ts';
import { renderTable } from '../src/util/format.ts';
import { BATCH, rm1Workload } from './rm1-workload.ts';
import { execFileSync } from 'node:child_process';
import { BIN } from '../src/bench/serve-process.ts';

const ROWS = Number(process.env.ROWS ?? 1_000_000);
const STAIRS = (process.env.STAIRS ?? '100,300,600,900,600,300,100').split(',').map(Number);
const STEP_S = Number(process.env.STEP_S ?? 20);
const CPUS = Number(process.env.CPUS ?? 0.25);
const SLA_MS = Number(process.env.SLA_MS ?? 50);
const SYNC_S = process.env.SYNC_S ?? '2';
const DOWN_WINDOW_S = process.env.DOWN_WINDOW_S ?? '30';
const SHARD_LOOKUPS = process.env.SHARD_LOOKUPS;
const UTILIZATION = process.env.UTILIZATION ?? '0.7';
const INFLIGHT = process.env.INFLIGHT ?? '4';
const GiB = 1 << 30;
const log = (s: string) => process.stderr.write(`${s}\n`);
const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs');

log(`model: RM1 shape, ${ROWS} rows × 10 tables (${((ROWS * 10 * 32 * 4) / GiB).toFixed(2)} GiB of rows); staircase ${STAIRS.join(' → ')} qps, ${STEP_S} s a step; ${CPUS} CPU per replica; SLA p99 ≤ ${SLA_MS} ms`);
const { config, modelDir, profileFile, profile, encoded, remove } = rm1Workload('elastic', ROWS, 4000, 7);

/** The elastic plan: per table, cut in hotness order where the lookup share reaches each boundary. */
function elasticPlan(): Plan {
  const shares = [0.5, 0.8, 0.95];
  const cuts = profile.tables.map((t) => {
    const at = shares.map((share) => {
      let lo = 1;
      let hi = t.rows - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdfAt(t, mid) >= share) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    });
    return [0, ...at.map((p, i) => Math.max(p, i + 1)), t.rows];
  });
  return {
    format: PLAN_FORMAT,
    version: PLAN_VERSION,
    model: { name: config.name, tableRows: config.tables.map((t) => t.rows) },
    strategy: 'elastic-by-lookup-share',
    router: { replicas: 1, cacheRows: 0 },
    dense: { placement: 'router', replicas: 1 },
    shards: [0, 1, 2, 3].map((s) => ({ name: `shard-${s}`, replicas: 1, pieces: cuts.map((c, table) => ({ table, rowStart: c[s], rowEnd: c[s + 1] })) })),
    hotness: planHotness(profileFile),
    // The batch the cost model's shard targets are read at (lookups per query).
    workload: { targetQps: Math.max(...STAIRS), samplesPerQuery: BATCH },
  };
}

const planFile = path.join(path.dirname(modelDir), 'elastic-plan.json');
writePlan(planFile, elasticPlan());

// The shards' targets come from a cost model calibrated under the replicas' own CPU limit
// (a share, UTILIZATION, of each shard's capacity at its lookups per query), unless SHARD_LOOKUPS sets one for all.
const costFile = path.join(path.dirname(modelDir), 'cost.json');
if (!SHARD_LOOKUPS) {
  log(`calibrating at ${CPUS} CPU per replica (shardwise calibrate)…`);
  execFileSync(process.execPath, [BIN, 'calibrate', '--model', modelDir, '--out', costFile, '--batch', String(BATCH), '--replica-cpus', String(CPUS)], { stdio: ['ignore', 'inherit', 'inherit'] });
}
const targets = SHARD_LOOKUPS ? ['--shard-target-lookups', SHARD_LOOKUPS] : ['--cost', costFile, '--target-utilization', UTILIZATION];
const shape = (tS: number) => STAIRS[Math.floor(tS / STEP_S)] ?? 0;
const durationS = STAIRS.length * STEP_S;

type Second = SecondStats & Partial<DeploymentSample>;

async function run(label: string, args: string[]): Promise<Second[]> {
  log(`\n${label}: starting…`);
  const served = await startServeProcess(
    ['--model', modelDir, ...args, '--autoscale', '--sync-period-s', SYNC_S, '--scale-down-window-s', DOWN_WINDOW_S, ...targets, '--front-end-target-inflight', INFLIGHT, '--replica-cpus', String(CPUS), '--max-replicas', '8', '--sla-p99-ms', String(SLA_MS), '--no-admission', '--drain-grace-ms', '0'],
    { compiled: true, stderr: 'inherit' },
  );
  try {
    const timeline: Second[] = [];
    const sampler = sampleEverySecond(served.adminUrl, performance.now() + 2000);
    await runOpenLoop({ url: served.url, modelName: config.name }, encoded, { qps: 0, rate: shape, durationS, warmupS: 2, timeoutMs: 5000, onSecond: (s) => timeline.push(s), onProgress: (l) => log(`[${label}] ${l.trim()}`) });
    const samples = sampler.stop();
    for (const s of timeline) Object.assign(s, samples[s.t] ?? {});
    return timeline;
  } finally {
    await served.stop();
  }
}

try {
  const modelWise = await run('model-wise', ['--monolithic']);
  const elastic = await run('elastic', ['--plan', planFile]);
  const summary = (t: Second[]) => ({
    memoryGiBs: t.reduce((s, x) => s + (x.requestBytes ?? 0), 0) / GiB,
    peakGiB: Math.max(...t.map((x) => x.requestBytes ?? 0)) / GiB,
    pssGiBs: t.reduce((s, x) => s + (x.pssBytes ?? 0), 0) / GiB,
    violationS: t.filter((x) => x.p99Ms > SLA_MS).length,
    // How far past the SLA: seconds with p99 over 2x and 4x of it.
    over2xS: t.filter((x) => x.p99Ms > 2 * SLA_MS).length,
    over4xS: t.filter((x) => x.p99Ms > 4 * SLA_MS).length,
    lost: t.reduce((s, x) => s + x.errors + x.rejected, 0),
    sent: t.reduce((s, x) => s + x.sent, 0),
    maxReplicas: Object.fromEntries(Object.keys(t.find((x) => x.replicas)?.replicas ?? {}).map((k) => [k, Math.max(...t.map((x) => x.replicas?.[k] ?? 0))])),
  });
  const a = summary(modelWise);
  const b = summary(elastic);
  console.log(`\nbench:elastic — RM1 shape, ${ROWS} rows × 10 tables; staircase ${STAIRS.join('→')} qps × ${STEP_S} s; ${CPUS} CPU per replica; SLA ${SLA_MS} ms`);
  console.log(
    renderTable(
      ['deployment', 'memory·time GiB·s', 'peak GiB', 'PSS·time GiB·s', 'SLA-violation s', 'p99 > 2x SLA s', 'p99 > 4x SLA s', 'lost queries', 'sent', 'most replicas'],
      [
        ['model-wise', a.memoryGiBs.toFixed(1), a.peakGiB.toFixed(2), a.pssGiBs.toFixed(1), a.violationS, a.over2xS, a.over4xS, a.lost, a.sent, JSON.stringify(a.maxReplicas)],
        ['elastic', b.memoryGiBs.toFixed(1), b.peakGiB.toFixed(2), b.pssGiBs.toFixed(1), b.violationS, b.over2xS, b.over4xS, b.lost, b.sent, JSON.stringify(b.maxReplicas)],
      ],
    ),
  );
  fs.mkdirSync(docs, { recursive: true });
  fs.writeFileSync(path.join(docs, 'bench-elastic.json'), JSON.stringify({ rows: ROWS, stairs: STAIRS, stepS: STEP_S, cpus: CPUS, slaMs: SLA_MS, summary: { modelWise: a, elastic: b }, timelines: { modelWise, elastic } }, null, 1));
  const points = [
    ...([['model-wise', modelWise], ['elastic', elastic]] as const).flatMap(([d, t]) =>
      t.flatMap((x) => [
        { t: x.t, panel: 'queries/s', series: `${d} offered`, value: x.offered },
        { t: x.t, panel: 'queries/s', series: `${d} answered`, value: x.ok },
        { t: x.t, panel: 'p99 ms', series: d, value: x.p99Ms },
        { t: x.t, panel: 'memory GiB (replica requests)', series: d, value: (x.requestBytes ?? 0) / GiB },
        ...Object.entries(x.replicas ?? {}).map(([svc, n]) => ({ t: x.t, panel: 'replicas', series: `${d} ${svc}`, value: n })),
      ]),
    ),
  ];
  const chart = vl.compile({
    data: { values: points },
    facet: { row: { field: 'panel', type: 'nominal', title: null } },
    spec: { width: 640, height: 140, mark: { type: 'line', interpolate: 'step-after' }, encoding: { x: { field: 't', type: 'quantitative', title: 'seconds' }, y: { field: 'value', type: 'quantitative', title: null }, color: { field: 'series', type: 'nominal' } } },
    resolve: { scale: { y: 'independent' } },
    title: `bench:elastic: model-wise vs elastic on a staircase (${ROWS} rows × 10 tables, ${CPUS} CPU per replica)`,
  } as vl.TopLevelSpec).spec;
  fs.writeFileSync(path.join(docs, 'bench-elastic.svg'), await new vega.View(vega.parse(chart), { renderer: 'none' }).toSVG());
  log(`wrote ${path.join(docs, 'bench-elastic.json')} and bench-elastic.svg`);
  console.log(`\nelastic vs model-wise: memory·time ${(b.memoryGiBs / a.memoryGiBs).toFixed(2)}x, SLA-violation seconds ${b.violationS} vs ${a.violationS}, lost queries ${b.lost} and ${a.lost}`);
} finally {
  remove();
}
