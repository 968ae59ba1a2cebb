import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bucketizer } from '../src/serving/bucketize.ts';
import type { ShardSpec } from '../src/plan/types.ts';

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
