import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { presetConfig } from '../../model/presets.ts';
import { generateModel } from '../../model/generate.ts';
import { loadModel } from '../../model/store.ts';
import { ReferenceModel } from '../../reference/reference-model.ts';
import { writeTrace } from '../../workload/generate-trace.ts';
import { readQueries } from '../../workload/trace-format.ts';
import { traceStats } from '../../workload/trace-stats.ts';
import { embeddingBagBackend } from '../../kernels/embedding-bag.ts';
import { LatencyRecorder } from '../../util/latency.ts';
import { formatCount, pct } from '../../util/format.ts';
import { nonNegativeInt, positiveInt, progress } from '../options.ts';
import { describeModel } from './generate.ts';
import { renderTraceStats } from './trace.ts';

interface DemoOptions {
  dir: string;
  rows: number;
  queries: number;
  batch: number;
  locality: number;
  seed: number;
}

/**
 * The end-to-end job `npm start` runs on an embedded default: generate an RM1-shaped model
 * scaled to fit, generate a skewed trace, score every query with the reference and report.
 */
async function runDemo(opts: DemoOptions): Promise<void> {
  const modelDir = path.join(opts.dir, 'model');
  const traceFile = path.join(opts.dir, 'trace.bin');
  fs.mkdirSync(opts.dir, { recursive: true });

  progress(`[1/4] generating an RM1-shaped model (tables capped at ${formatCount(opts.rows)} rows) in ${modelDir}`);
  const config = presetConfig('rm1', opts.rows);
  generateModel(modelDir, config, opts.seed);

  progress(`[2/4] generating ${formatCount(opts.queries)} queries (batch ${opts.batch}, locality ${opts.locality}) in ${traceFile}`);
  writeTrace(traceFile, config, { queries: opts.queries, batch: opts.batch, access: { kind: 'locality', p: opts.locality }, pooling: 'fixed', seed: opts.seed });

  progress('[3/4] measuring the trace');
  const stats = traceStats(traceFile);

  progress('[4/4] scoring every query with the in-process reference model');
  const model = loadModel(modelDir);
  const reference = await ReferenceModel.create(model);
  const { queries } = readQueries(traceFile);
  const latency = new LatencyRecorder();
  let sum = 0;
  let min = 1;
  let max = 0;
  const started = performance.now();
  try {
    for (const q of queries) {
      const t0 = performance.now();
      const scores = await reference.predict(q);
      latency.recordMs(performance.now() - t0);
      for (const s of scores) {
        sum += s;
        min = Math.min(min, s);
        max = Math.max(max, s);
      }
    }
  } finally {
    await reference.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const l = latency.summary();
  const samples = queries.length * opts.batch;

  console.log('\n=== shardwise demo report ===');
  console.log(describeModel(config));
  console.log(`kernels: embedding-bag ${embeddingBagBackend}, MLP ${reference.dense.backend}`);
  console.log('\ntrace (first 3 tables):');
  console.log(renderTraceStats({ ...stats, tables: stats.tables.slice(0, 3) }));
  console.log('\nreference inference (one process, one core):');
  console.log(`  ${formatCount(queries.length)} queries, ${formatCount(samples)} samples in ${seconds.toFixed(2)} s → ${(queries.length / seconds).toFixed(0)} queries/s, ${(samples / seconds).toFixed(0)} samples/s`);
  console.log(`  latency per query: p50 ${l.p50Ms.toFixed(2)} ms, p95 ${l.p95Ms.toFixed(2)} ms, p99 ${l.p99Ms.toFixed(2)} ms, max ${l.maxMs.toFixed(2)} ms`);
  console.log(`  scores: mean ${(sum / samples).toFixed(4)}, min ${min.toFixed(4)}, max ${max.toFixed(4)}`);
  console.log(`  hottest 10% of rows take ${pct(stats.tables[0].hot10)} of table 0's lookups: the skew shardwise's planner exploits`);
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('end-to-end run on an embedded default (what `npm start` runs)')
    .option('--dir <dir>', 'working directory for the model and trace', 'out/demo')
    .option('--rows <n>', 'rows per table', positiveInt, 100_000)
    .option('--queries <n>', 'queries to score', positiveInt, 2000)
    .option('--batch <b>', 'samples per query', positiveInt, 8)
    .option('--locality <p>', 'share of lookups on the hottest 10% of rows', Number, 0.9)
    .option('--seed <s>', 'random seed', nonNegativeInt, 1)
    .action(runDemo);
}
