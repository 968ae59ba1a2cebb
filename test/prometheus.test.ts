import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import type { ModelConfig } from '../src/model/types.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { LocalSupervisor } from '../src/cluster/supervisor.ts';
import { AdminServer } from '../src/cluster/admin-api.ts';
import { DEFAULT_COALESCING } from '../src/serving/coalescing-engine.ts';
import { silentLogger } from '../src/util/log.ts';
import { tempDir } from './helpers.ts';

const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

interface Target {
  labels: Record<string, string>;
  health: string;
  lastError: string;
}

test('a real Prometheus finds every replica through the supervisor\'s HTTP service discovery, scrapes them all, and keeps a restarted one', { skip: hasPrometheus ? false : 'prometheus (Debian) is not installed; .ci/run installs it' }, async () => {
  const dir = tempDir();
  const config: ModelConfig = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 1001, poolingFactor: 5 }, { name: 'b', rows: 37, poolingFactor: 2 }] };
  const modelDir = path.join(dir, 'model');
  generateModel(modelDir, config, 5);
  const sup = new LocalSupervisor({ modelDir, plan: rowWisePlan(config, { shards: 2, replicas: 2, cacheRows: 0, dense: 'service', denseReplicas: 1 }), port: 0, deadlineMs: 2000, coalesce: DEFAULT_COALESCING, log: silentLogger });
  await sup.start();
  const admin = new AdminServer(sup, 'token', silentLogger);
  const adminPort = await admin.listen(0);
  const promPort = await freePort();
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: shardwise\n    http_sd_configs: [{url: "http://127.0.0.1:${adminPort}/v1/targets", refresh_interval: 1s}]\n`,
  );
  const prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
  const targets = async (): Promise<Target[]> => {
    try {
      return (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`)).json()).data.activeTargets;
    } catch {
      return [];
    }
  };
  const allUp = async (n: number) => {
    for (let i = 0; i < 60; i++) {
      const t = await targets();
      if (t.length === n && t.every((x) => x.health === 'up')) return t;
      await sleep(500);
    }
    return targets();
  };
  try {
    const expected = sup.replicas().length + 1; // every replica, and the admin port's own gauges
    let up = await allUp(expected);
    assert.equal(up.length, expected, JSON.stringify(up.map((t) => [t.labels.shardwise_service, t.health, t.lastError])));
    assert.ok(up.every((t) => t.health === 'up'), JSON.stringify(up.map((t) => [t.labels.shardwise_service, t.health, t.lastError])));
    assert.deepEqual([...new Set(up.map((t) => t.labels.shardwise_service))].sort(), ['admin', 'dense', 'router', 'shard-0', 'shard-1']);
    // A killed replica comes back on its slot's metrics port: the same target turns up again.
    const victim = sup.replicas().find((r) => r.service === 'shard-1')!;
    process.kill(victim.pid, 'SIGKILL');
    for (let i = 0; i < 100 && !sup.replicas().some((r) => r.service === 'shard-1' && r.restarts === 1); i++) await sleep(100);
    await sleep(2500);
    up = await allUp(expected);
    assert.ok(up.every((t) => t.health === 'up'), 'every target up after the restart');
    const q = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=shardwise_replicas`)).json();
    assert.equal(q.data.result.find((r: { metric: { service: string } }) => r.metric.service === 'shard-1')?.value[1], '2');
  } finally {
    prom.kill('SIGTERM');
    await new Promise((r) => prom.once('exit', r));
    await admin.close();
    await sup.stop();
  }
});
