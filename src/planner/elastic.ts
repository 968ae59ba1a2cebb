import { cdfAt } from '../profile/types.ts';
import type { ShardPiece } from '../plan/types.ts';
import { shardQps } from './cost-model.ts';
import { partitionDp } from './partition-dp.ts';
import { replicasFor, rowBytes } from './sizing.ts';
import type { PlanningInput } from './types.ts';

/** Candidate boundaries per table group: this many row quantiles plus as many lookup quantiles. */
const QUANTILES = 500;

/**
 * Candidate cut positions for tables of `rows` rows: even row quantiles, and the positions
 * where the group's mean lookup CDF crosses k/QUANTILES, so the hot end gets fine buckets.
 */
function bucketEnds(rows: number, meanCdf: (pos: number) => number): number[] {
  const ends = new Set<number>([rows]);
  for (let k = 1; k < QUANTILES; k++) {
    ends.add(Math.round((rows * k) / QUANTILES));
    const target = k / QUANTILES;
    let lo = 0;
    let hi = rows;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (meanCdf(mid) < target) lo = mid;
      else hi = mid;
    }
    ends.add(hi);
  }
  return [...ends].filter((e) => e > 0).sort((a, b) => a - b);
}

/**
 * ElasticRec's utility-based partitioning. Tables of equal row count form a group that is
 * cut at the same sorted positions, so shard k of a group holds range k of every table in it
 * (tables with equal plans share shard services). For each group a DP over bucketed
 * boundaries picks the number of shards (≤ maxShards) and the cuts with least memory:
 *
 *   p_t = CDF_t(j) − CDF_t(k−1),  x = Σ_t batch · pooling_t · p_t,
 *   replicas = max(1, ceil(target / QPS(x))),  cost = replicas · (rows · rowBytes + idle memory)
 */
export function elasticPieces(input: PlanningInput): ShardPiece[][] {
  const { config, profile, cost, targetQps, batch } = input;
  const groups = new Map<number, number[]>();
  config.tables.forEach((t, i) => groups.set(t.rows, [...(groups.get(t.rows) ?? []), i]));
  const shards: ShardPiece[][] = [];
  for (const [rows, tables] of groups) {
    const meanCdf = (pos: number) => tables.reduce((s, t) => s + cdfAt(profile.tables[t], pos), 0) / tables.length;
    const ends = [0, ...bucketEnds(rows, meanCdf)];
    // X[b]: expected lookups per query on sorted positions [0, ends[b]) summed over the group.
    const X = Float64Array.from(ends, (e) => tables.reduce((s, t) => s + batch * config.tables[t].poolingFactor * cdfAt(profile.tables[t], e), 0));
    const bytesPerPosition = tables.length * rowBytes(input);
    const shardCost = (i: number, j: number) => {
      const replicas = replicasFor(targetQps, shardQps(cost, config.embeddingDim, X[j] - X[i - 1]));
      return replicas * ((ends[j] - ends[i - 1]) * bytesPerPosition + cost.shard.replica.memBytes);
    };
    const { ends: cut } = partitionDp(ends.length - 1, input.maxShards, shardCost);
    let start = 0;
    for (const b of cut) {
      shards.push(tables.map((table) => ({ table, rowStart: ends[start], rowEnd: ends[b] })));
      start = b;
    }
  }
  return shards;
}
