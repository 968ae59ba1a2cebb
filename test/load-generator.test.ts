import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { presetConfig } from '../src/model/presets.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { LOAD_CLIENTS, MaxQpsSearch, encodeQueries, findMaxQps, meetsSla, runOpenLoop, type RunResult, type SecondStats } from '../src/bench/load-generator.ts';

const tiny = presetConfig('tiny');
const queries = encodeQueries([new QueryGenerator(tiny, { queries: 1, batch: 2, access: { kind: 'uniform' }, pooling: 'fixed', seed: 1 }).next()], 4);

/** A stand-in server that answers every request after `delayMs`, or with `status`. */
async function fakeServer(delayMs: number, status = 200): Promise<{ url: string; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const server = http.createServer((req, res) => {
    received++;
    req.resume();
    req.on('end', () => setTimeout(() => res.writeHead(status).end('{}'), delayMs));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    received: () => received,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

test('open loop: a slow server does not slow the sender, and latency includes the wait', async () => {
  const srv = await fakeServer(300);
  try {
    const r = await runOpenLoop({ url: srv.url, modelName: 'tiny' }, queries, { qps: 100, durationS: 2, timeoutMs: 5000, seed: 3 });
    assert.ok(r.sent > 150 && r.sent < 250, `Poisson arrivals at 100 qps for 2 s sent ${r.sent}`);
    assert.equal(r.ok, r.sent);
    assert.ok(r.latency.p50Ms >= 300 && r.latency.p50Ms < 450, `p50 ${r.latency.p50Ms}`);
    assert.ok(srv.received() >= r.sent);
    assert.ok(!meetsSla(r, 100));
    assert.ok(meetsSla(r, 1000));
  } finally {
    await srv.close();
  }
});

test("the sender's own lag is measured: queries due while its event loop was blocked are sent late, and their latency counts from when they were due", async () => {
  const srv = await fakeServer(0);
  try {
    // 300 ms of the sender's own CPU a third of the way into the run: ~60 queries fall due meanwhile.
    setTimeout(() => {
      const until = performance.now() + 300;
      while (performance.now() < until);
    }, 700);
    const seconds: SecondStats[] = [];
    const r = await runOpenLoop({ url: srv.url, modelName: 'tiny' }, queries, { qps: 200, durationS: 2, timeoutMs: 5000, warmupS: 0.2, seed: 5, onSecond: (x) => seconds.push(x) });
    assert.equal(r.ok, r.sent);
    assert.equal(seconds.length, 2);
    assert.ok(seconds[0].sendLagMaxMs >= 250, `the block lies in the first measured second: its latest send ${seconds[0].sendLagMaxMs} ms`);
    assert.ok(r.sendLag.maxMs >= 250, `send lag max ${r.sendLag.maxMs} ms behind a 300 ms block`);
    assert.ok(r.sendLag.p99Ms >= 100, `send lag p99 ${r.sendLag.p99Ms} ms: over 1% of the queries were due in the block`);
    assert.ok(r.latency.maxMs >= r.sendLag.maxMs, 'a late send is part of its latency');
  } finally {
    await srv.close();
  }
});

test('errors and timeouts are counted, not hidden', async () => {
  const failing = await fakeServer(0, 503);
  const slow = await fakeServer(2000);
  try {
    const e = await runOpenLoop({ url: failing.url, modelName: 'tiny' }, queries, { qps: 50, durationS: 1, timeoutMs: 1000 });
    assert.equal(e.ok, 0);
    assert.equal(e.errors, e.sent);
    const t = await runOpenLoop({ url: slow.url, modelName: 'tiny' }, queries, { qps: 20, durationS: 1, timeoutMs: 200 });
    assert.equal(t.timeouts, t.sent);
    assert.ok(!meetsSla(t, 10_000));
  } finally {
    await failing.close();
    await slow.close();
  }
});

/**
 * A raw HTTP server that answers by the request's sequence number, in the shapes a sender must
 * read: a head and body split across packets, a 429, a Connection: close answer, a chunked one.
 */
async function awkwardServer(): Promise<{ url: string; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let pending = Buffer.alloc(0);
    socket.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(pending.toString('latin1', 0, end))![1]);
        if (pending.length < end + 4 + length) return;
        pending = pending.subarray(end + 4 + length);
        const kind = n++ % 4;
        if (kind === 0) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Le');
          setTimeout(() => socket.write('ngth: 10\r\n\r\n01234'), 5);
          setTimeout(() => socket.write('56789'), 10);
        } else if (kind === 1) socket.write('HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n{}');
        else if (kind === 2) socket.end('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}');
        else {
          socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{');
          setTimeout(() => socket.write('}\r\n0\r\n\r\n'), 5);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => new Promise((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))),
  };
}

test('every load client reads split answers, refusals, closed connections and chunked answers alike', async () => {
  for (const client of LOAD_CLIENTS) {
    const srv = await awkwardServer();
    try {
      const r = await runOpenLoop({ url: srv.url, modelName: 'tiny' }, queries, { qps: 1, rate: () => 20, durationS: 2, timeoutMs: 2000, client });
      const quarter = r.sent / 4;
      assert.ok(r.sent >= 20, `${client}: sent ${r.sent}`);
      assert.equal(r.timeouts, 0, client);
      assert.ok(Math.abs(r.rejected - quarter) <= 1, `${client}: ${r.rejected} refused of ${r.sent}`);
      assert.equal(r.ok + r.rejected, r.sent, `${client}: every other answer read`);
    } finally {
      await srv.close();
    }
  }
});

/** A raw HTTP server that closes each connection, with no answer, at its `closeAt`-th request (1: the first). */
async function closingServer(closeAt: number): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let n = 0;
    let pending = Buffer.alloc(0);
    socket.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(pending.toString('latin1', 0, end))![1]);
      if (pending.length < end + 4 + length) return;
      pending = pending.subarray(end + 4 + length);
      if (++n === closeAt) socket.destroy();
      else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => new Promise((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))),
  };
}

