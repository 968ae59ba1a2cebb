/**
 * npm run bench:replica — what a replica costs before it serves anything: idle fixed memory per
 * role (RSS minus the rows or weights it holds, and of that its private pages: what it shares
 * with the other processes, the node binary's pages above all, left out) and time from spawn to ready, for shard,
 * dense, router, monolith and the supervisor, with every process running the compiled
 * JavaScript (production) and, side by side in the same run, the TypeScript sources under
 * tsx (how services ran before the build).
 *
 * Then a shard's start with ~1 GiB of rows (one shard of an RM1-shaped model, in a trace
 * profile's hotness order), `shardwise shard` spawned to its ready line, page cache cold
 * (dropped, as root) and warm: rows streamed through the permutation (no ordered copies:
 * how shards loaded before), read from the hotness-ordered copies, and mapped from them; then
 * two mapped replicas at once (RSS and PSS of each) and the gather over mapped and read rows.
 *
 * Env: ROWS per table (default 100000), SHARDS (4), SETTLE_S idle seconds before measuring (3);
 * START_ROWS per table of the start-up model (1000000: 1.19 GiB), START_RUNS per mode (3).
 */
import { startServeProcess, type ServeProcess } from '../src/bench/serve-process.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { writePlan } from '../src/plan/validate.ts';
import type { Plan } from '../src/plan/types.ts';
import { FLOAT_BYTES, denseBytes, embeddingBytes } from '../src/model/types.ts';
import { formatBytes, renderTable } from '../src/util/format.ts';
import { mappedFileMemory, processPss, processRss, processUss } from '../src/util/process-stats.ts';
import { rm1Workload } from './rm1-workload.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DEFAULT_ROW_LOADING, readManifest, type RowLoading } from '../src/model/store.ts';
import { configOf } from '../src/model/manifest.ts';
import { planHotness } from '../src/profile/format.ts';
import { ensureOrderedTables } from '../src/profile/ordered-tables.ts';
import { loadHotnessRanges } from '../src/serving/hotness.ts';
import { embeddingBag } from '../src/kernels/embedding-bag.ts';
import { compiledPods } from './compiled.ts';

const ROWS = Number(process.env.ROWS ?? 100_000);
const START_ROWS = Number(process.env.START_ROWS ?? 1_000_000);
const START_RUNS = Number(process.env.START_RUNS ?? 3);
const SHARDS = Number(process.env.SHARDS ?? 4);
const SETTLE_S = Number(process.env.SETTLE_S ?? 3);
const log = (s: string) => process.stderr.write(`${s}\n`);

const { config, modelDir, remove } = rm1Workload('replica', ROWS, 10, 1);
const T = config.tables.length;
const d = config.embeddingDim;
const cacheRows = Math.round(ROWS * 0.02);
const plan: Plan = rowWisePlan(config, { shards: SHARDS, replicas: 1, cacheRows, dense: 'service', denseReplicas: 1 });
const planFile = path.join(path.dirname(modelDir), 'plan.json');
writePlan(planFile, plan);

/** The bytes of model a replica holds by design: what its fixed overhead is measured above. */
function heldBytes(role: string, service: string): number {
  if (role === 'shard') return plan.shards.find((s) => s.name === service)!.pieces.reduce((n, p) => n + (p.rowEnd - p.rowStart) * d * FLOAT_BYTES, 0);
  if (role === 'dense') return denseBytes(config);
  // The router: its cache rows and one 4-byte route code per row per table.
  if (role === 'router') return T * cacheRows * d * FLOAT_BYTES + T * ROWS * 4;
  if (role === 'monolithic') return embeddingBytes(config) + denseBytes(config);
  return 0;
}

interface Row {
  mode: string;
  role: string;
  rss: number;
  /** Its private pages (USS): RSS less what it shares with the other processes, the node binary's pages first. */
  uss: number;
  held: number;
  startMs: number;
}

async function measure(mode: 'compiled' | 'tsx'): Promise<Row[]> {
  const rows: Row[] = [];
  for (const args of [['--plan', planFile], ['--monolithic']]) {
    log(`${mode}: serve ${args.join(' ')}…`);
    const served: ServeProcess = await startServeProcess(['--model', modelDir, ...args, '--drain-grace-ms', '0'], { compiled: mode === 'compiled' });
    try {
      await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
      const seen = new Set<string>();
      for (const r of served.replicas) {
        // One row per role (shards alike differ only by their rows, which are subtracted); the first shard's.
        if (seen.has(r.role)) continue;
        seen.add(r.role);
        rows.push({ mode, role: r.role, rss: processRss(r.pid), uss: processUss(r.pid), held: heldBytes(r.role, r.service), startMs: r.startMs });
      }
      if (args[0] === '--plan') rows.push({ mode, role: 'supervisor', rss: processRss(served.child.pid!), uss: processUss(served.child.pid!), held: 0, startMs: NaN });
    } finally {
      await served.stop();
    }
  }
  return rows;
}

