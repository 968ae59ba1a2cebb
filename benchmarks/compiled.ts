/**
 * Modules of the compiled build (dist/): the processes they start then run compiled
 * JavaScript, as production does, not the sources through tsx (whose loader and helpers show
 * up in CPU profiles). The benchmarks that measure serving build first (their npm scripts run
 * `npm run build`), so the build is never older than the sources.
 */
import * as fs from 'node:fs';
import type { LocalSupervisor as SourceSupervisor } from '../src/cluster/supervisor.ts';
import type * as PodProcess from '../src/bench/pod-process.ts';

async function compiled<T>(distPath: string): Promise<T> {
  const file = new URL(`../dist/${distPath}`, import.meta.url);
  if (!fs.existsSync(file)) throw new Error(`${file.pathname} is missing: run \`npm run build\` first`);
  return (await import(file.href)) as T;
}

export async function compiledSupervisor(): Promise<typeof SourceSupervisor> {
  return (await compiled<{ LocalSupervisor: typeof SourceSupervisor }>('cluster/supervisor.js')).LocalSupervisor;
}

/** startPod and waitReady of the build: pods run `node dist/cli/main.js shard …`. */
export const compiledPods = () => compiled<typeof PodProcess>('bench/pod-process.js');
