import type { Manifest } from '../model/manifest.ts';
import type { EmbeddingTable, ModelConfig } from '../model/types.ts';
import { readTableRows, readTableRowsInOrder } from '../model/store.ts';
import type { Plan } from '../plan/types.ts';
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

/** Rows at hotness positions [start, start + count) of table `t`. */
export function readHotnessRows(dir: string, manifest: Manifest, order: HotnessOrder | null, t: number, start: number, count: number): EmbeddingTable {
  const position = order?.[t];
  return position ? readTableRowsInOrder(dir, manifest, t, position, start, count) : readTableRows(dir, manifest, t, start, count);
}
