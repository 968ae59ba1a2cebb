/**
 * The supervisor of the compiled build (dist/): every service it starts then runs compiled
 * JavaScript, as production does, not the sources through tsx (whose loader and helpers show
 * up in CPU profiles). The benchmarks that measure serving CPU build first (their npm scripts
 * run `npm run build`), so this is never older than the sources.
 */
import * as fs from 'node:fs';
import type { LocalSupervisor as SourceSupervisor } from '../src/cluster/supervisor.ts';

export async function compiledSupervisor(): Promise<typeof SourceSupervisor> {
  const file = new URL('../dist/cluster/supervisor.js', import.meta.url);
  if (!fs.existsSync(file)) throw new Error(`${file.pathname} is missing: run \`npm run build\` first`);
  return ((await import(file.href)) as { LocalSupervisor: typeof SourceSupervisor }).LocalSupervisor;
}
