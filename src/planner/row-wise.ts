import type { ModelConfig } from '../model/types.ts';
import { PLAN_FORMAT, PLAN_VERSION, type Plan, type ShardPiece } from '../plan/types.ts';
import { badArgument } from '../util/errors.ts';

export interface RowWiseOptions {
  shards: number;
  replicas: number;
  cacheRows: number;
  dense: 'router' | 'service';
  denseReplicas: number;
}

/**
 * Row-wise sharding: every table is cut into `shards` even row ranges and shard k holds
 * range k of every table (a table with fewer rows than shards leaves the last shards
 * without it). The classic baseline, and the runtime's default plan.
 */
export function rowWisePieces(config: ModelConfig, shards: number): ShardPiece[][] {
  if (!Number.isInteger(shards) || shards < 1) throw badArgument(`--shards must be a positive integer, got ${shards}`);
  const pieces: ShardPiece[][] = Array.from({ length: shards }, () => []);
  config.tables.forEach((t, table) => {
    const parts = Math.min(shards, t.rows);
    for (let k = 0; k < parts; k++) {
      const rowStart = Math.floor((t.rows * k) / parts);
      const rowEnd = Math.floor((t.rows * (k + 1)) / parts);
      pieces[k].push({ table, rowStart, rowEnd });
    }
  });
  return pieces;
}

/** A row-wise plan with replica counts given by hand (no cost model): the runtime's quick start. */
export function rowWisePlan(config: ModelConfig, opts: RowWiseOptions): Plan {
  const pieces = rowWisePieces(config, opts.shards);
  return {
    format: PLAN_FORMAT,
    version: PLAN_VERSION,
    model: { name: config.name, tableRows: config.tables.map((t) => t.rows) },
    strategy: 'row-wise',
    router: { replicas: 1, cacheRows: opts.cacheRows },
    dense: { placement: opts.dense, replicas: opts.denseReplicas },
    shards: pieces
      .filter((p) => p.length > 0)
      .map((p, k) => ({ name: `shard-${k}`, replicas: opts.replicas, pieces: p })),
  };
}
