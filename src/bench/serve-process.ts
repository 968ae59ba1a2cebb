import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { moduleEntry } from '../util/entry.ts';

/** The CLI as this process runs: compiled, or the sources through tsx. */
const CLI = moduleEntry('../cli/main.ts', import.meta.url);
export const BIN = fileURLToPath(new URL('../../bin/shardwise.js', import.meta.url));

export interface ServedReplica {
  service: string;
  role: string;
  pid: number;
  /** A Unix socket path, or `:port` for a front end. */
  listens: string;
  metricsPort: number;
  /** Spawn to ready, as the supervisor measured it. */
  startMs: number;
}

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  url: string;
  replicas: ServedReplica[];
  /** The admin API's URL, as serve printed it. */
  adminUrl: string;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** SIGTERM (drains) and waits for the exit. */
  stop(): Promise<{ code: number | null; signal: string | null }>;
}

/**
 * `shardwise serve` in its own process, as a user runs it, its replica table read off its
 * stdout. Benchmarks use it so that the supervisor (which hands out the front end's
 * connections) does not share an event loop with the load generator.
 */
export async function startServeProcess(args: string[], opts: { stderr?: 'inherit' | 'pipe'; compiled?: boolean } = {}): Promise<ServeProcess> {
  const child = spawnServe(args, opts);
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let out = '';
  let err = '';
  child.stderr?.on('data', (c) => (err += c));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c) => {
      out += c;
      if (/admin API at/.test(out)) resolve();
    });
    void exited.then(({ code, signal }) => reject(new Error(`shardwise serve exited (${signal ?? `code ${code}`}) before serving:\n${err}`)));
  });
  return { child, ...readServeOutput(out), exited, stop: () => (child.kill('SIGTERM'), exited) };
}

/** `shardwise serve --port 0 …` spawned, stdout piped (stderr too unless inherited); nothing awaited. */
export function spawnServe(args: string[], opts: { stderr?: 'inherit' | 'pipe'; compiled?: boolean } = {}): ChildProcess {
  // compiled: the build through bin/shardwise.js (which refuses a stale one), as production runs, whatever this process runs.
  const cli = opts.compiled ? [BIN] : [...CLI.execArgv, CLI.file];
  return spawn(process.execPath, [...cli, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', opts.stderr ?? 'pipe'] });
}

/** What serve's stdout says once it is up: its replica table, public port and admin API. */
export function readServeOutput(out: string): Pick<ServeProcess, 'port' | 'url' | 'replicas' | 'adminUrl'> {
  const port = Number(/http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1]);
  const lines = out.split('\n');
  const replicas = lines.slice(2, lines.findIndex((l) => l.trim() === '')).map((l) => {
    const [service, role, , pid, listens, metrics, , ready] = l.trim().split(/\s{2,}/);
    return { service, role, pid: Number(pid), listens, metricsPort: metrics === 'same' ? port : Number(metrics), startMs: parseFloat(ready) };
  });
  return { port, url: `http://127.0.0.1:${port}`, replicas, adminUrl: /admin API at (\S+)/.exec(out)![1] };
}
