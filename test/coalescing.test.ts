import { test } from 'node:test';
import assert from 'node:assert/strict';
import { presetConfig } from '../src/model/presets.ts';
import { concatBatches, validateBatch, type Batch } from '../src/model/batch.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { CoalescingEngine } from '../src/serving/coalescing-engine.ts';
import type { InferenceEngine } from '../src/serving/engine.ts';

const tiny = presetConfig('tiny');
const gen = new QueryGenerator(tiny, { queries: 1, batch: 3, access: { kind: 'uniform' }, pooling: 'poisson', seed: 4 });

test('concatBatches keeps every sample and bag, shifting offsets', () => {
  const a = gen.next();
  const b = { ...gen.next(), weights: null };
  const w = gen.next();
  w.weights = Float32Array.from(w.indices, (_, i) => i);
  const m = concatBatches([a, b, w], 4, 3);
  validateBatch(tiny, m);
  assert.equal(m.size, 9);
  assert.deepEqual(m.dense.subarray(12, 24), b.dense);
  const T = 3;
  for (let s = 0; s < 3; s++) {
    for (let t = 0; t < T; t++) {
      const bag = (3 + s) * T + t;
      assert.deepEqual(m.indices.subarray(m.offsets[bag], m.offsets[bag + 1]), b.indices.subarray(b.offsets[s * T + t], b.offsets[s * T + t + 1]));
    }
  }
  assert.ok(m.weights!.subarray(0, a.indices.length).every((x) => x === 1), 'batches without weights weigh 1');
  assert.deepEqual(m.weights!.subarray(a.indices.length + b.indices.length), w.weights);
});

/** Scores each sample by its first dense value, counting calls and batch sizes. */
class FakeEngine implements InferenceEngine {
  readonly config = tiny;
  calls: number[] = [];
  constructor(private readonly delayMs: number) {}
  async infer(batch: Batch): Promise<Float32Array> {
    this.calls.push(batch.size);
    await new Promise((r) => setTimeout(r, this.delayMs));
    return Float32Array.from({ length: batch.size }, (_, s) => batch.dense[s * 4]);
  }
  queueAgeMs() {
    return 0;
  }
  unready() {
    return null;
  }
  async close() {}
}

test('an idle engine dispatches at once; a busy one merges arrivals and splits the scores back', async () => {
  const inner = new FakeEngine(20);
  const engine = new CoalescingEngine(inner, { maxConcurrent: 1, maxSamples: 9, maxDelayMs: 0 });
  const qs = Array.from({ length: 7 }, () => gen.next());
  const results = await Promise.all(qs.map((q) => engine.infer(q)));
  qs.forEach((q, i) => assert.deepEqual(results[i], Float32Array.from([q.dense[0], q.dense[4], q.dense[8]])));
  assert.deepEqual(inner.calls, [3, 9, 9], 'first alone, then merged up to 9 samples');
  const failing = new CoalescingEngine({ config: tiny, infer: async () => Promise.reject(new Error('shard down')), queueAgeMs: () => 0, unready: () => null, close: async () => {} }, { maxConcurrent: 1, maxSamples: 9, maxDelayMs: 0 });
  await assert.rejects(failing.infer(qs[0]), /shard down/);
});

test('with a queue delay, a free slot waits for the budget or a full batch, and close sends what waits', async () => {
  const inner = new FakeEngine(1);
  const engine = new CoalescingEngine(inner, { maxConcurrent: 2, maxSamples: 9, maxDelayMs: 40 });
  const qs = Array.from({ length: 4 }, () => gen.next());
  const t0 = performance.now();
  const first = engine.infer(qs[0]);
  const second = engine.infer(qs[1]);
  await first;
  const waited = performance.now() - t0;
  assert.ok(waited >= 39, `a lone batch waits out the budget (waited ${waited.toFixed(1)} ms)`);
  await second;
  assert.deepEqual(inner.calls, [6], 'the two queries that arrived within the budget went out as one batch');
  // Three batches of 3 fill maxSamples: they go out without waiting.
  const t1 = performance.now();
  await Promise.all(qs.slice(1, 4).map((q) => engine.infer(q)));
  assert.ok(performance.now() - t1 < 35, 'a full batch does not wait');
  assert.deepEqual(inner.calls, [6, 9]);
  const pending = engine.infer(qs[0]);
  await engine.close();
  assert.deepEqual(await pending, Float32Array.from([qs[0].dense[0], qs[0].dense[4], qs[0].dense[8]]), 'close sends a waiting query instead of dropping it');
  assert.deepEqual(inner.calls, [6, 9, 3]);
});
