/**
 * ElasticRec's table partitioner (Alg. 2): the least-cost cut of buckets 1..n into at most
 * `maxShards` contiguous shards.
 *
 *   Mem[1][x] = cost(1, x);   Mem[s][e] = min over b in s..e of Mem[s−1][b−1] + cost(b, e)
 *
 * `cost(i, j)` prices one shard over buckets i..j (1-based, inclusive). O(maxShards · n²)
 * calls: callers bucket rows (≈1000 buckets), never pass millions.
 */
export interface Partition {
  cost: number;
  /** Last bucket of each shard, ascending; the last is n. */
  ends: number[];
  /** Least cost with exactly s shards, s = 1..maxShards (Infinity where s > n). */
  costByShards: number[];
}

export function partitionDp(n: number, maxShards: number, cost: (i: number, j: number) => number): Partition {
  const S = Math.min(maxShards, n);
  // mem[s][e] and the argmin b (first bucket of the last shard), row-major in flat arrays.
  const mem = new Float64Array((S + 1) * (n + 1)).fill(Infinity);
  const from = new Int32Array((S + 1) * (n + 1));
  const at = (s: number, e: number) => s * (n + 1) + e;
  for (let e = 1; e <= n; e++) {
    mem[at(1, e)] = cost(1, e);
    from[at(1, e)] = 1;
  }
  for (let s = 2; s <= S; s++) {
    for (let e = s; e <= n; e++) {
      let best = Infinity;
      let arg = s;
      for (let b = s; b <= e; b++) {
        const c = mem[at(s - 1, b - 1)] + cost(b, e);
        if (c < best) {
          best = c;
          arg = b;
        }
      }
      mem[at(s, e)] = best;
      from[at(s, e)] = arg;
    }
  }
  const costByShards = Array.from({ length: maxShards }, (_, i) => (i + 1 <= S ? mem[at(i + 1, n)] : Infinity));
  let shards = 1;
  for (let s = 2; s <= S; s++) if (mem[at(s, n)] < mem[at(shards, n)]) shards = s;
  const ends: number[] = [];
  for (let s = shards, e = n; s >= 1; s--) {
    ends.unshift(e);
    e = from[at(s, e)] - 1;
  }
  return { cost: mem[at(shards, n)], ends, costByShards };
}
