/**
 * npm run bench:replica — what a replica costs before it serves anything: idle fixed memory per
 * role (RSS minus the rows or weights it holds) and time from spawn to ready, for shard,
 * dense, router, monolith and the supervisor, with every process running the compiled
 * JavaScript (production) and, side by side in the same run, the TypeScript sources under
 * tsx (how services ran before the build).
 *
 * Env: ROWS per table (default 100000), SHARDS (4), SETTLE_S idle seconds before measuring (3).
 */
import { startServeProcess, type ServeProcess } from '../src/bench/serve-process.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { writePlan } from '../src/plan/validate.ts';
import type { Plan } from '../src/plan/types.ts';
import { FLOAT_BYTES, denseBytes, embeddingBytes } from '../src/model/types.ts';
import { formatBytes, renderTable } from '../src/util/format.ts';
import { processRss } from '../src/util/process-stats.ts';
import { rm1Workload } from './rm1-workload.ts';
import * as path from 'node:path';

const ROWS = Number(process.env.ROWS ?? 100_000);
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
        rows.push({ mode, role: r.role, rss: processRss(r.pid), held: heldBytes(r.role, r.service), startMs: r.startMs });
      }
      if (args[0] === '--plan') rows.push({ mode, role: 'supervisor', rss: processRss(served.child.pid!), held: 0, startMs: NaN });
    } finally {
      await served.stop();
    }
  }
  return rows;
}

try {
  const compiled = await measure('compiled');
  const tsx = await measure('tsx');
  const MiB = 1 << 20;
  const fixed = (r: Row) => Math.max(0, r.rss - r.held);
  console.log(`\nbench:replica — RM1 shape, ${ROWS} rows × ${T} tables, ${SHARDS} shards + dense service + router (cache ${cacheRows} rows/table), and the monolith; idle after ${SETTLE_S} s`);
  console.log(
    renderTable(
      ['role', 'RSS compiled', 'holds', 'fixed compiled', 'fixed tsx', 'compiled ÷ tsx', 'ready compiled', 'ready tsx'],
      compiled.map((c) => {
        const t = tsx.find((x) => x.role === c.role)!;
        return [c.role, formatBytes(c.rss), formatBytes(c.held), formatBytes(fixed(c)), formatBytes(fixed(t)), `${(fixed(c) / fixed(t)).toFixed(2)}x`, Number.isNaN(c.startMs) ? '-' : `${c.startMs.toFixed(0)} ms`, Number.isNaN(t.startMs) ? '-' : `${t.startMs.toFixed(0)} ms`];
      }),
    ),
  );
  const of = (role: string) => (fixed(compiled.find((r) => r.role === role)!) / MiB).toFixed(0);
  console.log(`\nidle shard ${of('shard')} MiB, router ${of('router')} MiB, dense ${of('dense')} MiB, monolith ${of('monolithic')} MiB, supervisor ${of('supervisor')} MiB (targets: shard ≤ 45, router ≤ 90, supervisor ≤ 60)`);
} finally {
  remove();
}
