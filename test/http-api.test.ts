import { test } from 'node:test';
import assert from 'node:assert/strict';
import { presetConfig } from '../src/model/presets.ts';
import type { Batch } from '../src/model/batch.ts';
import type { InferenceEngine } from '../src/serving/engine.ts';
import { DEFAULT_HTTP_LIMITS, InferenceHttpServer } from '../src/serving/http-api.ts';
import { ServiceMetrics } from '../src/serving/metrics.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { encodeRequest } from '../src/protocol/oip.ts';
import { silentLogger } from '../src/util/log.ts';

const tiny = presetConfig('tiny');
const body = JSON.stringify(encodeRequest(new QueryGenerator(tiny, { queries: 1, batch: 2, access: { kind: 'uniform' }, pooling: 'fixed', seed: 1 }).next(), tiny.numDense));

/** An engine whose queue age and readiness the test sets. */
class StubEngine implements InferenceEngine {
  readonly config = tiny;
  queueAge = 0;
  why: string | null = null;
  async infer(batch: Batch) {
    return new Float32Array(batch.size).fill(0.5);
  }
  queueAgeMs() {
    return this.queueAge;
  }
  unready() {
    return this.why;
  }
  async close() {}
}

async function start(engine: StubEngine) {
  const server = new InferenceHttpServer(engine, new ServiceMetrics('front'), { limits: DEFAULT_HTTP_LIMITS, admission: { maxInflight: 100, maxQueueMs: 10, burstMs: 0 }, log: silentLogger });
  const port = await server.listen(0);
  const url = `http://127.0.0.1:${port}`;
  return { server, url, infer: () => fetch(`${url}/v2/models/tiny/infer`, { method: 'POST', body }) };
}

test('a standing queue over the budget gets 429 with Retry-After and a JSON reason, and admission resumes when it drains', async () => {
  const engine = new StubEngine();
  const { server, infer } = await start(engine);
  try {
    assert.equal((await infer()).status, 200);
    engine.queueAge = 1000;
    assert.equal((await infer()).status, 200, 'the first over the budget starts the burst grace (0 ms here)');
    const refused = await infer();
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.deepEqual(await refused.json(), { error: 'over capacity: queries would wait past the admission budget', code: 'SW_OVERLOADED', hint: 'retry after Retry-After seconds, or add replicas' });
    engine.queueAge = 0;
    // Let this process's loop idle a few ticks: client and server share it, and a loop busy tick after tick reads as a backlog too.
    await new Promise((r) => setTimeout(r, 30));
    assert.equal((await infer()).status, 200);
  } finally {
    await server.close();
  }
});

test('readiness says why not; close() turns readiness off at once, serves through the grace period, then stops', async () => {
  const engine = new StubEngine();
  const { server, url, infer } = await start(engine);
  engine.why = 'service shard-0 has no replica';
  const notReady = await fetch(`${url}/v2/health/ready`);
  assert.equal(notReady.status, 503);
  assert.match((await notReady.json()).error, /not ready: service shard-0 has no replica/);
  assert.equal((await fetch(`${url}/v2/models/tiny/ready`)).status, 503);
  assert.equal((await fetch(`${url}/v2/health/live`)).status, 200);
  engine.why = null;
  assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
  const closed = server.close(300);
  const draining = await fetch(`${url}/v2/health/ready`);
  assert.equal(draining.status, 503);
  assert.match((await draining.json()).error, /shutting down/);
  assert.equal((await infer()).status, 200, 'still serving during the grace period');
  await closed;
  await assert.rejects(infer(), 'not accepting after close');
});