test('the raw client sends a query again when a reused keep-alive connection closes before any answer, and counts the same close on a new connection as a failure', async () => {
  const closesIdle = await closingServer(2);
  const closesAll = await closingServer(1);
  try {
    const r = await runOpenLoop({ url: closesIdle.url, modelName: 'tiny' }, queries, { qps: 20, durationS: 1, timeoutMs: 2000 });
    assert.ok(r.sent >= 10, `sent ${r.sent}`);
    assert.equal(r.ok, r.sent, `every query answered: ${r.errors} errors (first: ${r.firstFailure})`);
    const f = await runOpenLoop({ url: closesAll.url, modelName: 'tiny' }, queries, { qps: 20, durationS: 1, timeoutMs: 2000 });
    assert.equal(f.errors, f.sent);
    assert.equal(f.firstFailure, 'the server closed the connection');
  } finally {
    await closesIdle.close();
    await closesAll.close();
  }
});

test('find-max brackets the capacity of a server that serializes requests', async () => {
  // One request at a time, 5 ms each: capacity ≈ 200 qps; with p99 ≤ 60 ms the max lies below that.
  let busyUntil = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      busyUntil = Math.max(busyUntil, Date.now()) + 5;
      setTimeout(() => res.writeHead(200).end('{}'), busyUntil - Date.now());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const found = await findMaxQps({ url, modelName: 'tiny' }, queries, { slaP99Ms: 60, stepS: 1.5, minSamples: 50, timeoutMs: 2000, startQps: 40 });
    assert.ok(found.maxQps >= 60 && found.maxQps <= 200, `max ${found.maxQps}`);
    assert.ok(found.steps.some((s) => !meetsSla(s, 60)), 'the search went past the capacity');
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('the max-QPS search doubles, bisects to 5%, and needs a second miss at a rate to believe it', () => {
  const search = new MaxQpsSearch({ slaP99Ms: 50, stepS: 1, startQps: 100, timeoutMs: 1000 });
  const result = (qps: number, p99Ms: number): RunResult => ({
    targetQps: qps, durationS: 1, sent: qps, ok: qps, rejected: 0, okWithinSla: qps, errors: 0, timeouts: 0, achievedQps: qps,
    latency: { count: qps, meanMs: p99Ms / 2, p50Ms: p99Ms / 2, p95Ms: p99Ms, p99Ms, p999Ms: p99Ms, maxMs: p99Ms },
    sendLag: { p99Ms: 0, maxMs: 0 },
  });
  const tried: number[] = [];
  let stalled = false;
  for (let qps = search.next(); qps !== null; qps = search.next()) {
    tried.push(qps);
    // Capacity 730 qps; one stall blows the first step at 400 qps.
    const stall: boolean = qps === 400 && !stalled;
    stalled ||= stall;
    search.record(result(qps, qps <= 730 && !stall ? 20 : 90));
  }
  assert.deepEqual(tried.slice(0, 5), [100, 200, 400, 400, 800], 'a miss at 400 is run again before it counts');
  assert.equal(tried[5], 800, 'the first miss at 800 is confirmed');
  assert.ok(search.maxQps <= 730 && search.maxQps >= 0.95 * 730 * 0.95, `max ${search.maxQps}`);
  assert.equal(search.best?.targetQps, search.maxQps);
  assert.equal(search.durationS(100), 10, 'a step runs long enough for 1000 queries');
});

test('the max-QPS search stops at its floor instead of bisecting down to nothing', () => {
  const search = new MaxQpsSearch({ slaP99Ms: 50, stepS: 1, startQps: 100, timeoutMs: 1000, floorQps: 10 });
  const missed = (qps: number): RunResult => ({
    targetQps: qps, durationS: 1, sent: qps, ok: qps, rejected: 0, okWithinSla: qps, errors: 0, timeouts: 0, achievedQps: qps,
    latency: { count: qps, meanMs: 90, p50Ms: 90, p95Ms: 90, p99Ms: 90, p999Ms: 90, maxMs: 90 },
    sendLag: { p99Ms: 0, maxMs: 0 },
  });
  const tried: number[] = [];
  for (let qps = search.next(); qps !== null; qps = search.next()) {
    tried.push(qps);
    search.record(missed(qps));
  }
  assert.ok(Math.min(...tried) <= 10 && Math.min(...tried) > 5, `stopped near the floor (tried ${tried.join(', ')})`);
  assert.equal(search.maxQps, 0);
});
