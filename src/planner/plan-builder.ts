import { PLAN_FORMAT, PLAN_VERSION, type Plan, type PlanWorkload, type ShardPiece } from '../plan/types.ts';
import { replicasFor, shardReplicas } from './sizing.ts';
import type { PlanningInput } from './types.ts';

/** The load a plan is sized for, as recorded in it. */
export const workloadOf = (input: PlanningInput): PlanWorkload => ({
  targetQps: input.targetQps,
  samplesPerQuery: input.batch,
  ...(input.slaP99Ms !== undefined && { slaP99Ms: input.slaP99Ms }),
});

/**
 * A disaggregated plan from shard contents: every shard sized by the cost model for the
 * target, dense and router replicas likewise. All strategies but model-wise end here.
 */
export function disaggregatedPlan(input: PlanningInput, strategy: string, shards: ShardPiece[][]): Plan {
  const { cost, targetQps, config } = input;
  return {
    format: PLAN_FORMAT,
    version: PLAN_VERSION,
    model: { name: config.name, tableRows: config.tables.map((t) => t.rows) },
    strategy,
    router: { replicas: replicasFor(targetQps, cost.router.qps), cacheRows: input.cacheRows },
    dense: { placement: 'service', replicas: replicasFor(targetQps, cost.dense.qps) },
    shards: shards.filter((p) => p.length > 0).map((pieces, k) => ({ name: `shard-${k}`, replicas: shardReplicas(input, pieces), pieces })),
    ...(input.hotness && { hotness: input.hotness }),
    workload: workloadOf(input),
  };
}
