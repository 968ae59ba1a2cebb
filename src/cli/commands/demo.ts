import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { presetConfig } from '../../model/presets.ts';
import { generateModel } from '../../model/generate.ts';
import { loadModel } from '../../model/store.ts';
import { writeTrace } from '../../workload/generate-trace.ts';
import { readQueries } from '../../workload/trace-format.ts';
import { traceStats } from '../../workload/trace-stats.ts';
import { rowWisePlan } from '../../planner/row-wise.ts';
import { writePlan } from '../../plan/validate.ts';
import { profileFromTrace } from '../../profile/build.ts';
import { planHotness, writeProfile } from '../../profile/format.ts';
import { LocalSupervisor } from '../../cluster/supervisor.ts';
import { DEFAULT_COALESCING } from '../../serving/coalescing-engine.ts';
import { inferBinary, scrapeMetric } from '../../protocol/oip-client.ts';
import { embeddingBagBackend } from '../../kernels/embedding-bag.ts';
import { formatBytes, formatCount, pct } from '../../util/format.ts';
import { processRss } from '../../util/process-stats.ts';
import { fraction, nonNegativeInt, positiveInt, positiveNumber, progress } from '../options.ts';
import { describeModel } from './generate.ts';
import { renderTraceStats } from './trace.ts';
import { renderReplicas } from './serve.ts';
import { renderRun } from './bench.ts';

interface DemoOptions {
  dir: string;
  rows: number;
  queries: number;
  batch: number;
  locality: number;
  shards: number;
  qps: number;
  duration: number;
  seed: number;
}

/** Queries checked against the in-process reference before the load starts. */
const PARITY_QUERIES = 50;

/**
 * The end-to-end job `npm start` runs on an embedded default: generate an RM1-shaped model
 * scaled to fit, generate a skewed trace, serve the model disaggregated (one process per
 * shard), check its scores against the reference, load it open-loop and report.
 */
async function runDemo(opts: DemoOptions): Promise<void> {
  const modelDir = path.join(opts.dir, 'model');
  const traceFile = path.join(opts.dir, 'trace.bin');
  const planFile = path.join(opts.dir, 'plan.json');
  const profileFile = path.join(opts.dir, 'profile.bin');
  fs.mkdirSync(opts.dir, { recursive: true });

  progress(`[1/5] generating an RM1-shaped model (tables capped at ${formatCount(opts.rows)} rows) in ${modelDir}`);
  const config = presetConfig('rm1', opts.rows);
  generateModel(modelDir, config, opts.seed);

  progress(`[2/5] generating ${formatCount(opts.queries)} queries (batch ${opts.batch}, locality ${opts.locality}) in ${traceFile}`);
  writeTrace(traceFile, config, { queries: opts.queries, batch: opts.batch, access: { kind: 'locality', p: opts.locality }, pooling: 'fixed', seed: opts.seed });
  const stats = traceStats(traceFile);
  const { queries } = readQueries(traceFile);

  // Rows in the trace's hotness order, so the router's 2% cache holds the hottest rows.
  writeProfile(profileFile, profileFromTrace(traceFile));
  const plan = { ...rowWisePlan(config, { shards: opts.shards, replicas: 1, cacheRows: Math.round(opts.rows * 0.02), dense: 'router', denseReplicas: 1 }), hotness: planHotness(profileFile) };
  writePlan(planFile, plan);
  progress(`[3/5] serving it disaggregated: ${plan.shards.length} embedding shards (${plan.strategy}, rows in the trace's hotness order, plan in ${planFile}), dense MLPs in the router`);
  const supervisor = new LocalSupervisor({ modelDir, plan, port: 0, deadlineMs: 5000, coalesce: DEFAULT_COALESCING });
  await supervisor.start();
  try {
    const url = `http://127.0.0.1:${supervisor.routerPort}`;

    progress(`[4/5] checking ${PARITY_QUERIES} queries against the in-process reference model`);
    const { ReferenceModel } = await import('../../reference/reference-model.ts'); // on use: see predict
    const reference = await ReferenceModel.create(loadModel(modelDir));
    let maxDiff = 0;
    try {
      for (const q of queries.slice(0, PARITY_QUERIES)) {
        const [served, expected] = [await inferBinary(url, config.name, q, config.numDense), await reference.predict(q)];
        for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(served[i] - expected[i]));
      }
    } finally {
      await reference.close();
    }

    progress(`[5/5] open-loop load: ${opts.qps} queries/s (Poisson arrivals) for ${opts.duration} s`);
    const { encodeQueries, runOpenLoop } = await import('../../bench/load-generator.ts'); // on use: see bench
    const run = await runOpenLoop({ url, modelName: config.name }, encodeQueries(queries, config.numDense), {
      qps: opts.qps,
      durationS: opts.duration,
      warmupS: 1,
      timeoutMs: 10_000,
      onProgress: progress,
    });
    const hits = await scrapeMetric(url, 'shardwise_cache_lookups_total', 'result="hit"');
    const misses = await scrapeMetric(url, 'shardwise_cache_lookups_total', 'result="miss"');
    const replicas = supervisor.replicas();
    const rss = replicas.reduce((s, r) => s + processRss(r.pid), 0);

    console.log('\n=== shardwise demo report ===');
    console.log(describeModel(config));
    console.log(`kernels: embedding-bag ${embeddingBagBackend}`);
    console.log('\ntrace (first 3 tables):');
    console.log(renderTraceStats({ ...stats, tables: stats.tables.slice(0, 3) }));
    console.log('\nservices (one OS process each):');
    console.log(renderReplicas(replicas));
    console.log(`\nparity: ${PARITY_QUERIES} queries through the public API vs the reference, max |Δscore| = ${maxDiff.toExponential(2)} ${maxDiff <= 1e-5 ? '(within 1e-5)' : '(ABOVE 1e-5: a bug)'}`);
    console.log('\nlatency under load (from scheduled send time, open loop):');
    console.log(renderRun(run));
    console.log(`\nmemory: ${formatBytes(rss)} resident over ${replicas.length} processes; router cache hit rate ${pct(hits / Math.max(1, hits + misses))}`);
    console.log(`hottest 10% of rows take ${pct(stats.tables[0].hot10)} of table 0's lookups: the skew shardwise's planner exploits`);
    console.log(`\nserve it yourself: npx shardwise serve --model ${modelDir} --plan ${planFile}`);
  } finally {
    await supervisor.stop();
  }
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('end-to-end run on an embedded default (what `npm start` runs)')
    .option('--dir <dir>', 'working directory for the model, trace and plan', 'out/demo')
    .option('--rows <n>', 'rows per table', positiveInt, 100_000)
    .option('--queries <n>', 'queries in the trace', positiveInt, 2000)
    .option('--batch <b>', 'samples per query', positiveInt, 8)
    .option('--locality <p>', 'share of lookups on the hottest 10% of rows', fraction, 0.9)
    .option('--shards <k>', 'embedding shards (one process each)', positiveInt, 4)
    .option('--qps <q>', 'offered load', positiveNumber, 200)
    .option('--duration <s>', 'seconds of load', positiveNumber, 10)
    .option('--seed <s>', 'random seed', nonNegativeInt, 1)
    .action(runDemo);
}
