/**
 * The replica calculator of one service, with Kubernetes HPA semantics (autoscaling/v2, the
 * documented algorithm): desired = ceil(current × observed / target), nothing within the
 * tolerance, not-ready replicas counted as idle only against a scale-up, stabilization
 * windows per direction (scale-down takes the highest recommendation in its window),
 * rate-limit policies per direction, min/max. A pure function of (observation, state, config):
 * the clock is the observation's `at`, the actuator is whoever applies `desired`, so the local
 * supervisor, the Kubernetes HPA config and a simulator share this one definition.
 */

export interface ScalingPolicy {
  /** Pods: at most `value` replicas per period; Percent: at most `value`% of the replicas at the period's start. */
  type: 'Pods' | 'Percent';
  value: number;
  periodS: number;
}

export interface ScalingRules {
  stabilizationWindowS: number;
  /** Max: the policy that allows the biggest change; Min: the smallest; Disabled: no change this way. */
  selectPolicy: 'Max' | 'Min' | 'Disabled';
  policies: ScalingPolicy[];
}

export interface AutoscalerConfig {
  /** The per-replica metric scaled on (e.g. `qps`, `inflight`, `p95_ms`): a name for the record, and for Kubernetes. */
  metric: string;
  /** Its per-replica target value. */
  target: number;
  /** Relative change of observed/target below which nothing happens (HPA's default 0.1). */
  tolerance: number;
  minReplicas: number;
  maxReplicas: number;
  behavior: { scaleUp: ScalingRules; scaleDown: ScalingRules };
  /** How often the loop runs (HPA's --horizontal-pod-autoscaler-sync-period, default 15 s). */
  syncPeriodS: number;
}

/** The HPA defaults (Kubernetes documentation, autoscaling/v2 `behavior`). */
export const HPA_DEFAULT_BEHAVIOR: AutoscalerConfig['behavior'] = {
  scaleUp: { stabilizationWindowS: 0, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodS: 15 }, { type: 'Pods', value: 4, periodS: 15 }] },
  scaleDown: { stabilizationWindowS: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodS: 15 }] },
};

export function autoscalerConfig(metric: string, target: number, minReplicas: number, maxReplicas: number, overrides: Partial<AutoscalerConfig> = {}): AutoscalerConfig {
  return { metric, target, tolerance: 0.1, minReplicas, maxReplicas, behavior: HPA_DEFAULT_BEHAVIOR, syncPeriodS: 15, ...overrides };
}

export interface Observation {
  /** The clock, in ms. */
  at: number;
  currentReplicas: number;
  /** The metric of each ready replica (those with a metric). */
  readyValues: number[];
  /** Replicas started but not ready yet: idle against a scale-up, ignored otherwise. */
  notReady: number;
}

export interface AutoscalerState {
  /** Recommendations before stabilization, newest last (kept for the longest window). */
  recommendations: { at: number; replicas: number }[];
  /** Applied changes (+n / −n), for the rate-limit policies. */
  changes: { at: number; delta: number }[];
}

export const initialAutoscalerState = (): AutoscalerState => ({ recommendations: [], changes: [] });

export interface Decision {
  at: number;
  current: number;
  desired: number;
  /** Before stabilization and rate limits. */
  recommendation: number;
  /** observed mean ÷ target (after counting not-ready replicas as idle, when that applied). */
  ratio: number;
  observed: number;
  reason: string;
}

function periodStart(state: AutoscalerState, at: number, periodS: number, current: number, up: boolean): number {
  let moved = 0;
  for (const c of state.changes) if (at - c.at < periodS * 1000 && (up ? c.delta > 0 : c.delta < 0)) moved += c.delta;
  return current - moved;
}

