import { fileURLToPath } from 'node:url';

/** Whether this code runs compiled (dist/, what `bin/shardwise.js` and production run) or as TypeScript through tsx (tests, benchmarks). */
export const RUNS_COMPILED = import.meta.url.endsWith('.js');

/**
 * How to start another Node process on a module of this code, the way this process runs: the
 * compiled JavaScript without a loader (40 MiB less RSS per process than tsx's), or the
 * TypeScript source through tsx, found by absolute URL so children start from any directory.
 * `relative` names the .ts source, relative to `base` (the caller's import.meta.url).
 */
export function moduleEntry(relative: string, base: string): { file: string; execArgv: string[] } {
  if (RUNS_COMPILED) return { file: fileURLToPath(new URL(relative.replace(/\.ts$/, '.js'), base)), execArgv: [] };
  return { file: fileURLToPath(new URL(relative, base)), execArgv: ['--import', import.meta.resolve('tsx')] };
}
