import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { moduleEntry } from '../src/util/entry.ts';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { encodeQueries } from '../src/bench/load-generator.ts';
import { tempDir } from './helpers.ts';

const CLI = moduleEntry('../src/cli/main.ts', import.meta.url);

/** One `shardwise shard|dense|router` process, as a pod would run it. */
export interface Pod {
  child: ChildProcess;
  port: number;
  metricsPort: number;
  /** Everything it logged so far. */
  log: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

const running = new Set<Pod>();
after(async () => {
  for (const p of running) await p.stop('SIGKILL');
});

/** Starts a pod's command (prefix: e.g. `ip netns exec h1` to run it on another network host) and waits for its ready line. */
export async function startPod(args: string[], prefix: string[] = []): Promise<Pod> {
  const argv = [...prefix, process.execPath, ...CLI.execArgv, CLI.file, ...args];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (c) => (text += c));
  child.stderr!.on('data', (c) => (text += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const pod: Pod = {
    child,
    port: 0,
    metricsPort: 0,
    log: () => text,
    stop: async (signal = 'SIGTERM') => {
      running.delete(pod);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  running.add(pod);
  for (let i = 0; i < 300; i++) {
    const m = /ready: (?:port (\d+)|\S+), metrics port (\d+)/.exec(text);
    if (m) {
      pod.port = Number(m[1] ?? 0);
      pod.metricsPort = Number(m[2]);
      return pod;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await pod.stop('SIGKILL');
  throw new Error(`${args.slice(0, 1)} did not become ready:\n${text}`);
}

/** Polls a readiness URL until it answers 200 (as a Kubernetes readiness probe would), or throws with its last answer. */
export async function waitReady(url: string, timeoutMs = 10_000): Promise<void> {
  let last = '';
  for (const until = Date.now() + timeoutMs; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = (e as Error).message;
    }
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms: ${last}`);
}

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