/** The most replicas (up) or fewest (down) the direction's policies allow now. */
function rateLimit(rules: ScalingRules, state: AutoscalerState, at: number, current: number, up: boolean): number {
  if (rules.selectPolicy === 'Disabled') return current;
  const limits = rules.policies.map((p) => {
    const start = periodStart(state, at, p.periodS, current, up);
    if (up) return p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    return p.type === 'Pods' ? start - p.value : Math.floor(start * (1 - p.value / 100));
  });
  // Max: the most permissive (highest up, lowest down); Min: the least.
  const pick = (rules.selectPolicy === 'Max') === up ? Math.max : Math.min;
  return limits.length === 0 ? current : pick(...limits);
}

export function decide(obs: Observation, state: AutoscalerState, config: AutoscalerConfig): { decision: Decision; state: AutoscalerState } {
  const { at, currentReplicas: current } = obs;
  const { tolerance, target, minReplicas, maxReplicas, behavior } = config;
  const ready = obs.readyValues.length;
  const observed = ready === 0 ? 0 : obs.readyValues.reduce((a, b) => a + b, 0) / ready;
  let ratio = target > 0 ? observed / target : 0;
  let recommendation = current;
  let reason: string;
  if (ready === 0) {
    reason = 'no ready replica reports the metric: holding';
  } else if (Math.abs(ratio - 1) <= tolerance) {
    reason = `${observed.toFixed(2)} per replica is within ${tolerance * 100}% of the target ${target}`;
  } else {
    const up = ratio > 1;
    // Against a scale-up, replicas still starting count as idle (they will take load soon);
    // if that leaves the ratio within the tolerance or reverses the direction, nothing happens.
    if (up && obs.notReady > 0) ratio = (observed * ready) / (target * (ready + obs.notReady));
    if (up ? ratio > 1 + tolerance : ratio < 1 - tolerance) {
      recommendation = Math.ceil(ratio * (up ? ready + obs.notReady : ready));
      reason = `${observed.toFixed(2)} per replica against the target ${target} (ratio ${ratio.toFixed(2)})`;
    } else reason = `${obs.notReady} replicas not ready yet absorb the rise (ratio ${ratio.toFixed(2)} with them idle)`;
  }
  recommendation = Math.min(maxReplicas, Math.max(minReplicas, recommendation));

  // Stabilization: scale down only to the highest recommendation of the down window, up only to the lowest of the up window.
  const keepMs = 1000 * Math.max(behavior.scaleUp.stabilizationWindowS, behavior.scaleDown.stabilizationWindowS);
  const recommendations = [...state.recommendations.filter((r) => at - r.at < keepMs), { at, replicas: recommendation }];
  // A window of W s holds the recommendations of the last W s (and always the current one).
  const within = (windowS: number) => recommendations.filter((r) => r.at === at || at - r.at < windowS * 1000).map((r) => r.replicas);
  let desired = current;
  const upTo = Math.min(...within(behavior.scaleUp.stabilizationWindowS));
  const downTo = Math.max(...within(behavior.scaleDown.stabilizationWindowS));
  if (upTo > current) {
    desired = Math.min(upTo, rateLimit(behavior.scaleUp, state, at, current, true));
    if (desired < upTo) reason += `; scale-up limited to ${desired} by its policies`;
  } else if (downTo < current) {
    desired = Math.max(downTo, rateLimit(behavior.scaleDown, state, at, current, false));
    if (desired > downTo) reason += `; scale-down limited to ${desired} by its policies`;
  } else if (recommendation !== current) reason += `; held at ${current} by the ${recommendation < current ? 'scale-down' : 'scale-up'} stabilization window`;
  desired = Math.min(maxReplicas, Math.max(minReplicas, desired));

  const keepChangesMs = 1000 * Math.max(0, ...[...behavior.scaleUp.policies, ...behavior.scaleDown.policies].map((p) => p.periodS));
  const changes = state.changes.filter((c) => at - c.at < keepChangesMs);
  if (desired !== current) changes.push({ at, delta: desired - current });
  return { decision: { at, current, desired, recommendation, ratio, observed, reason }, state: { recommendations, changes } };
}
