import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Rng } from '../src/util/rng.ts';
import { moduleEntry } from '../src/util/entry.ts';

export const ROOT = path.resolve(import.meta.dirname, '..');

/** A fresh temporary directory, removed when the process exits. */
export function tempDir(prefix = 'shardwise-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  new Rng(seed).fillUniform(a, scale);
  return a;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The CLI's sources through tsx: tests run what is in src/, built or not (test/build.test.ts runs the compiled CLI). */
const CLI = moduleEntry('../src/cli/main.ts', import.meta.url);

/** Runs the shardwise CLI without blocking this process's event loop (for servers that live in the test process). */
export function cliAsync(args: string[], opts: { env?: NodeJS.ProcessEnv; onStderr?: (text: string) => void } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI.execArgv, CLI.file, ...args], { env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => {
      stderr += c;
      opts.onStderr?.(String(c));
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs the shardwise CLI in a child process. */
export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [...CLI.execArgv, CLI.file, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A port nothing listens on now. */
export async function unusedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** The CLI run with `args` fails with exit `code` and a message matching `message`, not a stack. */
export function assertCliFails(args: string[], code: number, message: RegExp): void {
  const r = cli(args);
  assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'a message, not a stack');
}

/** A run's failures in words, with what the first one got: the message of a zero-failure assertion. */
export function failuresOf(r: { sent: number; errors: number; timeouts: number; rejected: number; firstFailure?: string }): string {
  return `${r.errors} errors, ${r.timeouts} timeouts, ${r.rejected} refused of ${r.sent}${r.firstFailure ? ` (first: ${r.firstFailure})` : ''}`;
}
