import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as http from 'node:http';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import { loadModel } from '../src/model/store.ts';
import type { ModelConfig } from '../src/model/types.ts';
import type { Plan } from '../src/plan/types.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { validatePlan } from '../src/plan/validate.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { ReferenceModel } from '../src/reference/reference-model.ts';
import { decodeBinaryScores, encodeRequest } from '../src/protocol/oip.ts';
import { inferBinary } from '../src/protocol/oip-client.ts';
import type { Batch } from '../src/model/batch.ts';
import { ShardwiseError } from '../src/util/errors.ts';
import { writeTrace } from '../src/workload/generate-trace.ts';
import { readQueries } from '../src/workload/trace-format.ts';
import { profileFromTrace } from '../src/profile/build.ts';
import { planHotness, writeProfile } from '../src/profile/format.ts';
import { COST_FORMAT, COST_VERSION, type CostModel } from '../src/planner/cost-model.ts';
import { allStrategies } from '../src/planner/strategies.ts';
import { runPlanner } from '../src/planner/planner.ts';
import { writePlan, readPlan } from '../src/plan/validate.ts';
import { scrapeMetric } from '../src/protocol/oip-client.ts';
import { maxAbsDiff, tempDir } from './helpers.ts';
import { testDeployments } from './deployments.ts';

const dir = tempDir();
/** tiny, with a mean-pooling twin and uneven tables so pieces split tables at odd boundaries. */
const sumConfig: ModelConfig = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 1001, poolingFactor: 5 }, { name: 'b', rows: 37, poolingFactor: 2 }, { name: 'c', rows: 2003, poolingFactor: 9 }] };
const meanConfig: ModelConfig = { ...sumConfig, name: 'tiny-mean', poolingMode: 'mean' };
const models = { sum: path.join(dir, 'sum'), mean: path.join(dir, 'mean') };
generateModel(models.sum, sumConfig, 5);
generateModel(models.mean, meanConfig, 5);

/**
 * Dynamic batching on, as `serve` runs by default; the concurrent test below makes it merge.
 * Admission control off: these tests fire closed bursts at cold servers to check scores, and a
 * burst that keeps a cold process busy is what admission refuses (test/resilience.test.ts).
 */
const deployments = testDeployments({ deadlineMs: 5000, admission: null });
const serve = (modelDir: string, plan: Plan | null) => deployments.serve({ modelDir, plan });
const stop = deployments.stop;

function queries(config: ModelConfig, n: number, seed: number): Batch[] {
  const gen = new QueryGenerator(config, { queries: n, batch: 5, access: { kind: 'zipf', s: 1.05 }, pooling: 'poisson', seed });
  return Array.from({ length: n }, () => gen.next());
}

async function inferJson(port: number, name: string, batch: Batch, numDense: number): Promise<Float32Array> {
  const res = await fetch(`http://127.0.0.1:${port}/v2/models/${name}/infer`, { method: 'POST', body: JSON.stringify(encodeRequest(batch, numDense)) });
  assert.equal(res.status, 200, await res.clone().text());
  return Float32Array.from((await res.json()).outputs[0].data);
}

/** A binary-extension body built by hand: the id's length moves where the binary section starts. */
function binaryRequest(batch: Batch, numDense: number, id: string, idType: 'INT32' | 'INT64'): { body: Buffer; headerLength: number } {
  const ids = (a: Int32Array) => (idType === 'INT32' ? Buffer.from(a.buffer, a.byteOffset, a.byteLength) : Buffer.from(BigInt64Array.from(a, BigInt).buffer));
  const tensors: [string, string, number[], Buffer][] = [
    ['dense', 'FP32', [batch.size, numDense], Buffer.from(batch.dense.buffer, batch.dense.byteOffset, batch.dense.byteLength)],
    ['indices', idType, [batch.indices.length], ids(batch.indices)],
    ['offsets', idType, [batch.offsets.length], ids(batch.offsets)],
  ];
  const inputs = tensors.map(([name, datatype, shape, b]) => ({ name, datatype, shape, parameters: { binary_data_size: b.length } }));
  const header = Buffer.from(JSON.stringify({ id, inputs, parameters: { binary_data_output: true } }));
  return { body: Buffer.concat([header, ...tensors.map((t) => t[3])]), headerLength: header.length };
}

