import { HPA_DEFAULT_BEHAVIOR, autoscalerConfig, type AutoscalerConfig } from './autoscaler.ts';
import type { ServiceKind } from './supervisor.ts';

/**
 * What each service scales on, as one set of settings: the local autoscaler (`serve
 * --autoscale`) and the Kubernetes HorizontalPodAutoscalers (`shardwise manifests`) are both
 * built from this, so the two cannot drift apart.
 */
export interface ScalingSettings {
  /** Embedding lookups per second per shard replica; unset: from the cost model (or the default). */
  shardTargetLookups?: number;
  /** Requests per second per dense replica; unset: from the cost model (or the default). */
  denseTargetRps?: number;
  /** With a cost model: the share of a replica's calibrated capacity its loop holds it at. */
  targetUtilization: number;
  /** In-flight queries per router (or monolith) replica. */
  frontEndTargetInflight: number;
  maxReplicas: number;
  syncPeriodS: number;
  scaleUpWindowS: number;
  scaleDownWindowS: number;
}

/**
 * The series each kind's metric is read from on every replica's /metrics, and the name the
 * metric has for an HPA (through prometheus-adapter). Shards scale on lookups, not requests:
 * every query sends one request to every shard (each holds a range of every table), so
 * requests/s is the same for a hot shard and a cold one; the lookups are not (ElasticRec
 * sizes a shard by its share of lookups).
 */
export const SCALING_SERIES: Record<ServiceKind, { metric: string; series: string; stage?: string; rate: boolean }> = {
  shard: { metric: 'shardwise_lookups_per_second', series: 'shardwise_rows_served_total', rate: true },
  dense: { metric: 'shardwise_dense_requests_per_second', series: 'shardwise_request_duration_seconds_count', stage: 'dense', rate: true },
  router: { metric: 'shardwise_inflight_requests', series: 'shardwise_inflight_requests', rate: false },
  monolithic: { metric: 'shardwise_inflight_requests', series: 'shardwise_inflight_requests', rate: false },
};

/** Targets when neither a flag nor a cost model gives one. */
export const DEFAULT_TARGETS = { shardLookups: 1_000_000, denseRps: 500 };

/**
 * The target a service's loop holds its metric at per replica: the flag where given; else,
 * with `capacities` (per service, from the cost model: `replicaCapacities`), the target
 * utilization of the service's calibrated capacity; else the default. Front ends always scale
 * on in-flight queries (the flag).
 */
export function scalingTarget(kind: ServiceKind, service: string, s: ScalingSettings, capacities: ReadonlyMap<string, number> | null): number {
  if (kind === 'router' || kind === 'monolithic') return s.frontEndTargetInflight;
  const flag = kind === 'shard' ? s.shardTargetLookups : s.denseTargetRps;
  const capacity = capacities?.get(service);
  if (flag !== undefined) return flag;
  if (capacity !== undefined) return Math.max(1, Math.round(s.targetUtilization * capacity));
  return kind === 'shard' ? DEFAULT_TARGETS.shardLookups : DEFAULT_TARGETS.denseRps;
}

/** One service's autoscaler config from the shared settings, holding `target` (scalingTarget). */
export function scalingConfig(kind: ServiceKind, s: ScalingSettings, target: number): AutoscalerConfig {
  const behavior = {
    scaleUp: { ...HPA_DEFAULT_BEHAVIOR.scaleUp, stabilizationWindowS: s.scaleUpWindowS },
    scaleDown: { ...HPA_DEFAULT_BEHAVIOR.scaleDown, stabilizationWindowS: s.scaleDownWindowS },
  };
  return autoscalerConfig(SCALING_SERIES[kind].metric, target, 1, s.maxReplicas, { behavior, syncPeriodS: s.syncPeriodS });
}
