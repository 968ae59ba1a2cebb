/**
 * The balancer's in-flight limit per front-end replica, adapted to what the front ends answer
 * (a latency gradient for growth, as Netflix's concurrency-limits does, and a multiplicative cut
 * as TCP's). More queries in flight let a front end's dynamic batching merge more (more
 * throughput); too many make its answers slow. While queries wait in the balancer the front end
 * is saturated, and then its answer time grows with the queries it holds (Little's law), so the
 * limit grows in proportion to the headroom left under the target — a limit far under it reaches
 * it in a few periods, one near it creeps up by one — and is cut by `backoff` when the p95 goes
 * over, at most once a period. A pure function of (observation, state, config): the supervisor
 * feeds it the balancer's queue and the front ends' latency histograms on a timer.
 */
export interface ConcurrencyLimitConfig {
  /** The front ends' p95 (ms) the limit holds under: the SLA's share after the balancer's queue. */
  targetMs: number;
  min: number;
  max: number;
  /** The factor a limit over target is cut by. */
  backoff: number;
  /** How often the limit is reconsidered (ms). */
  periodMs: number;
}

/** What the balancer reported at `at` (ms). */
export interface ConcurrencyObservation {
  at: number;
  /** The front ends' p95 over the period (ms; the slowest replica's). */
  p95Ms: number;
  /**
   * The balancer's mean response time from the front ends (ms, HAProxy's, over its last 1,024
   * queries). It includes what the front ends' own histograms cannot see: queries standing in
   * their socket buffers before they are parsed, which under CPU contention (8x overload on two
   * cores) grew the client's p99 to 144 ms while their p95 read under 20.
   */
  balancerMeanMs: number;
  /** Answers in the period: none, and there is no p95 to go by. */
  answered: number;
  /** Queries waiting in its queue now. */
  queued: number;
}

export interface ConcurrencyState {
  limit: number;
  /**
   * When the limit was last cut (ms, an observation's `at`). The next period's answers were
   * mostly admitted under the old limit, so their p95 says nothing of the new one: that period
   * cannot cut again (as TCP cuts its window once per round trip). Without it one slow spell cut
   * 15 → 11 → 8 and the climb back by one a period took seconds.
   */
  cutAt?: number;
}

/** Grow while answers are at most this share of the target (a margin, so the limit settles instead of oscillating). */
const GROW_BELOW = 0.8;
/** The most one period multiplies the limit by (the p95 of a period is noisy; a lucky one must not overshoot far). */
const MAX_GROWTH = 1.5;

export function defaultConcurrencyLimit(slaP99Ms: number, targetMs = slaP99Ms / 2): ConcurrencyLimitConfig {
  // A quarter of the SLA waits in the balancer's queue; a p95 answer of half leaves the p99 room in the rest.
  return { targetMs, min: 1, max: 64, backoff: 0.75, periodMs: 500 };
}

export function nextLimit(obs: ConcurrencyObservation, state: ConcurrencyState, cfg: ConcurrencyLimitConfig): { state: ConcurrencyState; reason: string } {
  const { limit } = state;
  if (obs.answered === 0) return { state, reason: 'no answers since the last look' };
  // The slower of the two views: the front ends' p95, or the balancer's mean where queries wait unseen in front of them.
  const ms = Math.max(obs.p95Ms, obs.balancerMeanMs);
  const seen = obs.p95Ms >= obs.balancerMeanMs ? `the front ends' p95 is ${ms.toFixed(1)} ms` : `the balancer's mean response time is ${ms.toFixed(1)} ms`;
  if (ms > cfg.targetMs) {
    if (state.cutAt !== undefined && obs.at - state.cutAt < 1.5 * cfg.periodMs) return { state, reason: `${seen}, over the ${cfg.targetMs} ms target, but those answers were admitted before the last cut` };
    const cut = Math.max(cfg.min, Math.floor(limit * cfg.backoff));
    return { state: { limit: cut, cutAt: obs.at }, reason: `${seen}, over the ${cfg.targetMs} ms target` };
  }
  if (obs.queued > 0 && ms <= GROW_BELOW * cfg.targetMs && limit < cfg.max) {
    const aimed = Math.floor(limit * Math.min(MAX_GROWTH, (GROW_BELOW * cfg.targetMs) / Math.max(ms, 1e-3)));
    return { state: { ...state, limit: Math.min(cfg.max, Math.max(limit + 1, aimed)) }, reason: `${obs.queued} waiting and ${seen}, under the ${cfg.targetMs} ms target` };
  }
  return { state, reason: 'within the target' };
}
