import * as fs from 'node:fs';
import * as path from 'node:path';
import { after } from 'node:test';
import { startPod as startPodProcess, waitReady, type Pod } from '../src/bench/pod-process.ts';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { encodeQueries } from '../src/bench/load-generator.ts';
import { tempDir } from './helpers.ts';

const running = new Set<Pod>();
after(async () => {
  for (const p of running) await p.stop('SIGKILL');
});

/** A pod (src/bench/pod-process.ts) stopped when the test file ends, whatever happened. */
export async function startPod(args: string[], prefix: string[] = []): Promise<Pod> {
  const pod = await startPodProcess(args, prefix);
  running.add(pod);
  const stop = pod.stop;
  pod.stop = (signal) => (running.delete(pod), stop(signal));
  return pod;
}

export { waitReady, type Pod };

/**
 * What the pod tests serve: a tiny 3-table model, a 2-shard row-wise plan with the dense half
 * in the router (written where a pod's --plan reads it), 100 queries and their encodings.
 */
export function podWorkload() {
  const dir = tempDir();
  const config = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 1001, poolingFactor: 5 }, { name: 'b', rows: 37, poolingFactor: 2 }, { name: 'c', rows: 2003, poolingFactor: 9 }] };
  const modelDir = path.join(dir, 'model');
  generateModel(modelDir, config, 5);
  const planFile = path.join(dir, 'plan.json');
  fs.writeFileSync(planFile, JSON.stringify(rowWisePlan(config, { shards: 2, replicas: 1, cacheRows: 0, dense: 'router', denseReplicas: 1 })));
  const gen = new QueryGenerator(config, { queries: 100, batch: 4, access: { kind: 'zipf', s: 1.05 }, pooling: 'poisson', seed: 3 });
  const queries = Array.from({ length: 100 }, () => gen.next());
  return { config, modelDir, planFile, queries, encoded: encodeQueries(queries, config.numDense) };
}
