/**
 * The workload the serving benchmarks share: an RM1-shaped model capped at `rows` per table,
 * an open-loop trace of batch-8 queries at locality 0.9, and that trace's hotness profile,
 * in a fresh temporary directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import { writeTrace } from '../src/workload/generate-trace.ts';
import { readQueries } from '../src/workload/trace-format.ts';
import { profileFromTrace } from '../src/profile/build.ts';
import { planHotness, writeProfile } from '../src/profile/format.ts';
import { encodeQueries } from '../src/bench/load-generator.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import type { ModelConfig } from '../src/model/types.ts';
import type { Plan } from '../src/plan/types.ts';
import { DEFAULT_COALESCING, type CoalescingOptions } from '../src/serving/coalescing-engine.ts';

export const BATCH = 8;
export const LOCALITY = 0.9;

/** A row-wise plan of `shards` in the profile's hotness order: dense in the router, the hottest 2% of rows cached there. */
export function hotnessRowWisePlan(config: ModelConfig, shards: number, profileFile: string, dense: Plan['dense']['placement'] = 'router'): Plan {
  const cacheRows = Math.round(Math.min(...config.tables.map((t) => t.rows)) * 0.02);
  return { ...rowWisePlan(config, { shards, replicas: 1, cacheRows, dense, denseReplicas: 1 }), hotness: planHotness(profileFile) };
}

export function rm1Workload(name: string, rows: number, queryCount: number, seed: number) {
  return modelWorkload(name, presetConfig('rm1', rows), queryCount, seed);
}

/** The same for any model shape, and any batch size. */
export function modelWorkload(name: string, config: ModelConfig, queryCount: number, seed: number, batch = BATCH) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `shardwise-bench-${name}-`));
  const modelDir = path.join(work, 'model');
  const traceFile = path.join(work, 'trace.bin');
  const profileFile = path.join(work, 'profile.bin');
  generateModel(modelDir, config, 1);
  writeTrace(traceFile, config, { queries: queryCount, batch, access: { kind: 'locality', p: LOCALITY }, pooling: 'fixed', seed });
  const profile = profileFromTrace(traceFile);
  writeProfile(profileFile, profile);
  const { queries } = readQueries(traceFile);
  return {
    config,
    modelDir,
    profileFile,
    profile,
    queries,
    encoded: encodeQueries(queries, config.numDense),
    remove: () => fs.rmSync(work, { recursive: true, force: true }),
  };
}

/**
 * Dynamic batching at the front end as the benchmarks run it, in every deployment of the run:
 * `serve`'s default, or COALESCE=N batches in service at once (0 turns it off) and
 * QUEUE_DELAY_MS its latency budget (as `serve --coalesce`, `--max-queue-delay-ms`).
 */
export function coalescingFromEnv(): CoalescingOptions | null {
  const n = Number(process.env.COALESCE ?? DEFAULT_COALESCING.maxConcurrent);
  if (!Number.isInteger(n) || n < 0) throw new Error(`COALESCE must be a whole number of batches (0: off), got ${process.env.COALESCE}`);
  const delay = Number(process.env.QUEUE_DELAY_MS ?? DEFAULT_COALESCING.maxDelayMs);
  if (!(delay >= 0)) throw new Error(`QUEUE_DELAY_MS must be a number of milliseconds ≥ 0, got ${process.env.QUEUE_DELAY_MS}`);
  return n === 0 ? null : { ...DEFAULT_COALESCING, maxConcurrent: n, maxDelayMs: delay };
}