/**
 * A POST over a fresh connection with node:http (no client-side pooling or queueing), the body
 * written in `parts` (several parts: one body arriving in pieces, or chunked without a
 * Content-Length). `end: false` leaves the body unfinished, for answers that come before it.
 */
function post(port: number, path: string, headers: http.OutgoingHttpHeaders, parts: (string | Buffer)[], end = true): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer from :${port} in 20 s`)));
    req.on('error', reject);
    for (const part of parts) req.write(part);
    if (end) req.end();
  });
}

async function postBinary(port: number, name: string, req: { body: Buffer; headerLength: number }, chunked: boolean): Promise<Float32Array> {
  const headers: http.OutgoingHttpHeaders = { 'inference-header-content-length': req.headerLength };
  if (!chunked) headers['content-length'] = req.body.length;
  const res = await post(port, `/v2/models/${name}/infer`, headers, [req.body.subarray(0, 7), req.body.subarray(7)]);
  if (res.status !== 200) throw new Error(`${res.status}: ${res.body}`);
  return decodeBinaryScores(res.body, Number(res.headers['inference-header-content-length']));
}

const postRaw = async (port: number, path: string, body: string) => (await post(port, path, {}, [body])).status;

async function infer(port: number, name: string, batch: Batch, numDense: number): Promise<Float32Array> {
  return inferBinary(`http://127.0.0.1:${port}`, name, batch, numDense);
}

/** Plan shapes: 1..16 shards, tables split across shards, cache on and off, dense in the router or as a service. */
const shapes: { label: string; config: ModelConfig; plan: Plan }[] = [
  { label: '1 shard, no cache, dense in router', config: sumConfig, plan: rowWisePlan(sumConfig, { shards: 1, replicas: 1, cacheRows: 0, dense: 'router', denseReplicas: 1 }) },
  { label: '3 shards × 2 replicas, cache 100 rows, dense service', config: sumConfig, plan: rowWisePlan(sumConfig, { shards: 3, replicas: 2, cacheRows: 100, dense: 'service', denseReplicas: 2 }) },
  { label: '16 shards, cache 10 rows, mean pooling', config: meanConfig, plan: rowWisePlan(meanConfig, { shards: 16, replicas: 1, cacheRows: 10, dense: 'router', denseReplicas: 1 }) },
];

for (const { label, config, plan } of shapes) {
  test(`disaggregated scores equal the monolithic reference to 1e-5: ${label}`, async () => {
    validatePlan(plan, config);
    const modelDir = config.poolingMode === 'mean' ? models.mean : models.sum;
    const reference = await ReferenceModel.create(loadModel(modelDir));
    const sup = await serve(modelDir, plan);
    try {
      const expectedServices = plan.shards.reduce((s, x) => s + x.replicas, 0) + (plan.dense.placement === 'service' ? plan.dense.replicas : 0) + 1;
      assert.equal(sup.replicas().length, expectedServices);
      for (const q of queries(config, 6, plan.shards.length)) {
        const want = await reference.predict(q);
        assert.ok(maxAbsDiff(await inferJson(sup.routerPort, config.name, q, config.numDense), want) < 1e-5);
        assert.ok(maxAbsDiff(await infer(sup.routerPort, config.name, q, config.numDense), want) < 1e-5);
      }
      // Concurrent queries are merged by the router's dynamic batching; each still gets its own scores.
      const burst = queries(config, 24, 50 + plan.shards.length);
      const got = await Promise.all(burst.map((q) => infer(sup.routerPort, config.name, q, config.numDense)));
      for (const [i, q] of burst.entries()) assert.ok(maxAbsDiff(got[i], await reference.predict(q)) < 1e-5, `burst query ${i}`);
      // Per-lookup weights travel to the shards and the cache too.
      if (config.poolingMode === 'sum') {
        const q = queries(config, 1, 99)[0];
        q.weights = Float32Array.from(q.indices, (_, i) => 0.5 + (i % 3));
        assert.ok(maxAbsDiff(await inferJson(sup.routerPort, config.name, q, config.numDense), await reference.predict(q)) < 1e-5);
      }
    } finally {
      await stop(sup);
      await reference.close();
    }
  });
}

