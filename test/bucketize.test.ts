import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREFETCH_IDS, Bucketizer } from '../src/serving/bucketize.ts';
import type { ShardSpec } from '../src/plan/types.ts';
import { bucketizeNative, bucketizeTs } from '../src/kernels/bucketize.ts';
import { Rng } from '../src/util/rng.ts';

const batchOf = (indices: number[], offsets: number[], tables = 1) => ({
  size: (offsets.length - 1) / tables,
  dense: new Float32Array(0),
  indices: Int32Array.from(indices),
  offsets: Int32Array.from(offsets),
  weights: null,
});

test("ElasticRec Fig. 11: bags split by shard range with the shard's base subtracted", () => {
  // One table of 10 rows; shard A = rows 0–5, shard B = rows 6–9. Two samples: [1,7 | 3,4,8].
  const shards: ShardSpec[] = [
    { name: 'a', replicas: 1, pieces: [{ table: 0, rowStart: 0, rowEnd: 6 }] },
    { name: 'b', replicas: 1, pieces: [{ table: 0, rowStart: 6, rowEnd: 10 }] },
  ];
  const split = new Bucketizer(1, shards, 0).split(batchOf([1, 7, 3, 4, 8], [0, 2, 5]));
  assert.deepEqual([...split.shards[0].ids], [1, 3, 4]);
  assert.deepEqual([...split.shards[0].offsets], [0, 1, 3]);
  assert.deepEqual([...split.shards[1].ids], [1, 2]);
  assert.deepEqual([...split.shards[1].offsets], [0, 1, 2]);
  assert.equal(split.cache.lookups, 0);
});

test('multi-table pieces, empty bags and the cache split', () => {
  // Two tables; shard 0 holds table 0 rows 4–7 and table 1 rows 0–9; shard 1 holds table 0 rows 8–11.
  // The cache takes positions < 4 of every table (table 0 rows 0–3 are in no shard).
  const shards: ShardSpec[] = [
    { name: 's0', replicas: 1, pieces: [{ table: 0, rowStart: 4, rowEnd: 8 }, { table: 1, rowStart: 0, rowEnd: 10 }] },
    { name: 's1', replicas: 1, pieces: [{ table: 0, rowStart: 8, rowEnd: 12 }] },
  ];
  // sample 0: t0 [2, 5, 9], t1 [6]; sample 1: t0 [], t1 [1, 3]
  const split = new Bucketizer(2, shards, 4).split(batchOf([2, 5, 9, 6, 1, 3], [0, 3, 4, 4, 6], 2));
  assert.deepEqual([...split.shards[0].offsets], [0, 1, 2, 2, 2]); // (s0,p0) (s0,p1) (s1,p0) (s1,p1)
  assert.deepEqual([...split.shards[0].ids], [1, 6]);
  assert.deepEqual([...split.shards[1].offsets], [0, 1, 1]);
  assert.deepEqual([...split.shards[1].ids], [1]);
  assert.deepEqual([...split.cache.offsets], [0, 1, 1, 1, 3]);
  assert.deepEqual([...split.cache.ids], [2, 1, 3]);
});

test("weights travel with their ids; a later split leaves an earlier split's shard requests intact", () => {
  const shards: ShardSpec[] = [
    { name: 'a', replicas: 1, pieces: [{ table: 0, rowStart: 0, rowEnd: 6 }] },
    { name: 'b', replicas: 1, pieces: [{ table: 0, rowStart: 6, rowEnd: 10 }] },
  ];
  const bucketizer = new Bucketizer(1, shards, 2);
  // Two samples: [1, 7 | 3, 4, 8]; id k weighs 10·k; rows 0–1 are cached.
  const weighted = { ...batchOf([1, 7, 3, 4, 8], [0, 2, 5]), weights: Float32Array.from([10, 70, 30, 40, 80]) };
  const first = bucketizer.split(weighted);
  assert.deepEqual([...first.cache.ids], [1]);
  assert.deepEqual([...first.cache.weights!], [10]);
  assert.deepEqual([...first.shards[0].ids], [3, 4]); // shard a starts at row 0: the cache takes rows, not the base
  assert.deepEqual([...first.shards[0].weights!], [30, 40]);
  assert.deepEqual([...first.shards[1].ids], [1, 2]);
  assert.deepEqual([...first.shards[1].weights!], [70, 80]);
  const kept = first.shards.map((r) => [[...r.offsets], [...r.ids], [...r.weights!]]);
  bucketizer.split({ ...batchOf([9, 9, 9, 5, 5, 5, 0, 6], [0, 4, 8]), weights: new Float32Array(8).fill(-1) });
  assert.deepEqual(first.shards.map((r) => [[...r.offsets], [...r.ids], [...r.weights!]]), kept);
});

