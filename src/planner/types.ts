import type { ModelConfig } from '../model/types.ts';
import type { HotnessProfile } from '../profile/types.ts';
import type { Plan } from '../plan/types.ts';
import type { CostModel } from './cost-model.ts';

/** Everything a strategy plans from. */
export interface PlanningInput {
  config: ModelConfig;
  profile: HotnessProfile;
  /** The file `profile` came from (and its checksum) when it holds permutations: plans then serve in its hotness order. */
  hotness: Required<NonNullable<Plan['hotness']>> | null;
  cost: CostModel;
  targetQps: number;
  slaP99Ms?: number;
  /** Samples per query: a table sees batch × pooling lookups per query. */
  batch: number;
  /** Shards for the table-packing and row-wise strategies. */
  shards: number;
  /** The most shards the elastic DP may cut a table group into (ElasticRec's S_max, 16). */
  maxShards: number;
  /** Rows per table pooled in the router's hot-row cache. */
  cacheRows: number;
}

/** A sharding strategy: one stage of the planner pipeline (propose → estimate → place → report). */
export interface Strategy {
  name: string;
  describe: string;
  propose(input: PlanningInput): Plan;
}

export const STRATEGY_NAMES = ['model-wise', 'table-wise', 'capacity-balanced', 'load-balanced', 'row-wise', 'elastic'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];