test("every strategy's plan serves in the trace profile's hotness order with parity; shards export measured memory utility", async () => {
  const trace = path.join(dir, 'trace.bin');
  writeTrace(trace, sumConfig, { queries: 1000, batch: 5, access: { kind: 'locality', p: 0.9 }, pooling: 'poisson', seed: 21 });
  const profileFile = path.join(dir, 'profile.bin');
  const profile = profileFromTrace(trace);
  writeProfile(profileFile, profile);
  // Slow shards and tiny replicas, so the DP cuts hot ranges apart and gives them more replicas.
  const cost: CostModel = {
    format: COST_FORMAT,
    version: COST_VERSION,
    source: 'test',
    shard: { curves: [{ dim: sumConfig.embeddingDim, alphaMs: 1, betaMs: 0.5 }], replica: { cpus: 1, memBytes: 2000 } },
    dense: { qps: 500, replica: { cpus: 1, memBytes: 2000 } },
    modelWise: { sparseQps: 100, replica: { cpus: 1, memBytes: 2000 } },
    router: { qps: 1000, replica: { cpus: 1, memBytes: 2000 } },
  };
  const input = { config: sumConfig, profile, hotness: planHotness(profileFile), cost, targetQps: 100, batch: 5, shards: 2, maxShards: 3, cacheRows: 20 };
  const planned = runPlanner(input, allStrategies(), null);
  const reference = await ReferenceModel.create(loadModel(models.sum));
  const { queries: replay } = readQueries(trace);
  try {
    for (const { plan, estimate } of planned) {
      // Through the file, as `serve --plan` reads it: the profile path is stored relative to the plan.
      const planFile = path.join(dir, `${plan.strategy}.json`);
      writePlan(planFile, plan);
      const served = readPlan(planFile, sumConfig);
      assert.equal(served.hotness?.profile, plan.strategy === 'model-wise' ? undefined : profileFile);
      const sup = await serve(models.sum, served);
      try {
        for (const q of replay.slice(0, 4)) assert.ok(maxAbsDiff(await infer(sup.routerPort, 'tiny', q, 4), await reference.predict(q)) < 1e-5, plan.strategy);
        if (plan.strategy !== 'elastic') continue;
        // The profiled trace's 1000 queries of 5 samples close one utility window on every shard (idle samples count too).
        for (let i = 0; i < 1000; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => infer(sup.routerPort, 'tiny', replay[i + j], 4)));
        const measured = new Map<string, number>();
        for (const r of sup.replicas().filter((x) => x.role === 'shard')) {
          measured.set(r.service, await scrapeMetric(`http://127.0.0.1:${r.metricsPort}`, 'shardwise_memory_utility_ratio'));
        }
        const shards = estimate.services.filter((x) => x.kind === 'shard');
        assert.ok(shards.length >= 2, 'the DP cut the tables');
        for (const est of shards) {
          const got = measured.get(est.service)!;
          assert.ok(got > 0 && got <= 1, `${est.service} measured utility ${got}`);
          // The replayed trace is the profiled one, so planned and measured utility agree closely.
          assert.ok(Math.abs(got - est.utility!) < 0.2, `${est.service}: planned ${est.utility} vs measured ${got}`);
        }
      } finally {
        await stop(sup);
      }
    }
  } finally {
    await reference.close();
  }
});

