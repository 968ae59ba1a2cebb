import { HPA_DEFAULT_BEHAVIOR, autoscalerConfig, type AutoscalerConfig } from './autoscaler.ts';
import type { ServiceKind } from './supervisor.ts';

/**
 * What each service scales on, as one set of settings: the local autoscaler (`serve
 * --autoscale`) and the Kubernetes HorizontalPodAutoscalers (`shardwise manifests`) are both
 * built from this, so the two cannot drift apart.
 */
export interface ScalingSettings {
  /** Embedding lookups per second per shard replica. */
  shardTargetLookups: number;
  /** Requests per second per dense replica. */
  denseTargetRps: number;
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

/** One service's autoscaler config from the shared settings. */
export function scalingConfig(kind: ServiceKind, s: ScalingSettings): AutoscalerConfig {
  const target = { shard: s.shardTargetLookups, dense: s.denseTargetRps, router: s.frontEndTargetInflight, monolithic: s.frontEndTargetInflight }[kind];
  const behavior = {
    scaleUp: { ...HPA_DEFAULT_BEHAVIOR.scaleUp, stabilizationWindowS: s.scaleUpWindowS },
    scaleDown: { ...HPA_DEFAULT_BEHAVIOR.scaleDown, stabilizationWindowS: s.scaleDownWindowS },
  };
  return autoscalerConfig(SCALING_SERIES[kind].metric, target, 1, s.maxReplicas, { behavior, syncPeriodS: s.syncPeriodS });
}
