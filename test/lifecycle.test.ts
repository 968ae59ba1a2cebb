import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import type { ModelConfig } from '../src/model/types.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { writePlan } from '../src/plan/validate.ts';
import { LocalSupervisor } from '../src/cluster/supervisor.ts';
import { adminTokenFile } from '../src/cluster/admin-api.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { encodeBinaryRequest } from '../src/protocol/oip.ts';
import { silentLogger } from '../src/util/log.ts';
import { readServeOutput, spawnServe, startServeProcess, type ServeProcess } from '../src/bench/serve-process.ts';
import { tempDir, unusedPort } from './helpers.ts';

const dir = tempDir();
const config: ModelConfig = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 1001, poolingFactor: 5 }, { name: 'b', rows: 37, poolingFactor: 2 }, { name: 'c', rows: 2003, poolingFactor: 9 }] };
const modelDir = path.join(dir, 'model');
generateModel(modelDir, config, 5);
const planFile = path.join(dir, 'plan.json');
writePlan(planFile, rowWisePlan(config, { shards: 2, replicas: 1, cacheRows: 0, dense: 'router', denseReplicas: 1 }));
const gen = new QueryGenerator(config, { queries: 50, batch: 4, access: { kind: 'zipf', s: 1.05 }, pooling: 'poisson', seed: 3 });
const query = encodeBinaryRequest(gen.next(), config.numDense);

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** `shardwise serve` as a user runs it, on the test's plan; the shards' socket folder from its replica table. */
async function serveCli(args: string[]): Promise<ServeProcess & { socketDir: string }> {
  const s = await startServeProcess(['--model', modelDir, '--plan', planFile, ...args]);
  children.add(s.child);
  void s.exited.then(() => children.delete(s.child));
  return { ...s, socketDir: path.dirname(s.replicas.find((r) => r.role === 'shard')!.listens) };
}

function infer(port: number, agent: http.Agent | false = false): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `/v2/models/${config.name}/infer`, agent, headers: { 'inference-header-content-length': query.headerLength, 'content-length': query.body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', () => resolve(-1));
    req.end(query.body);
  });
}

const ready = (port: number) => new Promise<number>((resolve) => http.get({ host: '127.0.0.1', port, path: '/v2/health/ready', agent: false }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', () => resolve(-1)));
const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('SIGTERM under load: not ready at once, served through the grace period, no query lost, a stuck upload cut quickly, no socket folder left', async () => {
  // No admission control: what is checked is the drain; a loaded CI machine can make a cold router shed a few queries (429).
  const s = await serveCli(['--drain-grace-ms', '800', '--no-admission']);
  assert.ok(fs.existsSync(s.socketDir));
  // A client that sends half a body and then nothing.
  const stuck = net.connect(s.port, '127.0.0.1', () => stuck.write(`POST /v2/models/${config.name}/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{"inputs": [`));
  stuck.on('error', () => {});
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const statuses: number[] = [];
  let sending = true;
  // Paced clients (~4 × 100 qps): the point is queries in flight across the SIGTERM, not saturation.
  const loops = Array.from({ length: 4 }, async () => {
    while (sending) {
      statuses.push(await infer(s.port, agent));
      await sleep(10);
    }
  });
  await sleep(500);
  const before = statuses.length;
  const t0 = performance.now();
  s.child.kill('SIGTERM');
  await sleep(200);
  assert.equal(await ready(s.port), 503, 'not ready once SIGTERM arrived');
  await sleep(300); // still inside the 800 ms grace period
  sending = false;
  await Promise.all(loops);
  agent.destroy();
  const { code } = await s.exited;
  const exitMs = performance.now() - t0;
  assert.equal(code, 0);
  assert.ok(statuses.length > before + 20, `served during the grace period: ${statuses.length - before}`);
  assert.deepEqual(statuses.filter((x) => x !== 200), [], 'every query sent before and during the grace period answered 200');
  // grace 800 ms + the 1 s stuck-body cut + stopping the shards; never the 15 s kill timeout.
  assert.ok(exitMs < 5000, `exit took ${exitMs.toFixed(0)} ms`);
  assert.ok(!fs.existsSync(s.socketDir), 'socket folder removed');
  for (const r of s.replicas) assert.ok(gone(r.pid), `${r.service} pid ${r.pid} is gone`);
});

test('SIGTERM during start-up: serve finishes starting, then stops cleanly (exit 0, no replica, token file or socket folder left)', async () => {
  const child = spawnServe(['--model', modelDir, '--plan', planFile, '--drain-grace-ms', '0']);
  children.add(child);
  const exited = once(child, 'exit');
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  // "starting …" comes before the first replica: the signal lands while nothing is up yet.
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (c) => (err += c) && /starting /.test(err) && resolve());
    void exited.then(() => reject(new Error(`serve exited before starting: ${err}`)));
  });
  child.kill('SIGTERM');
  const [code, signal] = await exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `handled, not killed by the signal: ${err}`);
  assert.match(out, /admin API at http:\/\/127\.0\.0\.1:\d+/, 'it finished starting, then stopped');
  const { adminUrl, replicas } = readServeOutput(out);
  assert.ok(!fs.existsSync(adminTokenFile(Number(new URL(adminUrl).port))), 'its admin token file removed');
  assert.ok(!fs.existsSync(path.dirname(replicas.find((r) => r.role === 'shard')!.listens)), 'its socket folder removed');
  for (const r of replicas) assert.ok(gone(r.pid), `${r.service} pid ${r.pid} is gone`);
});