test('the monolithic server, the public API contract, bad requests and metrics', async () => {
  const sup = await serve(models.sum, null);
  const base = `http://127.0.0.1:${sup.routerPort}`;
  try {
    assert.equal((await fetch(`${base}/v2/health/ready`)).status, 200);
    const meta = await (await fetch(`${base}/v2/models/tiny`)).json();
    assert.equal(meta.name, 'tiny');
    assert.deepEqual(meta.inputs[0], { name: 'dense', datatype: 'FP32', shape: [-1, 4] });
    assert.equal((await fetch(`${base}/v2/models/other/infer`, { method: 'POST', body: '{}' })).status, 404);
    const q = queries(sumConfig, 1, 1)[0];
    const bad = encodeRequest(q, 4);
    (bad.inputs[1].data as number[])[0] = 5000;
    const res = await fetch(`${base}/v2/models/tiny/infer`, { method: 'POST', body: JSON.stringify(bad) });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error, /'indices' has id 5000 at position 0/);
    assert.equal((await fetch(`${base}/v2/models/tiny/infer`, { method: 'POST', body: '{not json' })).status, 400);
    // A body over the limit is refused by its Content-Length, with a message, not a reset.
    const oversized = await post(sup.routerPort, '/v2/models/tiny/infer', { 'content-length': 65 << 20 }, ['{"inputs": ['], false);
    assert.equal(oversized.status, 413);
    assert.match(oversized.body.toString(), /request body is over 67108864 bytes/);
    // Still serving after bad requests.
    const scores = await inferJson(sup.routerPort, 'tiny', q, 4);
    assert.equal(scores.length, 5);
    // Binary bodies decode the same at every alignment of the binary section (views or copies),
    // with INT64 or INT32 ids, with a Content-Length or chunked.
    for (let idLength = 0; idLength < 4; idLength++) {
      for (const idType of ['INT32', 'INT64'] as const) {
        for (const chunked of [false, true]) {
          const got = await postBinary(sup.routerPort, 'tiny', binaryRequest(q, 4, 'x'.repeat(idLength), idType), chunked);
          assert.ok(maxAbsDiff(got, scores) < 1e-6, `id of ${idLength} chars, ${idType}, chunked ${chunked}`);
        }
      }
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /shardwise_requests_total\{service="model",outcome="bad_request"\} 3/);
    assert.match(metrics, /shardwise_request_duration_seconds_count\{service="model",stage="total"\} 20/);
  } finally {
    await stop(sup);
  }
});

test('a malformed frame closes that connection only; a killed shard replica is restarted and no query fails', async () => {
  const plan = rowWisePlan(sumConfig, { shards: 2, replicas: 2, cacheRows: 0, dense: 'router', denseReplicas: 1 });
  const sup = await serve(models.sum, plan);
  try {
    const shard = sup.replicas().find((r) => r.service === 'shard-0')!;
    const closed = await new Promise<boolean>((resolve) => {
      const sock = net.connect(shard.socketPath!, () => sock.write(Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4])));
      sock.on('close', () => resolve(true));
      sock.on('error', () => {});
      setTimeout(() => resolve(false), 3000);
    });
    assert.ok(closed, 'the shard closes a connection that sends a bad frame');
    const metrics = await (await fetch(`http://127.0.0.1:${shard.metricsPort}/v2/health/live`)).status;
    assert.equal(metrics, 200, 'and keeps running');

    // Kill one replica of shard-1 mid-traffic: the router retries on the other replica.
    const victim = sup.replicas().find((r) => r.service === 'shard-1')!;
    const qs = queries(sumConfig, 30, 7);
    const reference = await ReferenceModel.create(loadModel(models.sum));
    let killed = false;
    for (const [i, q] of qs.entries()) {
      if (i === 5) {
        process.kill(victim.pid, 'SIGKILL');
        killed = true;
      }
      assert.ok(maxAbsDiff(await inferJson(sup.routerPort, 'tiny', q, 4), await reference.predict(q)) < 1e-5);
    }
    await reference.close();
    assert.ok(killed);
    // The supervisor restarts it.
    for (let i = 0; i < 100 && !sup.replicas().some((r) => r.service === 'shard-1' && r.restarts === 1); i++) await new Promise((r) => setTimeout(r, 100));
    const back = sup.replicas().filter((r) => r.service === 'shard-1');
    assert.equal(back.length, 2);
    assert.ok(back.some((r) => r.restarts === 1 && r.pid !== victim.pid));
  } finally {
    await stop(sup);
  }
});

