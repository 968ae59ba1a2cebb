import { cdfAt } from '../profile/types.ts';
import type { ShardPiece } from '../plan/types.ts';
import { shardQpsCurve } from './cost-model.ts';
import { partitionDp } from './partition-dp.ts';
import { replicasFor, rowBytes, shardCdf, shardReplicas } from './sizing.ts';
import type { PlanningInput } from './types.ts';

/** Candidate boundaries per table: this many row quantiles plus as many lookup quantiles. */
const QUANTILES = 500;

/**
 * Candidate cut positions for a table: even row quantiles, and the positions where its lookup
 * CDF crosses k/QUANTILES, so the hot end gets fine buckets.
 */
function bucketEnds(rows: number, cdf: (pos: number) => number, cacheRows: number): number[] {
  // The cache's edge is a candidate too: rows below it get no lookups on a shard.
  const ends = new Set<number>([rows, Math.min(cacheRows, rows)]);
  for (let k = 1; k < QUANTILES; k++) {
    ends.add(Math.round((rows * k) / QUANTILES));
    const target = k / QUANTILES;
    let lo = 0;
    let hi = rows;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (cdf(mid) < target) lo = mid;
      else hi = mid;
    }
    ends.add(hi);
  }
  return [...ends].filter((e) => e > 0).sort((a, b) => a - b);
}

/** One table's least-memory cut: row ranges in hotness order. */
function cutTable(input: PlanningInput, table: number): [number, number][] {
  const { config, profile, cost, targetQps, batch } = input;
  const t = profile.tables[table];
  const lookups = batch * config.tables[table].poolingFactor;
  const ends = [0, ...bucketEnds(t.rows, (pos) => cdfAt(t, pos), input.cacheRows)];
  // X[b]: expected lookups per query that reach shards on sorted positions [0, ends[b]) (the cache takes the hottest).
  const X = Float64Array.from(ends, (e) => lookups * shardCdf(input, table, e));
  const qps = shardQpsCurve(cost, config.embeddingDim);
  const bytes = rowBytes(input);
  const idle = cost.shard.replica.memBytes;
  const shardCost = (i: number, j: number) => replicasFor(targetQps, qps(X[j] - X[i - 1])) * ((ends[j] - ends[i - 1]) * bytes + idle);
  const { ends: cut } = partitionDp(ends.length - 1, input.maxShards, shardCost);
  return cut.map((b, k) => [ends[k === 0 ? 0 : cut[k - 1]], ends[b]]);
}

/**
 * ElasticRec's utility-based partitioning. Per table, rows in hotness order and a DP over
 * bucketed boundaries picks the number of shards (≤ maxShards) and the cuts with least memory:
 *
 *   p = CDF(j) − CDF(k−1),  n_s = batch · pooling · p,
 *   replicas = max(1, ceil(target / QPS(n_s))),  cost = replicas · (rows · rowBytes + idle memory)
 *
 * Tables cut at the same positions then share shard services range by range, where the cost
 * model says one service over all of them (lookups add up) is cheaper than one per table: it
 * is when the fixed cost per request and per replica dominates, as on this machine.
 */
export function elasticPieces(input: PlanningInput): ShardPiece[][] {
  const { config, cost } = input;
  // Tables with the same rows, pooling and CDF get the same cut: compute it once.
  const memo = new Map<string, [number, number][]>();
  const cuts = config.tables.map((spec, t) => {
    const p = input.profile.tables[t];
    const key = `${spec.rows}|${spec.poolingFactor}|${p.knotPos.join()}|${p.knotCdf.join()}`;
    if (!memo.has(key)) memo.set(key, cutTable(input, t));
    return memo.get(key)!;
  });
  const groups = new Map<string, number[]>();
  cuts.forEach((c, t) => {
    const key = JSON.stringify(c);
    groups.set(key, [...(groups.get(key) ?? []), t]);
  });
  const shards: ShardPiece[][] = [];
  for (const tables of groups.values()) {
    cuts[tables[0]].forEach(([rowStart, rowEnd]) => {
      const pieces = tables.map((table) => ({ table, rowStart, rowEnd }));
      const memory = (ps: ShardPiece[]) => shardReplicas(input, ps) * (ps.length * (rowEnd - rowStart) * rowBytes(input) + cost.shard.replica.memBytes);
      const shared = memory(pieces);
      const separate = pieces.reduce((m, p) => m + memory([p]), 0);
      if (shared <= separate) shards.push(pieces);
      else for (const p of pieces) shards.push([p]);
    });
  }
  return shards;
}
