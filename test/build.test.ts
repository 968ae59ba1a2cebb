import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tempDir } from './helpers.ts';

/**
 * The compiled CLI from a fresh clone of the committed tree, run as a newcomer runs it: `npm run
 * build` (what `npm install` runs as `prepare`), then `npm start`. node_modules and the native
 * addon are linked from this checkout: installing them again would only test the registry.
 */
const clone = path.join(tempDir(), 'clone');
const run = (cmd: string, args: string[], cwd = clone) => spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000 });

test('a fresh clone builds, `npm start` runs the demo end to end on compiled JavaScript, and a stale or missing build is refused', async () => {
  assert.equal(run('git', ['clone', '-q', ROOT, clone], ROOT).status, 0);
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'));
  if (fs.existsSync(path.join(ROOT, 'build'))) fs.symlinkSync(path.join(ROOT, 'build'), path.join(clone, 'build'));
  const built = run('npm', ['run', 'build']);
  assert.equal(built.status, 0, built.stderr);
  assert.ok(fs.existsSync(path.join(clone, 'dist/cli/main.js')));

  const work = path.join(clone, 'out/demo');
  const demo = run('npm', ['start', '--', '--rows', '5000', '--queries', '300', '--qps', '100', '--duration', '2', '--dir', work]);
  assert.equal(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /=== shardwise demo report ===/);
  assert.match(demo.stdout, /max \|Δscore\| = \S+ \(within 1e-5\)/);

  // Every process of a deployment runs the build, with no TypeScript loader.
  const serve = spawn(process.execPath, ['bin/shardwise.js', 'serve', '--model', path.join(work, 'model'), '--plan', path.join(work, 'plan.json'), '--port', '0'], { cwd: clone, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    serve.stdout.on('data', (c) => (out += c) && /serving model/.test(out) && resolve());
    serve.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
  const pids = [...out.matchAll(/^\S+\s+(?:shard|router|dense|monolithic)\s+\d+\s+(\d+)/gm)].map((m) => Number(m[1]));
  assert.ok(pids.length >= 2, out);
  for (const pid of [serve.pid!, ...pids]) {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    assert.doesNotMatch(cmdline, /tsx/, `pid ${pid}: ${cmdline}`);
    if (pid !== serve.pid) assert.match(cmdline, /dist\/cluster\/service-process\.js/);
  }
  serve.kill('SIGINT');
  await new Promise((r) => serve.once('exit', r));

  // A source newer than the build, or no build: refused with what to do, never old code.
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(clone, 'src/cli/main.ts'), later, later);
  const stale = run(process.execPath, ['bin/shardwise.js', '--help']);
  assert.equal(stale.status, 2);
  assert.match(stale.stderr, /the compiled CLI is older than src\/cli\/main\.ts[\s\S]*npm run build/);
  fs.rmSync(path.join(clone, 'dist'), { recursive: true });
  const missing = run(process.execPath, ['bin/shardwise.js', '--help']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /the compiled CLI \(.*dist\) is missing/);
});
