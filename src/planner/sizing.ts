import { cdfAt } from '../profile/types.ts';
import type { ShardPiece } from '../plan/types.ts';
import { shardQps } from './cost-model.ts';
import type { PlanningInput } from './types.ts';

/** Bytes of one embedding row. */
export const rowBytes = (input: PlanningInput) => input.config.embeddingDim * 4;

/**
 * Share of a table's lookups on sorted positions [0, pos) that reach a shard: the router's
 * hot-row cache serves positions below `cacheRows`, so those never do.
 */
export function shardCdf(input: PlanningInput, table: number, pos: number, cacheRows = input.cacheRows): number {
  const t = input.profile.tables[table];
  return cdfAt(t, Math.max(pos, cacheRows)) - cdfAt(t, cacheRows);
}

/** Expected lookups per query on a piece: batch × pooling × the piece's share of the table's lookups. */
export function pieceLookups(input: PlanningInput, p: ShardPiece, cacheRows = input.cacheRows): number {
  return input.batch * input.config.tables[p.table].poolingFactor * (shardCdf(input, p.table, p.rowEnd, cacheRows) - shardCdf(input, p.table, p.rowStart, cacheRows));
}

export const shardLookups = (input: PlanningInput, pieces: ShardPiece[], cacheRows = input.cacheRows) => pieces.reduce((s, p) => s + pieceLookups(input, p, cacheRows), 0);

/** Replicas so that each serves at most its capacity at the target (at least one). */
export const replicasFor = (targetQps: number, qpsPerReplica: number) => Math.max(1, Math.ceil(targetQps / qpsPerReplica - 1e-9));

/** The lookups per query a shard's capacity is read at: all of them, or its busiest table's when tables run in parallel. */
export function shardWork(input: PlanningInput, pieces: ShardPiece[]): number {
  if (!input.cost.shard.tablesInParallel) return shardLookups(input, pieces);
  const perTable = new Map<number, number>();
  for (const p of pieces) perTable.set(p.table, (perTable.get(p.table) ?? 0) + pieceLookups(input, p));
  return Math.max(0, ...perTable.values());
}

export function shardReplicas(input: PlanningInput, pieces: ShardPiece[]): number {
  return replicasFor(input.targetQps, shardQps(input.cost, input.config.embeddingDim, shardWork(input, pieces)));
}