test('native and TypeScript bucketize passes split a random weighted batch identically', { skip: !bucketizeNative && 'native addon not built' }, () => {
  const rng = new Rng(7);
  const T = 3, rows = 500, B = 40;
  // Table t is cut into t + 2 pieces over 3 shards; the cache takes positions < 20.
  const shards: ShardSpec[] = [0, 1, 2].map((s) => ({ name: `s${s}`, replicas: 1, pieces: [] }));
  for (let t = 0; t < T; t++) {
    const cuts = [0, ...Array.from({ length: t + 1 }, (_, i) => Math.round(((i + 1) * rows) / (t + 2))), rows];
    for (let i = 0; i + 1 < cuts.length; i++) shards[(i + t) % 3].pieces.push({ table: t, rowStart: cuts[i], rowEnd: cuts[i + 1] });
  }
  const order = Array.from({ length: T }, () => rng.permutation(rows));
  const offsets = new Int32Array(B * T + 1);
  // Bags up to 39 ids, so the native pass's prefetching (ids ahead within a bag) runs too.
  for (let i = 0; i < B * T; i++) offsets[i + 1] = offsets[i] + rng.below(40);
  const indices = Int32Array.from({ length: offsets[B * T] }, () => rng.below(rows));
  const batch = { size: B, dense: new Float32Array(0), indices, offsets, weights: Float32Array.from(indices, () => rng.next()) };
  const flat = (s: ReturnType<Bucketizer['split']>) => JSON.stringify([s.shards.map((r) => [[...r.offsets], [...r.ids], [...r.weights!]]), [...s.cache.offsets], [...s.cache.ids], [...s.cache.weights!]]);
  const ts = flat(new Bucketizer(T, shards, 20, order, bucketizeTs).split(batch));
  for (const prefetchIds of [0, 4, PREFETCH_IDS]) assert.equal(flat(new Bucketizer(T, shards, 20, order, bucketizeNative!, prefetchIds).split(batch)), ts, `prefetch ${prefetchIds}`);
  assert.ok(JSON.parse(ts)[2].length > 0, 'some lookups hit the cache');
});

test('the native count pass refuses an id outside its table instead of reading past it', { skip: !bucketizeNative && 'native addon not built' }, () => {
  const shards: ShardSpec[] = [{ name: 'a', replicas: 1, pieces: [{ table: 0, rowStart: 0, rowEnd: 4 }] }];
  const bucketizer = new Bucketizer(1, shards, 0, [Int32Array.of(3, 2, 1, 0)], bucketizeNative!);
  assert.throws(() => bucketizer.split(batchOf([1, 4], [0, 2])), /id outside its table/);
});

test('a plan that leaves rows in no shard is refused when the router starts, naming the table and row', () => {
  const shards: ShardSpec[] = [{ name: 'a', replicas: 1, pieces: [{ table: 0, rowStart: 0, rowEnd: 4 }, { table: 0, rowStart: 6, rowEnd: 10 }] }];
  assert.throws(() => new Bucketizer(1, shards, 0), /table 0: hotness position 4 is in no shard/);
  assert.doesNotThrow(() => new Bucketizer(1, [{ name: 'a', replicas: 1, pieces: [{ table: 0, rowStart: 3, rowEnd: 10 }] }], 3), 'the cache covers rows no shard holds');
});