/** Drops the page cache (root only); false where it cannot. */
function dropPageCache(): boolean {
  try {
    execFileSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

interface StartRow {
  mode: string;
  cache: 'cold' | 'warm';
  readyMs: number[];
  rowsMs: number[];
}

/** Spawn-to-ready of a 1-shard plan's shard, per way of loading its rows, cold and warm; then sharing and gather speed. */
async function shardStart(): Promise<{ rows: StartRow[]; shardBytes: number; copyS: number; sharing: string; gather: string; coldSkipped: boolean }> {
  const { startPod } = await compiledPods();
  log(`start-up model: RM1 shape, ${START_ROWS} rows × 10 tables…`);
  const work = rm1Workload('replica-start', START_ROWS, 2000, 2);
  try {
    const { config: cfg, modelDir: dir, profileFile } = work;
    const startPlan: Plan = { ...rowWisePlan(cfg, { shards: 1, replicas: 1, cacheRows: 0, dense: 'router', denseReplicas: 1 }), hotness: planHotness(profileFile) };
    const file = path.join(path.dirname(dir), 'start-plan.json');
    writePlan(file, startPlan);
    const shardBytes = startPlan.shards[0].pieces.reduce((n, p) => n + (p.rowEnd - p.rowStart) * cfg.embeddingDim * FLOAT_BYTES, 0);
    const spawnShard = async (rows: RowLoading) => {
      const t0 = performance.now();
      const pod = await startPod(['shard', '--model', dir, '--plan', file, '--service', 'shard-0', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--rows', rows, '--drain-grace-ms', '0'], [], 600_000);
      const readyMs = performance.now() - t0;
      const m = / of rows (?:mapped|read) from the (.+?) in (\d+) ms/.exec(pod.log());
      return { pod, readyMs, rowsMs: m ? Number(m[2]) : NaN, source: m?.[1] ?? '?' };
    };
    const modes: { mode: string; rows: RowLoading; copies: boolean }[] = [
      { mode: 'streamed through the permutation (before)', rows: 'read', copies: false },
      { mode: 'read from the ordered copy', rows: 'read', copies: true },
      ...(DEFAULT_ROW_LOADING === 'map' ? [{ mode: 'mapped from the ordered copy', rows: 'map' as const, copies: true }] : []),
    ];
    const out: StartRow[] = [];
    let copyS = NaN;
    let coldSkipped = false;
    for (const m of modes) {
      if (m.copies && Number.isNaN(copyS)) {
        const t0 = performance.now();
        ensureOrderedTables(dir, readManifest(dir), startPlan.hotness!);
        copyS = (performance.now() - t0) / 1000;
        log(`ordered copies written in ${copyS.toFixed(1)} s`);
      }
      for (const cache of ['cold', 'warm'] as const) {
        const row: StartRow = { mode: m.mode, cache, readyMs: [], rowsMs: [] };
        for (let run = 0; run < START_RUNS; run++) {
          if (cache === 'cold' && !dropPageCache()) {
            coldSkipped = true;
            break;
          }
          const { pod, readyMs, rowsMs, source } = await spawnShard(m.rows);
          await pod.stop();
          if (!source.startsWith(m.copies ? 'hotness-ordered' : 'tables streamed')) throw new Error(`${m.mode}: the shard loaded from the ${source}`);
          row.readyMs.push(readyMs);
          row.rowsMs.push(rowsMs);
          log(`${m.mode}, ${cache}: ready in ${readyMs.toFixed(0)} ms (rows ${rowsMs} ms)`);
        }
        if (row.readyMs.length) out.push(row);
      }
    }
    // Two mapped replicas of the shard at once: each maps the same pages.
    let sharing = 'mapping needs the native addon';
    if (DEFAULT_ROW_LOADING === 'map') {
      const pods = [(await spawnShard('map')).pod, (await spawnShard('map')).pod];
      try {
        await new Promise((r) => setTimeout(r, 1000));
        sharing = pods
          .map((p, i) => {
            const mapped = mappedFileMemory(p.child.pid!, dir);
            return `replica ${i}: RSS ${formatBytes(processRss(p.child.pid!))}, PSS ${formatBytes(processPss(p.child.pid!))} (its rows: RSS ${formatBytes(mapped.rss)}, PSS ${formatBytes(mapped.pss)})`;
          })
          .join('; ');
      } finally {
        await Promise.all(pods.map((p) => p.stop()));
      }
    }
    return { rows: out, shardBytes, copyS, sharing, gather: gatherSpeed(dir, startPlan), coldSkipped };
  } finally {
    work.remove();
  }
}

/** ns per row gathered from the shard's rows mapped and read, over the same random ids (the native kernel where built). */
function gatherSpeed(dir: string, startPlan: Plan): string {
  const manifest = readManifest(dir);
  const cfg = configOf(manifest);
  const pieces = startPlan.shards[0].pieces;
  const loadings: RowLoading[] = DEFAULT_ROW_LOADING === 'map' ? ['map', 'read'] : ['read'];
  const tables = loadings.map((l) => loadHotnessRanges(dir, manifest, startPlan, cfg, pieces, l).tables);
  const d = cfg.embeddingDim;
  const bags = 256;
  const perBag = 80;
  const ids = new Int32Array(bags * perBag);
  const offsets = Int32Array.from({ length: bags + 1 }, (_, i) => i * perBag);
  const out = new Float32Array(bags * d);
  const ns = loadings.map(() => 0);
  const rounds = 200;
  for (let r = 0; r < rounds; r++) {
    const t = r % pieces.length;
    const rows = pieces[t].rowEnd - pieces[t].rowStart;
    for (let i = 0; i < ids.length; i++) ids[i] = Math.floor(Math.random() * rows);
    // Alternating which goes first, so neither always finds the other's rows in cache.
    for (const k of r % 2 ? [...loadings.keys()].reverse() : loadings.keys()) {
      const t0 = performance.now();
      embeddingBag(tables[k][t].data, d, ids, offsets, null, false, bags, 0, 1, out, 0, d);
      ns[k] += performance.now() - t0;
    }
  }
  return loadings.map((l, k) => `${l === 'map' ? 'mapped' : 'read'} ${((ns[k] * 1e6) / (rounds * ids.length)).toFixed(1)} ns/row`).join(', ');
}

try {
  const compiled = await measure('compiled');
  const tsx = await measure('tsx');
  const MiB = 1 << 20;
  const fixed = (r: Row) => Math.max(0, r.rss - r.held);
  const fixedPrivate = (r: Row) => Math.max(0, r.uss - r.held);
  console.log(`\nbench:replica — RM1 shape, ${ROWS} rows × ${T} tables, ${SHARDS} shards + dense service + router (cache ${cacheRows} rows/table), and the monolith; idle after ${SETTLE_S} s`);
  console.log(
    renderTable(
      ['role', 'RSS compiled', 'holds', 'fixed compiled', 'of which private', 'fixed tsx', 'compiled ÷ tsx', 'ready compiled', 'ready tsx'],
      compiled.map((c) => {
        const t = tsx.find((x) => x.role === c.role)!;
        return [c.role, formatBytes(c.rss), formatBytes(c.held), formatBytes(fixed(c)), formatBytes(fixedPrivate(c)), formatBytes(fixed(t)), `${(fixed(c) / fixed(t)).toFixed(2)}x`, Number.isNaN(c.startMs) ? '-' : `${c.startMs.toFixed(0)} ms`, Number.isNaN(t.startMs) ? '-' : `${t.startMs.toFixed(0)} ms`];
      }),
    ),
  );
  const of = (role: string, size = fixed) => (size(compiled.find((r) => r.role === role)!) / MiB).toFixed(0);
  const idle = `idle shard ${of('shard')} MiB, router ${of('router')} MiB, dense ${of('dense')} MiB, monolith ${of('monolithic')} MiB, supervisor ${of('supervisor')} MiB (targets: shard ≤ 45, router ≤ 90, supervisor ≤ 60); private: shard ${of('shard', fixedPrivate)} MiB, router ${of('router', fixedPrivate)} MiB, supervisor ${of('supervisor', fixedPrivate)} MiB`;
  console.log(`\n${idle}`);

  const start = await shardStart();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`\nshard start: one shard of ${formatBytes(start.shardBytes)} of rows (RM1 shape, ${START_ROWS} rows × 10 tables), \`shardwise shard\` spawned to its ready line, median of ${START_RUNS}; ordered copies written once in ${start.copyS.toFixed(1)} s${start.coldSkipped ? '; cold runs skipped (dropping the page cache needs root)' : ''}`);
  console.log(renderTable(['rows', 'page cache', 'ready', 'of which rows', 'runs'], start.rows.map((r) => [r.mode, r.cache, `${median(r.readyMs).toFixed(0)} ms`, `${median(r.rowsMs).toFixed(0)} ms`, r.readyMs.map((x) => x.toFixed(0)).join(' / ')])));
  console.log(`two mapped replicas at once: ${start.sharing}`);
  console.log(`gather over the same ids: ${start.gather}`);
  const ready = (mode: string, cache: string) => {
    const r = start.rows.find((x) => x.mode.startsWith(mode) && x.cache === cache);
    return r ? `${(median(r.readyMs) / 1000).toFixed(2)} s` : 'n/a';
  };
  console.log(`\n${idle}; ${formatBytes(start.shardBytes)} shard ready: mapped ${ready('mapped', 'warm')} warm, ${ready('mapped', 'cold')} cold; streamed ${ready('streamed', 'warm')} warm, ${ready('streamed', 'cold')} cold (target: < 1 s warm)`);
} finally {
  remove();
}
