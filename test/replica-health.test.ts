import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameServer, type Reply } from '../src/serving/frame-server.ts';
import { FrameType } from '../src/serving/frame.ts';
import { ReplicaPool, type PoolEvent, DEFAULT_POOL_HEALTH } from '../src/serving/replica-pool.ts';
import { AdmissionControl } from '../src/serving/admission.ts';
import { PushedReplicaSource, StaticReplicaSource } from '../src/serving/replica-source.ts';
import { badRequest } from '../src/util/errors.ts';

/** A frame server that answers at once, or, while hung, holds every request until released (a SIGSTOPped process). */
async function replica(name: string) {
  let hung = false;
  const held: (() => void)[] = [];
  let served = 0;
  const server = new FrameServer(name, (frame) => {
    const reply: Reply = { type: FrameType.DENSE_RESPONSE, parts: [Buffer.from(name)] };
    if (frame.payload.toString() === 'bad') throw badRequest('the request is bad');
    if (!hung) return served++, reply;
    return new Promise<Reply>((resolve) => held.push(() => resolve(reply)));
  }, () => {});
  const port = await server.listen(0);
  return {
    address: { host: '127.0.0.1', port },
    get served() {
      return served;
    },
    hang: () => (hung = true),
    release: () => {
      hung = false;
      for (const r of held.splice(0)) r();
    },
    close: () => server.close(),
  };
}

const request = (pool: ReplicaPool, deadlineMs = 2000, body = 'q') => pool.request(FrameType.DENSE_REQUEST, [Buffer.from(body)], Date.now() + deadlineMs);

test('a hung replica of two: every request is answered by the other (hedged at the p95), the hung one is ejected, and returns once it answers again', async () => {
  const [a, b] = [await replica('a'), await replica('b')];
  const events: PoolEvent[] = [];
  const pool = new ReplicaPool('shard-0', [a.address, b.address], { ...DEFAULT_POOL_HEALTH, baseEjectionMs: 200 }, (e) => events.push(e));
  try {
    for (let i = 0; i < 40; i++) await request(pool); // the hedge delay learns this pool's latencies
    b.hang();
    let slowest = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const reply = await request(pool);
      slowest = Math.max(slowest, performance.now() - t0);
      assert.equal(reply.payload.toString(), 'a');
    }
    const ejected = events.filter((e) => e.type === 'ejected');
    assert.ok(ejected.length >= 1, 'b was ejected');
    assert.match((ejected[0] as Extract<PoolEvent, { type: 'ejected' }>).reason, /5 failures in a row/);
    assert.ok(events.some((e) => e.type === 'hedged'));
    // Each request waited at most one hedge delay (a few ms), never the 2 s deadline.
    assert.ok(slowest < 500, `slowest ${slowest.toFixed(1)} ms`);
    assert.equal(pool.unready(), null, 'a still serves');

    b.release();
    const servedBefore = b.served;
    for (let i = 0; i < 400 && !events.some((e) => e.type === 'returned'); i++) {
      await request(pool);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(events.some((e) => e.type === 'returned'), 'b is back in rotation');
    for (let i = 0; i < 20; i++) await Promise.all([request(pool), request(pool)]);
    assert.ok(b.served > servedBefore, 'b serves again');
  } finally {
    pool.close();
    await a.close();
    await b.close();
  }
});

test('every replica hung: the pool is not ready; an ERROR frame is the request\'s fault, not retried and not held against the replica', async () => {
  const [a, b] = [await replica('a'), await replica('b')];
  const events: PoolEvent[] = [];
  const pool = new ReplicaPool('dense', [a.address, b.address], { ...DEFAULT_POOL_HEALTH, ejectAfter: 2 }, (e) => events.push(e));
  try {
    for (let i = 0; i < 10; i++) await assert.rejects(request(pool, 2000, 'bad'), /the request is bad/);
    assert.equal(events.filter((e) => e.type === 'ejected').length, 0);
    a.hang();
    b.hang();
    for (let i = 0; i < 4; i++) await assert.rejects(request(pool, 50), /no answer/);
    assert.match(pool.unready() ?? '', /every replica of service dense is ejected/);
    a.release();
    b.release();
    assert.equal(new ReplicaPool('empty').unready(), 'service empty has no replica');
  } finally {
    pool.close();
    await a.close();
    await b.close();
  }
});

test('admission control refuses only a standing queue: a burst passes, a queue over budget for burstMs is refused, in flight is capped', () => {
  let wait = 0;
  const changes: string[] = [];
  const ac = new AdmissionControl({ maxInflight: 3, maxQueueMs: 10, burstMs: 5 }, () => wait, (refusing, detail) => changes.push(`${refusing ? 'refusing' : 'admitting'}: ${detail}`));
  assert.equal(ac.admit(0), true);
  wait = 30; // a burst: over the budget, but not for long yet
  assert.equal(ac.admit(1), true);
  assert.equal(ac.admit(4), true);
  assert.equal(ac.admit(4), false);
  assert.match(ac.refusal(4), /3 queries in flight, the limit is 3/);
  ac.release();
  ac.release();
  assert.equal(ac.admit(7), false);
  assert.match(ac.refusal(7), /over the 10 ms queue budget for 6 ms \(now 30 ms\)/);
  wait = 2; // the queue drained
  assert.equal(ac.admit(8), true);
  wait = 30;
  assert.equal(ac.admit(9), true, 'a new burst gets its grace again');
  assert.deepEqual(changes, ['refusing: 3 queries in flight, the limit is 3', 'admitting: 2 queries refused']);
});

test('replica sources: a static list, and pushed updates a pool follows (a replica dropped from the list drains)', async () => {
  const [a, b] = [await replica('a'), await replica('b')];
  const events: PoolEvent[] = [];
  const pool = new ReplicaPool('shard-0', [], DEFAULT_POOL_HEALTH, (e) => events.push(e));
  try {
    new StaticReplicaSource(new Map([['shard-0', [a.address]]])).watch('shard-0', (addrs) => pool.setAddresses(addrs));
    assert.equal((await request(pool)).payload.toString(), 'a');
    const pushed = new PushedReplicaSource();
    pushed.push('shard-0', [b.address]);
    const stop = pushed.watch('shard-0', (addrs) => pool.setAddresses(addrs));
    assert.equal((await request(pool)).payload.toString(), 'b', 'the current list on subscribe');
    assert.ok(events.some((e) => e.type === 'drained' && e.replica.endsWith(`:${a.address.port}`)), 'the dropped replica drained');
    pushed.push('shard-0', [a.address, b.address]);
    assert.equal(pool.size, 2);
    stop();
    pushed.push('shard-0', []);
    assert.equal(pool.size, 2, 'no updates after unsubscribing');
  } finally {
    pool.close();
    await a.close();
    await b.close();
  }
});
