import * as fs from 'node:fs';
import type { Command } from 'commander';
import { readManifest } from '../../model/store.ts';
import { configOf } from '../../model/manifest.ts';
import { writeTrace, type PoolingDistribution } from '../../workload/generate-trace.ts';
import { reuseBinLabel, traceStats, type TraceStats } from '../../workload/trace-stats.ts';
import { formatBytes, formatCount, pct, renderTable } from '../../util/format.ts';
import { accessDistribution, fraction, nonNegativeInt, oneOf, positiveInt, positiveNumber, progress } from '../options.ts';

export function renderTraceStats(stats: TraceStats): string {
  const rows = stats.tables.map((t) => [
    t.table,
    formatCount(t.rows),
    formatCount(t.lookups),
    formatCount(t.uniqueRows),
    pct(t.hot1),
    pct(t.hot10),
  ]);
  const lines = [
    `${formatCount(stats.queries)} queries, ${formatCount(stats.samples)} samples`,
    renderTable(['table', 'rows', 'lookups', 'unique rows', 'hot 1%', 'hot 10%'], rows),
    '',
    'reuse factor (accesses per touched row): share of touched rows / share of lookups',
  ];
  const bins = stats.tables.reduce((m, t) => Math.max(m, t.reuse.length), 0);
  const header = ['table', ...Array.from({ length: bins }, (_, b) => reuseBinLabel(b))];
  lines.push(
    renderTable(
      header,
      stats.tables.map((t) => [t.table, ...Array.from({ length: bins }, (_, b) => (t.reuse[b]?.rowShare ? `${pct(t.reuse[b].rowShare, 0)}/${pct(t.reuse[b].lookupShare, 0)}` : '-'))]),
    ),
  );
  return lines.join('\n');
}

export function registerTrace(program: Command): void {
  program
    .command('trace')
    .description('generate a query trace for a model: skewed per-table lookups, streamed to a binary file')
    .requiredOption('--model <dir>', 'model directory (only model.json is read)')
    .requiredOption('--queries <n>', 'number of queries', positiveInt)
    .requiredOption('--out <file>', 'trace file to write')
    .option('--batch <b>', 'samples per query', positiveInt, 1)
    .option('--locality <p>', 'share of lookups on the hottest 10% of rows (ElasticRec)', fraction)
    .option('--zipf <s>', 'Zipf exponent of row popularity', positiveNumber)
    .option('--pooling-dist <kind>', 'lookups per bag: fixed (the pooling factor) or poisson around it', oneOf(['fixed', 'poisson'] as const), 'fixed')
    .option('--seed <s>', 'random seed', nonNegativeInt, 1)
    .action((opts: { model: string; queries: number; out: string; batch: number; locality?: number; zipf?: number; poolingDist: PoolingDistribution; seed: number }) => {
      const config = configOf(readManifest(opts.model));
      const access = accessDistribution(opts);
      const started = Date.now();
      writeTrace(opts.out, config, { queries: opts.queries, batch: opts.batch, access, pooling: opts.poolingDist, seed: opts.seed }, (done) => {
        if (opts.queries >= 1000) progress(`  ${formatCount(done)}/${formatCount(opts.queries)} queries`);
      });
      const size = fs.statSync(opts.out).size;
      console.log(`wrote ${opts.out}: ${formatCount(opts.queries)} queries × batch ${opts.batch}, ${formatBytes(size)}, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

  program
    .command('trace-stats')
    .description('per-table locality statistics of a trace: unique rows, hot-row shares, reuse histogram')
    .argument('<trace>', 'trace file')
    .option('--json', 'print JSON instead of tables')
    .action((file: string, opts: { json?: boolean }) => {
      const stats = traceStats(file);
      console.log(opts.json ? JSON.stringify(stats, null, 2) : renderTraceStats(stats));
    });
}
