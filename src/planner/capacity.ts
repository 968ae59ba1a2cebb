import type { ModelConfig } from '../model/types.ts';
import type { Plan } from '../plan/types.ts';
import { syntheticProfile } from '../profile/build.ts';
import { readProfile } from '../profile/format.ts';
import { shardQps, type CostModel } from './cost-model.ts';
import { shardLookups, shardWork } from './sizing.ts';
import type { PlanningInput } from './types.ts';

/**
 * The planning input a served plan implies: its profile's lookup CDFs (no permutations), or a
 * uniform profile for a plan in identity order; the batch and target it was sized for.
 */
export function planningInputOf(plan: Plan, config: ModelConfig, cost: CostModel): PlanningInput {
  const profile = plan.hotness ? readProfile(plan.hotness.profile, config, { permutationsOf: () => false }) : syntheticProfile(config, { kind: 'uniform' });
  return {
    config,
    profile,
    hotness: null,
    cost,
    targetQps: plan.workload?.targetQps ?? 1,
    batch: plan.workload?.samplesPerQuery ?? 1,
    shards: plan.shards.length,
    maxShards: plan.shards.length,
    cacheRows: plan.router.cacheRows,
  };
}

/**
 * Each role's CPUs per replica by the cost model (what `manifests` puts in the pods' limits):
 * a router running the dense half in process needs the larger of the two.
 */
export function roleCpus(cost: CostModel, plan: Plan | null): { shard: number; dense: number; router: number; monolithic: number } {
  const router = plan?.dense.placement === 'router' ? Math.max(cost.router.replica.cpus, cost.dense.replica.cpus) : cost.router.replica.cpus;
  return { shard: cost.shard.replica.cpus, dense: cost.dense.replica.cpus, router, monolithic: cost.modelWise.replica.cpus };
}

/**
 * What one replica of each service sustains by the cost model, in the unit its autoscaler
 * reads: embedding lookups/s for a shard (its expected lookups per query × the queries/s the
 * shard curve gives at that many), requests/s for the dense service. The cost model was
 * measured at `cost.*.replica.cpus` per replica; replicas run at `replicaCpus` are scaled
 * linearly (one event loop, CPU-bound).
 */
export function replicaCapacities(input: PlanningInput, plan: Plan, replicaCpus?: number): Map<string, number> {
  const { cost, config } = input;
  const scale = (measuredAt: number) => (replicaCpus === undefined ? 1 : replicaCpus / measuredAt);
  const out = new Map<string, number>();
  for (const s of plan.shards) {
    const lookups = shardLookups(input, s.pieces);
    out.set(s.name, lookups * shardQps(cost, config.embeddingDim, shardWork(input, s.pieces)) * scale(cost.shard.replica.cpus));
  }
  if (plan.dense.placement === 'service') out.set('dense', cost.dense.qps * scale(cost.dense.replica.cpus));
  return out;
}
