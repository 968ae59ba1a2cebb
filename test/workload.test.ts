import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { validateBatch } from '../src/model/batch.ts';
import { QueryGenerator, writeTrace } from '../src/workload/generate-trace.ts';
import { TraceReader, TraceWriter, readQueries } from '../src/workload/trace-format.ts';
import { traceStats, reuseBin } from '../src/workload/trace-stats.ts';
import { ScatterPermutation, rankSampler } from '../src/workload/distributions.ts';
import { Rng } from '../src/util/rng.ts';
import { ShardwiseError } from '../src/util/errors.ts';
import { parseShape, rateAt, shapeDurationS } from '../src/workload/traffic-shape.ts';
import { tempDir } from './helpers.ts';

const tiny = presetConfig('tiny');

test('the scatter permutation is a bijection and moves hot ranks away from low ids', () => {
  for (const n of [1, 2, 3, 10, 97, 1000, 4096]) {
    const p = new ScatterPermutation(n, 42);
    const seen = new Uint8Array(n);
    for (let r = 0; r < n; r++) seen[p.apply(r)]++;
    assert.ok(seen.every((c) => c === 1), `n=${n}`);
  }
  const p = new ScatterPermutation(100_000, 1);
  const hot = Array.from({ length: 100 }, (_, r) => p.apply(r));
  assert.ok(hot.filter((id) => id < 10_000).length < 50, 'hottest ranks are spread over the id space');
});

test('locality P puts a share P of lookups on the hottest 10% of ranks', () => {
  const rng = new Rng(3);
  for (const P of [0.5, 0.9]) {
    const s = rankSampler({ kind: 'locality', p: P }, 10_000);
    let hot = 0;
    for (let i = 0; i < 100_000; i++) if (s.next(rng) < 1000) hot++;
    assert.ok(Math.abs(hot / 100_000 - P) < 0.01, `P=${P}: ${hot / 100_000}`);
  }
});

test('Zipf ranks follow 1/k^s', () => {
  const rng = new Rng(4);
  const n = 1000, s = 1.2, draws = 200_000;
  const sampler = rankSampler({ kind: 'zipf', s }, n);
  const counts = new Uint32Array(n);
  for (let i = 0; i < draws; i++) counts[sampler.next(rng)]++;
  let h = 0;
  for (let k = 1; k <= n; k++) h += k ** -s;
  for (const k of [1, 2, 5, 20]) {
    const want = k ** -s / h;
    assert.ok(Math.abs(counts[k - 1] / draws - want) < 0.1 * want + 0.002, `rank ${k}: ${counts[k - 1] / draws} vs ${want}`);
  }
  assert.throws(() => rankSampler({ kind: 'zipf', s: 1 }, n), ShardwiseError);
});

test('generated queries are valid, deterministic and honour the pooling factor', () => {
  const opts = { queries: 5, batch: 4, access: { kind: 'locality', p: 0.9 } as const, pooling: 'fixed' as const, seed: 9 };
  const a = new QueryGenerator(tiny, opts);
  const b = new QueryGenerator(tiny, opts);
  for (let i = 0; i < 5; i++) {
    const qa = a.next();
    validateBatch(tiny, qa);
    assert.deepEqual(qa, b.next());
    for (let s = 0; s < 4; s++) {
      tiny.tables.forEach((t, ti) => assert.equal(qa.offsets[s * 3 + ti + 1] - qa.offsets[s * 3 + ti], t.poolingFactor));
    }
  }
  const poisson = new QueryGenerator(tiny, { ...opts, pooling: 'poisson' }).next();
  validateBatch(tiny, poisson);
});

test('a trace round-trips through the file format and streams', () => {
  const dir = tempDir();
  const file = path.join(dir, 't.bin');
  writeTrace(file, tiny, { queries: 300, batch: 3, access: { kind: 'zipf', s: 0.9 }, pooling: 'poisson', seed: 5 });
  const gen = new QueryGenerator(tiny, { queries: 300, batch: 3, access: { kind: 'zipf', s: 0.9 }, pooling: 'poisson', seed: 5 });
  const reader = new TraceReader(file);
  assert.deepEqual(reader.header, { numDense: 4, rows: [1000, 500, 2000], hasWeights: false });
  let n = 0;
  for (const q of reader) {
    assert.deepEqual(q, gen.next());
    n++;
  }
  reader.close();
  assert.equal(n, 300);
  assert.equal(readQueries(file, 10).queries.length, 10);

  const weighted = path.join(dir, 'w.bin');
  const w = new TraceWriter(weighted, { numDense: 4, rows: [1000, 500, 2000], hasWeights: true });
  const q = { ...gen.next(), weights: null as Float32Array | null };
  q.weights = Float32Array.from(q.indices, (_, i) => i / 10);
  w.write(q);
  w.close();
  assert.deepEqual(readQueries(weighted).queries[0], q);
});