test('router replicas share the public port, each counted on its own metrics port; a killed router is restarted', async () => {
  const plan: Plan = { ...rowWisePlan(sumConfig, { shards: 2, replicas: 1, cacheRows: 8, dense: 'router', denseReplicas: 1 }), router: { replicas: 2, cacheRows: 8 } };
  const sup = await serve(models.sum, plan);
  const served = async () => {
    const routers = sup.replicas().filter((r) => r.role === 'router');
    return Promise.all(routers.map((r) => scrapeMetric(`http://127.0.0.1:${r.metricsPort}`, 'shardwise_requests_total', 'outcome="ok"')));
  };
  const burst = async (n: number) => {
    // Fresh connections: the supervisor hands each to the next router in turn.
    const body = JSON.stringify(encodeRequest(queries(sumConfig, 1, 5)[0], 4));
    assert.deepEqual(await Promise.all(Array.from({ length: n }, () => postRaw(sup.routerPort, '/v2/models/tiny/infer', body))), Array(n).fill(200));
  };
  try {
    const routers = sup.replicas().filter((r) => r.role === 'router');
    assert.equal(routers.length, 2);
    assert.equal(routers[0].port, routers[1].port, 'one public port');
    assert.notEqual(routers[0].metricsPort, routers[1].metricsPort);
    await burst(20);
    const counts = await served();
    assert.equal(counts[0] + counts[1], 20);
    assert.ok(counts.every((c) => c > 0), `both routers served: ${counts}`);
    // A dead router is restarted on the same port; once its death is seen, the survivor serves alone.
    process.kill(routers[0].pid, 'SIGKILL');
    for (let i = 0; i < 100 && sup.replicas().some((r) => r.pid === routers[0].pid); i++) await new Promise((r) => setTimeout(r, 20));
    await burst(10);
    for (let i = 0; i < 100 && !sup.replicas().some((r) => r.role === 'router' && r.restarts === 1); i++) await new Promise((r) => setTimeout(r, 100));
    const back = sup.replicas().filter((r) => r.role === 'router');
    assert.equal(back.length, 2);
    assert.ok(back.some((r) => r.restarts === 1 && r.pid !== routers[0].pid && r.port === routers[0].port));
    await burst(40);
    assert.ok((await served()).every((c) => c > 0), 'the restarted router serves too');
  } finally {
    await stop(sup);
  }
});

test('stop() drains queries already in flight, then leaves no process behind', async () => {
  const plan = rowWisePlan(sumConfig, { shards: 2, replicas: 1, cacheRows: 0, dense: 'service', denseReplicas: 1 });
  const sup = await serve(models.sum, plan);
  const pids = sup.replicas().map((r) => r.pid);
  // Freeze one shard so the queries are provably inside the router when stop() begins.
  const frozen = sup.replicas().find((r) => r.service === 'shard-1')!.pid;
  process.kill(frozen, 'SIGSTOP');
  const results = queries(sumConfig, 10, 3).map((q) => postRaw(sup.routerPort, '/v2/models/tiny/infer', JSON.stringify(encodeRequest(q, 4))));
  await new Promise((r) => setTimeout(r, 300));
  const stopping = stop(sup);
  await new Promise((r) => setTimeout(r, 300));
  process.kill(frozen, 'SIGCONT');
  await stopping;
  assert.deepEqual(await Promise.all(results), Array(10).fill(200), 'every in-flight query is answered');
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `pid ${pid} is gone`);
});

test('invalid plans are rejected with the field and what was expected', () => {
  const plan = rowWisePlan(sumConfig, { shards: 2, replicas: 1, cacheRows: 0, dense: 'router', denseReplicas: 1 });
  const bad = (mutate: (p: Plan) => void, pattern: RegExp) => {
    const p: Plan = JSON.parse(JSON.stringify(plan));
    mutate(p);
    assert.throws(() => validatePlan(p, sumConfig, 'plan.json'), (e: unknown) => e instanceof ShardwiseError && e.code === 'SW_PLAN' && pattern.test(e.message));
  };
  bad((p) => (p.shards[1].pieces[0].rowStart += 1), /table 0 rows \[500, 501\) are in no shard/);
  bad((p) => (p.shards[1].pieces[0].rowStart -= 1), /table 0 rows \[499, 500\) are in two shards/);
  bad((p) => (p.shards[0].replicas = 0), /shards\[0\]\.replicas must be an integer ≥ 1/);
  bad((p) => (p.model.tableRows[2] = 5), /was made for tables of/);
  bad((p) => (p.shards[1].name = 'shard-0'), /used twice/);
  bad((p) => (p.shards[1].name = 'dense'), /'dense' is the name of another service/);
  bad((p) => (p.shards[0].pieces[0].rowEnd = 5000), /expected 0 ≤ rowStart < rowEnd ≤ 1001/);
});
