import type { Manifest } from '../model/manifest.ts';
import type { EmbeddingTable, ModelConfig } from '../model/types.ts';
import { loadFloats, readTableRows, readTableRowsInOrder, type RowLoading } from '../model/store.ts';
import type { Plan, ShardPiece } from '../plan/types.ts';
import { profileChecksum, readProfile } from '../profile/format.ts';
import { findOrderedTables, type OrderedTables } from '../profile/ordered-tables.ts';

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

/** The checksum of the plan's profile: the plan's record, else the file's (hashed now). */
export const hotnessChecksum = (hotness: NonNullable<Plan['hotness']>): string => hotness.checksum ?? profileChecksum(hotness.profile);

/**
 * Where a replica's rows came from, for its start-up log: ranges of the model's files (no
 * profile), of the tables' hotness-ordered copies, or, without copies, each table streamed
 * through the profile's permutation (reading the whole table for any range of it).
 */
export type RowSource = 'model files' | 'hotness-ordered copies' | 'tables streamed through the permutation';

export interface LoadedRanges {
  tables: EmbeddingTable[];
  source: RowSource;
}

/** The rows of each range, hotness positions [rowStart, rowEnd) of its table. */
export function loadHotnessRanges(dir: string, manifest: Manifest, plan: Plan, config: ModelConfig, ranges: readonly ShardPiece[], loading: RowLoading): LoadedRanges {
  const count = (r: ShardPiece) => r.rowEnd - r.rowStart;
  if (!plan.hotness) return { tables: ranges.map((r) => readTableRows(dir, manifest, r.table, r.rowStart, count(r), loading)), source: 'model files' };
  const ordered = findOrderedTables(dir, manifest, hotnessChecksum(plan.hotness));
  if (ordered) return { tables: ranges.map((r) => orderedRows(ordered, manifest, r, loading)), source: 'hotness-ordered copies' };
  const order = readHotnessOrder(plan, config, new Set(ranges.map((r) => r.table)));
  return { tables: streamRanges(dir, manifest, order!, ranges), source: 'tables streamed through the permutation' };
}

function orderedRows(ordered: OrderedTables, manifest: Manifest, { table, rowStart, rowEnd }: ShardPiece, loading: RowLoading): EmbeddingTable {
  const dim = manifest.embeddingDim;
  const rows = rowEnd - rowStart;
  const data = loadFloats(ordered.files[table], `table ${table} in hotness order`, manifest.tables[table].rows * dim, rowStart * dim, rows * dim, loading);
  return { rows, dim, data };
}

/**
 * Each range streamed from its table through the order. Callers pass the order in rather
 * than capturing it in a closure of their own: a closure would keep the permutations (4 bytes
 * a row) alive as long as any other closure of the same scope.
 */
function streamRanges(dir: string, manifest: Manifest, order: HotnessOrder, ranges: readonly ShardPiece[]): EmbeddingTable[] {
  return ranges.map(({ table, rowStart, rowEnd }) => {
    const position = order[table];
    return position ? readTableRowsInOrder(dir, manifest, table, position, rowStart, rowEnd - rowStart) : readTableRows(dir, manifest, table, rowStart, rowEnd - rowStart);
  });
}

/** The router's hot-row cache: per table its hottest `cacheRows` rows (hotness order), or null when the plan caches none. */
export function readRouterCache(dir: string, manifest: Manifest, plan: Plan, config: ModelConfig, loading: RowLoading): LoadedRanges | null {
  const cacheRows = plan.router.cacheRows;
  if (cacheRows <= 0) return null;
  return loadHotnessRanges(dir, manifest, plan, config, config.tables.map((t, table) => ({ table, rowStart: 0, rowEnd: Math.min(cacheRows, t.rows) })), loading);
}
