import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import type { ModelConfig } from '../src/model/types.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { inferBinary, scrapeMetric } from '../src/protocol/oip-client.ts';
import { tempDir } from './helpers.ts';
import { testDeployments } from './deployments.ts';
import { ServiceMetrics } from '../src/serving/metrics.ts';
import { bucketsOf, p95Between } from '../src/cluster/histogram-quantile.ts';

const dir = tempDir();
const config: ModelConfig = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 1001, poolingFactor: 5 }, { name: 'b', rows: 37, poolingFactor: 2 }, { name: 'c', rows: 2003, poolingFactor: 9 }] };
const modelDir = path.join(dir, 'model');
generateModel(modelDir, config, 5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const promtool = spawnSync('promtool', ['--version']).status === 0;

const deployments = testDeployments();

test('every replica\'s /metrics passes promtool, event-loop lag reads in seconds, and a restarted replica keeps its metrics port', { skip: promtool ? false : 'promtool (Debian prometheus) is not installed; .ci/run installs it' }, async () => {
  const plan = rowWisePlan(config, { shards: 2, replicas: 1, cacheRows: 8, dense: 'service', denseReplicas: 1 });
  const sup = await deployments.serve({ modelDir, plan });
  try {
    const gen = new QueryGenerator(config, { queries: 20, batch: 4, access: { kind: 'zipf', s: 1.05 }, pooling: 'poisson', seed: 2 });
    for (let i = 0; i < 20; i++) await inferBinary(`http://127.0.0.1:${sup.routerPort}`, config.name, gen.next(), config.numDense);
    await sleep(300); // a few event-loop samples at the 20 ms precision
    for (const r of sup.replicas()) {
      const text = await (await fetch(`http://127.0.0.1:${r.metricsPort}/metrics`)).text();
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(check.status, 0, `${r.service}: promtool check metrics:\n${check.stdout}${check.stderr}`);
      const lagMin = Number(/^shardwise_nodejs_eventloop_lag_min_seconds\S* (\S+)$/m.exec(text)?.[1]);
      assert.ok(lagMin >= 0 && lagMin < 1, `${r.service}: event-loop lag min ${lagMin} s`);
    }
    // Kill a shard replica: it comes back on the same metrics port, where a scraper already looks.
    const shard = sup.replicas().find((r) => r.service === 'shard-1')!;
    process.kill(shard.pid, 'SIGKILL');
    for (let i = 0; i < 100 && !sup.replicas().some((r) => r.service === 'shard-1' && r.restarts === 1); i++) await sleep(100);
    const back = sup.replicas().find((r) => r.service === 'shard-1')!;
    assert.notEqual(back.pid, shard.pid);
    assert.equal(back.metricsPort, shard.metricsPort);
    assert.equal(await scrapeMetric(`http://127.0.0.1:${back.metricsPort}`, 'shardwise_rows_held'), 1001 + 37 + 2003 - (plan.shards[0].pieces.reduce((s, p) => s + p.rowEnd - p.rowStart, 0)));
  } finally {
    await deployments.stop(sup);
  }
});

test("a front end's p95 read off its latency histogram lands within 10% of the true p95 between 10 and 100 ms (the balancer's limit and the autoscaler act on it)", async () => {
  // Uniform answer times over [lo, hi): the true p95 is lo + 0.95 (hi - lo).
  for (const [lo, hi] of [[5, 13], [8, 21], [15, 26], [20, 45], [40, 90]]) {
    const metrics = new ServiceMetrics('monolithic');
    for (let i = 0; i < 2000; i++) metrics.duration.observe({ service: 'monolithic', stage: 'total' }, (lo + ((hi - lo) * (i + 0.5)) / 2000) / 1000);
    const p95Ms = 1000 * p95Between(undefined, bucketsOf(await metrics.registry.metrics(), 'shardwise_request_duration_seconds', 'total')!);
    const truth = lo + 0.95 * (hi - lo);
    assert.ok(Math.abs(p95Ms - truth) <= 0.1 * truth, `answers uniform over [${lo}, ${hi}) ms: p95 ${truth.toFixed(1)} ms read as ${p95Ms.toFixed(1)} ms`);
  }
});

test("a service's default metrics are prom-client's, loaded by module (no @opentelemetry/api), the CPU counters counting", async () => {
  const { default: full } = await import('prom-client');
  const reference = new full.Registry();
  full.collectDefaultMetrics({ register: reference, prefix: 'shardwise_' });
  const dropped = new Set(['active_handles', 'active_requests', 'active_resources'].map((n) => `shardwise_nodejs_${n}_total`));
  const expected = (await reference.getMetricsAsJSON()).map((m) => m.name).filter((n) => !dropped.has(n)).sort();
  const metrics = new ServiceMetrics('shard-0');
  const names = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  assert.deepEqual(expected.filter((n) => !names.has(n)), [], 'every default metric of prom-client is there');
  const cpu = async () => Number(/^shardwise_process_cpu_seconds_total\S* (\S+)$/m.exec(await metrics.registry.metrics())?.[1]);
  const before = await cpu();
  const until = performance.now() + 30;
  while (performance.now() < until); // 30 ms of CPU
  const after = await cpu();
  assert.ok(after - before >= 0.02 && after - before < 1, `process_cpu_seconds_total grew by ${after - before} s over 30 ms of work`);
  const user = Number(/^shardwise_process_cpu_user_seconds_total\S* (\S+)$/m.exec(await metrics.registry.metrics())?.[1]);
  assert.ok(user > 0 && user <= after + 0.01, `user CPU ${user} s within the total`);
  // What a service process loads (this test process has loaded all of prom-client itself).
  const probe = `const m = await import(${JSON.stringify(new URL('../src/serving/metrics.ts', import.meta.url).href)}); await new m.ServiceMetrics('x').registry.metrics();
    const { createRequire } = await import('node:module'); console.log(Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('node_modules')).join('\\n'));`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  const modules = child.stdout.trim().split('\n');
  assert.ok(modules.some((f) => f.includes('prom-client/lib/histogram')), `prom-client's modules loaded: ${modules.join(', ')}`);
  assert.deepEqual(modules.filter((f) => /@opentelemetry|prom-client\/(index|lib\/(summary|pushgateway|cluster))/.test(f)), []);
});
