import { HPA_DEFAULT_BEHAVIOR, autoscalerConfig, type AutoscalerConfig } from './autoscaler.ts';
import type { ServiceKind } from './supervisor.ts';
import { DEFAULT_SLA_P99_MS } from '../serving/admission.ts';

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
  /** What routers (and a monolith) scale on: in-flight queries per replica, or their p95 latency (ElasticRec's rule for the dense half). */
  frontEndMetric: 'inflight' | 'latency';
  /** In-flight queries per router (or monolith) replica. */
  frontEndTargetInflight: number;
  /** With frontEndMetric latency: the p95 each replica is held under, ms; unset: LATENCY_TARGET_SHARE of the default SLA. */
  frontEndTargetP95Ms?: number;
  maxReplicas: number;
  syncPeriodS: number;
  scaleUpWindowS: number;
  scaleDownWindowS: number;
}

/**
 * Where a metric is read on every replica's /metrics, and the name it has for an HPA (through
 * prometheus-adapter): a counter's rate, a gauge, or the p95 of a histogram over the sync
 * period (from its buckets' increase, as Prometheus' histogram_quantile does).
 */
export interface MetricSource {
  metric: string;
  series: string;
  stage?: string;
  read: 'rate' | 'gauge' | 'p95';
}

/**
 * The metrics services scale on. Shards scale on lookups, not requests: every query sends one
 * request to every shard (each holds a range of every table), so requests/s is the same for a
 * hot shard and a cold one; the lookups are not (ElasticRec sizes a shard by its share of
 * lookups). A front end's latency is its whole-query time (`total`: queueing in the batcher,
 * the shards' answers, the dense half), in seconds.
 */
export const SCALING_METRICS = {
  lookups: { metric: 'shardwise_lookups_per_second', series: 'shardwise_rows_served_total', read: 'rate' },
  denseRequests: { metric: 'shardwise_dense_requests_per_second', series: 'shardwise_request_duration_seconds_count', stage: 'dense', read: 'rate' },
  inflight: { metric: 'shardwise_inflight_requests', series: 'shardwise_inflight_requests', read: 'gauge' },
  latency: { metric: 'shardwise_p95_latency_seconds', series: 'shardwise_request_duration_seconds', stage: 'total', read: 'p95' },
} as const satisfies Record<string, MetricSource>;

/** What a service of this kind scales on under these settings. */
export function scalingMetric(kind: ServiceKind, s: Pick<ScalingSettings, 'frontEndMetric'>): MetricSource {
  if (kind === 'shard') return SCALING_METRICS.lookups;
  if (kind === 'dense') return SCALING_METRICS.denseRequests;
  return s.frontEndMetric === 'latency' ? SCALING_METRICS.latency : SCALING_METRICS.inflight;
}

/** ElasticRec scales its dense shard once its p95 passes 65% of the SLA. */
export const LATENCY_TARGET_SHARE = 0.65;

/** Targets when neither a flag nor a cost model gives one. */
export const DEFAULT_TARGETS = { shardLookups: 1_000_000, denseRps: 500 };

/**
 * The target a service's loop holds its metric at per replica: the flag where given; else,
 * with `capacities` (per service, from the cost model: `replicaCapacities`), the target
 * utilization of the service's calibrated capacity; else the default. Front ends hold their
 * in-flight queries or their p95 (in seconds, the metric's unit) at the flag's value.
 */
export function scalingTarget(kind: ServiceKind, service: string, s: ScalingSettings, capacities: ReadonlyMap<string, number> | null): number {
  if (kind === 'router' || kind === 'monolithic') return s.frontEndMetric === 'latency' ? (s.frontEndTargetP95Ms ?? LATENCY_TARGET_SHARE * DEFAULT_SLA_P99_MS) / 1000 : s.frontEndTargetInflight;
  const flag = kind === 'shard' ? s.shardTargetLookups : s.denseTargetRps;
  const capacity = capacities?.get(service);
  if (flag !== undefined) return flag;
  if (capacity !== undefined) return Math.max(1, Math.round(s.targetUtilization * capacity));
  return kind === 'shard' ? DEFAULT_TARGETS.shardLookups : DEFAULT_TARGETS.denseRps;
}

/** One service's autoscaler config from the shared settings, holding its scalingTarget. */
export function scalingConfig(kind: ServiceKind, service: string, s: ScalingSettings, capacities: ReadonlyMap<string, number> | null): AutoscalerConfig {
  const target = scalingTarget(kind, service, s, capacities);
  const behavior = {
    scaleUp: { ...HPA_DEFAULT_BEHAVIOR.scaleUp, stabilizationWindowS: s.scaleUpWindowS },
    scaleDown: { ...HPA_DEFAULT_BEHAVIOR.scaleDown, stabilizationWindowS: s.scaleDownWindowS },
  };
  return autoscalerConfig(scalingMetric(kind, s).metric, target, 1, s.maxReplicas, { behavior, syncPeriodS: s.syncPeriodS });
}
