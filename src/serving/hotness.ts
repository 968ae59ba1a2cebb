import type { Manifest } from '../model/manifest.ts';
import type { EmbeddingTable, ModelConfig } from '../model/types.ts';
import { readTableRows, readTableRowsInOrder } from '../model/store.ts';
import type { Plan, ShardPiece } from '../plan/types.ts';
import { readProfile } from '../profile/format.ts';

/** Per table, original id → hotness position; null where the plan serves rows in identity order. */
export type HotnessOrder = (Int32Array | null)[];

/**
 * The hotness order of the plan's profile, or null without one. `tables` limits which
 * permutations are read: a shard needs only its own tables' (4 bytes per row each).
 */
export function readHotnessOrder(plan: Plan, config: ModelConfig, tables?: ReadonlySet<number>): HotnessOrder | null {
  if (!plan.hotness) return null;
  const profile = readProfile(plan.hotness.profile, config, { permutationsOf: tables && ((t) => tables.has(t)) });
  return profile.tables.map((t) => t.permutation);
}

/**
 * The rows of each range, hotness positions [rowStart, rowEnd) of its table. Callers pass the
 * order in rather than capturing it in a closure of their own: a closure would keep the
 * permutations (4 bytes a row) alive as long as any other closure of the same scope.
 */
export function readHotnessRanges(dir: string, manifest: Manifest, order: HotnessOrder | null, ranges: readonly ShardPiece[]): EmbeddingTable[] {
  return ranges.map(({ table, rowStart, rowEnd }) => {
    const position = order?.[table];
    return position ? readTableRowsInOrder(dir, manifest, table, position, rowStart, rowEnd - rowStart) : readTableRows(dir, manifest, table, rowStart, rowEnd - rowStart);
  });
}

/** The router's hot-row cache: per table its hottest `cacheRows` rows (hotness order), or null when the plan caches none. */
export function readRouterCache(dir: string, manifest: Manifest, config: ModelConfig, order: HotnessOrder | null, cacheRows: number): EmbeddingTable[] | null {
  if (cacheRows <= 0) return null;
  return readHotnessRanges(dir, manifest, order, config.tables.map((t, table) => ({ table, rowStart: 0, rowEnd: Math.min(cacheRows, t.rows) })));
}