test('SIGKILL of the supervisor: every replica exits and the socket folder goes with the last; a later start removes what a dead one left', async () => {
  const s = await serveCli([]);
  s.child.kill('SIGKILL');
  await s.exited;
  for (let i = 0; i < 100 && !s.replicas.every((r) => gone(r.pid)); i++) await sleep(100);
  for (const r of s.replicas) assert.ok(gone(r.pid), `${r.service} pid ${r.pid} exited with its supervisor`);
  for (let i = 0; i < 20 && fs.existsSync(s.socketDir); i++) await sleep(100);
  assert.ok(!fs.existsSync(s.socketDir), 'the last shard to leave removed the folder');

  // A folder a dead supervisor left behind (pid 2^22 - 1 is above this machine's pid range) goes at the next start.
  const stale = fs.mkdtempSync(path.join(os.tmpdir(), 'shardwise-4194303-'));
  fs.writeFileSync(path.join(stale, '1.sock'), '');
  const sup = new LocalSupervisor({ modelDir, plan: null, port: 0, deadlineMs: 1000, coalesce: null, log: silentLogger });
  assert.ok(!fs.existsSync(stale));
  await sup.stop();

  // Its admin token file, named by port so `status` finds it, stays too; the next serve removes it once it is older than a
  // start takes (aged here) and nothing listens on that port. A fresh one, or one whose port answers, stays.
  const leftToken = adminTokenFile(Number(new URL(s.adminUrl).port));
  assert.ok(fs.existsSync(leftToken), 'a SIGKILLed serve cannot remove its token file');
  const past = new Date(Date.now() - 120_000);
  fs.utimesSync(leftToken, past, past);
  const fresh = adminTokenFile(await unusedPort());
  fs.writeFileSync(fresh, 'x\n');
  const next = await serveCli([]);
  try {
    assert.ok(!fs.existsSync(leftToken), 'the stale token file is gone at the next start');
    assert.ok(fs.existsSync(fresh), 'a fresh one stays (a deployment may be starting)');
    assert.ok(fs.existsSync(adminTokenFile(Number(new URL(next.adminUrl).port))), "the new deployment's own");
  } finally {
    fs.rmSync(fresh, { force: true });
    await next.stop();
  }
});

test('a closed stdout and stderr pipe: the deployment keeps serving, restarts a killed replica and stops cleanly', async () => {
  const s = await serveCli([]);
  s.child.stdout!.destroy();
  s.child.stderr!.destroy();
  assert.equal(await infer(s.port), 200);
  // The supervisor logs the death and the restart into the closed pipe.
  const shard = s.replicas.find((r) => r.role === 'shard')!;
  process.kill(shard.pid, 'SIGKILL');
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    await sleep(100);
    status = (await ready(s.port)) === 200 ? await infer(s.port) : 0;
  }
  assert.equal(status, 200, 'serving again after the restart');
  assert.ok(!gone(s.child.pid!), 'the supervisor is alive');
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});
