import { test } from 'node:test';
import * as net from 'node:net';
import assert from 'node:assert/strict';
import { presetConfig } from '../src/model/presets.ts';
import type { Batch } from '../src/model/batch.ts';
import type { InferenceEngine } from '../src/serving/engine.ts';
import { DEFAULT_HTTP_LIMITS, InferenceHttpServer } from '../src/serving/http-api.ts';
import type { AdmissionOptions } from '../src/serving/admission.ts';
import { ServiceMetrics } from '../src/serving/metrics.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { encodeRequest } from '../src/protocol/oip.ts';
import { silentLogger } from '../src/util/log.ts';
import { rawRequest, sendRaw } from './raw-http.ts';

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

async function start(engine: StubEngine, admission: AdmissionOptions | null = { maxInflight: 100, maxQueueMs: 10, burstMs: 0 }) {
  const server = new InferenceHttpServer(engine, new ServiceMetrics('front'), { limits: DEFAULT_HTTP_LIMITS, admission, log: silentLogger });
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

/**
 * Sends a request's head and the first half of its body, then, after a pause, the rest: whether
 * any answer came during the pause, and the answer (read to the connection's close).
 */
function sendInHalves(port: number, head: Buffer, body: Buffer): Promise<{ early: boolean; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let early: boolean | undefined;
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.write(Buffer.concat([head, body.subarray(0, body.length >> 1)]));
      setTimeout(() => {
        early = chunks.length > 0;
        socket.write(body.subarray(body.length >> 1));
      }, 200);
    });
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ early: early ?? true, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
  });
}

test('an answer decided before the body has arrived waits for the rest of it (a refusal, a 404, a bad header), so a connection is never closed on bytes still coming; kept alive, it serves the next query', async () => {
  // Closing a connection on bytes still arriving resets it, and the client loses the answer: a
  // refused 6 MB body in the bad-input battery got EPIPE and no 429.
  const big = Buffer.alloc(6 << 20, 0x20);
  const head = (path: string, extra = '') => Buffer.from(`POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: ${big.length}\r\n${extra}\r\n`);
  const engine = new StubEngine();
  const admitting = await start(engine);
  try {
    engine.queueAge = 1000;
    assert.equal((await admitting.infer()).status, 200, 'the first over the budget starts the burst grace (0 ms here)');
    const refused = await sendInHalves(Number(new URL(admitting.url).port), head('/v2/models/tiny/infer'), big);
    assert.deepEqual([refused.status, JSON.parse(refused.body).code, refused.early], [429, 'SW_OVERLOADED', false]);
  } finally {
    await admitting.server.close();
  }
  // The rest without admission control (sending 6 MB keeps this process's loop busy, which it reads as a backlog).
  engine.queueAge = 0;
  const { server, url, infer } = await start(engine, null);
  const port = Number(new URL(url).port);
  try {
    const missing = await sendInHalves(port, head('/v2/models/other/infer'), big);
    assert.deepEqual([missing.status, missing.early], [404, false]);
    const badHeader = await sendInHalves(port, head('/v2/models/tiny/infer', 'inference-header-content-length: x\r\n'), big);
    assert.deepEqual([badHeader.status, badHeader.early], [400, false]);
    assert.match(JSON.parse(badHeader.body).error, /Inference-Header-Content-Length/);
    // A body over the limit is not waited for: 413 at once, and the connection closes.
    const over = await sendRaw(port, rawRequest('POST', '/v2/models/tiny/infer', { 'content-length': (64 << 20) + 1 }));
    assert.equal(over.status, 413);
    // Kept alive, a connection skips the dropped body and serves the next query.
    const res = await fetch(`${url}/v2/models/other/infer`, { method: 'POST', body: big });
    assert.deepEqual([res.status, res.headers.get('connection')], [404, 'keep-alive']);
    await res.arrayBuffer();
    const get = await fetch(`${url}/v2/models/other`);
    assert.deepEqual([get.status, get.headers.get('connection')], [404, 'keep-alive'], 'a request without a body is answered at once, kept alive');
    await get.arrayBuffer();
    assert.equal((await infer()).status, 200);
  } finally {
    await server.close();
  }
});

/** Sends a request's head with Expect: 100-continue and waits for the server's first word: a 100, or a final answer (read to the close). */
function askToContinue(port: number, path: string, length: number): Promise<{ socket: net.Socket; first: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('error', reject);
    const onData = (c: Buffer) => {
      text += c.toString('latin1');
      if (text.startsWith('HTTP/1.1 100') && text.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve({ socket, first: text });
      }
    };
    socket.on('data', onData);
    socket.on('end', () => resolve({ socket, first: text }));
    socket.on('connect', () => socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: ${length}\r\nexpect: 100-continue\r\n\r\n`));
  });
}

test('a client that waits for 100 Continue hears a refusal or a body over the limit before it sends its body, and otherwise gets its 100 and its answer', async () => {
  const engine = new StubEngine();
  const { server, url, infer } = await start(engine);
  const port = Number(new URL(url).port);
  try {
    const over = await askToContinue(port, '/v2/models/tiny/infer', (64 << 20) + 1);
    assert.match(over.first, /^HTTP\/1\.1 413 [\s\S]*connection: close[\s\S]*"code":"SW_BODY_TOO_LARGE"/i);
    const go = await askToContinue(port, '/v2/models/tiny/infer', Buffer.byteLength(body));
    assert.match(go.first, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      go.socket.on('data', (c) => (text += c.toString('latin1')) && text.includes('"score"') && resolve(text));
      go.socket.write(body);
    });
    assert.match(answer, /^HTTP\/1\.1 200 /);
    go.socket.destroy();
    engine.queueAge = 1000;
    assert.equal((await infer()).status, 200, 'the first over the budget starts the burst grace (0 ms here)');
    const refused = await askToContinue(port, '/v2/models/tiny/infer', 6 << 20);
    assert.match(refused.first, /^HTTP\/1\.1 429 [\s\S]*retry-after: 1[\s\S]*"code":"SW_OVERLOADED"/i);
    assert.doesNotMatch(refused.first, /100 Continue/);
  } finally {
    await server.close();
  }
});
