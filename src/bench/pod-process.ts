import { spawn, type ChildProcess } from 'node:child_process';
import { moduleEntry } from '../util/entry.ts';

/** The CLI as this process runs: compiled, or the sources through tsx. */
const CLI = moduleEntry('../cli/main.ts', import.meta.url);

/** One `shardwise shard|dense|router` process, as a pod would run it. */
export interface Pod {
  child: ChildProcess;
  /** Its main port (0 for a Unix socket listener) and its metrics port, from its ready line. */
  port: number;
  metricsPort: number;
  /** Everything it logged so far. */
  log: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

/**
 * Starts a pod's command (prefix: e.g. `ip netns exec h1` to run it on another network host)
 * and resolves as its ready line arrives (not on a poll: bench:replica times start-up by it).
 */
export async function startPod(args: string[], prefix: string[] = [], timeoutMs = 15_000): Promise<Pod> {
  const argv = [...prefix, process.execPath, ...CLI.execArgv, CLI.file, ...args];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const pod: Pod = {
    child,
    port: 0,
    metricsPort: 0,
    log: () => text,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const onData = (c: Buffer) => {
      text += c;
      const m = /ready: (?:port (\d+)|\S+), metrics port (\d+)/.exec(text);
      if (!m) return;
      pod.port = Number(m[1] ?? 0);
      pod.metricsPort = Number(m[2]);
      clearTimeout(timer);
      resolve(true);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => (clearTimeout(timer), resolve(false)));
  });
  if (ready) return pod;
  await pod.stop('SIGKILL');
  throw new Error(`${args[0]} did not become ready within ${timeoutMs} ms:\n${text}`);
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