test('corrupt traces fail with the file and the offset', () => {
  const dir = tempDir();
  const file = path.join(dir, 't.bin');
  writeTrace(file, tiny, { queries: 4, batch: 2, access: { kind: 'uniform' }, pooling: 'fixed', seed: 1 });
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 7));
  assert.throws(() => readQueries(file), (e: unknown) => e instanceof ShardwiseError && e.code === 'SW_TRACE_FORMAT' && /truncated/.test(e.message) && e.message.includes(file));
  fs.writeFileSync(file, 'not a trace at all, really');
  assert.throws(() => readQueries(file), /bad magic/);
  assert.throws(() => readQueries(path.join(dir, 'missing.bin')), /cannot be opened/);
});

test('trace-stats measures locality and the reuse histogram', () => {
  const dir = tempDir();
  const file = path.join(dir, 't.bin');
  const config = { ...tiny, tables: [{ name: 'a', rows: 5000, poolingFactor: 10 }] };
  writeTrace(file, config, { queries: 200, batch: 10, access: { kind: 'locality', p: 0.8 }, pooling: 'fixed', seed: 2 });
  const stats = traceStats(file);
  assert.equal(stats.queries, 200);
  assert.equal(stats.samples, 2000);
  const t = stats.tables[0];
  assert.equal(t.lookups, 20_000);
  assert.ok(Math.abs(t.hot10 - 0.8) < 0.02, `hot10 ${t.hot10}`);
  assert.ok(t.hot1 < t.hot10 && t.hot1 > 0.05);
  assert.ok(t.uniqueRows <= 5000 && t.uniqueRows > 500);
  const rowShares = t.reuse.reduce((s, b) => s + b.rowShare, 0);
  const lookupShares = t.reuse.reduce((s, b) => s + b.lookupShare, 0);
  assert.ok(Math.abs(rowShares - 1) < 1e-9 && Math.abs(lookupShares - 1) < 1e-9);
  assert.deepEqual([1, 2, 3, 4, 5, 8, 9].map(reuseBin), [0, 1, 2, 2, 3, 3, 4]);
});

test('traffic shapes parse from their command-line form and give the rate at each second', () => {
  const stairs = parseShape('staircase:10:100,5:400,10:50');
  assert.equal(shapeDurationS(stairs), 25);
  assert.deepEqual([0, 9.9, 10, 14.9, 15, 24.9, 25].map((t) => rateAt(stairs, t)), [100, 100, 400, 400, 50, 50, 0]);
  const day = parseShape('diurnal:100:300:60:120');
  assert.equal(rateAt(day, 0), 100);
  assert.ok(Math.abs(rateAt(day, 30) - 300) < 1e-9);
  assert.ok(Math.abs(rateAt(day, 15) - 200) < 1e-9);
  const spike = parseShape('spike:100:800:30:5:60');
  assert.deepEqual([29, 30, 34.9, 35].map((t) => rateAt(spike, t)), [100, 800, 800, 100]);
  assert.deepEqual(parseShape('constant:250:10'), { kind: 'constant', qps: 250, durationS: 10 });
  const csv = path.join(tempDir(), 'rates.csv');
  fs.writeFileSync(csv, 'second,qps\n0,10\n1,20\n2,30\n');
  const series = parseShape(`csv:${csv}`);
  assert.equal(shapeDurationS(series), 3);
  assert.deepEqual([0, 1.5, 2, 3].map((t) => rateAt(series, t)), [10, 20, 30, 0]);
  for (const [bad, pattern] of [['ramp:1:2', /unknown kind "ramp"/], ['constant:100', /expected 2 non-negative numbers/], ['staircase:10:-5', /non-negative/], ['diurnal:300:100:60:120', /MIN ≤ MAX/], ['csv:/nonexistent.csv', /cannot read/]] as const) {
    assert.throws(() => parseShape(bad), (e: unknown) => e instanceof ShardwiseError && pattern.test(e.message), bad);
  }
});
