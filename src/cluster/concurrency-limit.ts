/**
 * The balancer's in-flight limit per front-end replica, adapted to what the front ends answer
 * (additive increase, multiplicative decrease, as TCP and Netflix's concurrency-limits do). More
 * queries in flight let a front end's dynamic batching merge more (more throughput); too many
 * make each answer slow. The limit grows by one while queries wait in the balancer and answers
 * come well under the target, and shrinks by `backoff` when they come over it. A pure function
 * of (observation, state, config): the supervisor feeds it the balancer's counters on a timer.
 */
export interface ConcurrencyLimitConfig {
  /** The front ends' mean response time (ms) the limit holds under: the SLA's share after the balancer's queue. */
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
  /** Mean response time of its recent answers (ms). */
  responseMs: number;
  /** Answers passed on since the last observation: none, and its mean is stale. */
  answered: number;
  /** Queries waiting in its queue now. */
  queued: number;
}

export interface ConcurrencyState {
  limit: number;
}

/** Grow while answers are at most this share of the target (a margin, so the limit settles instead of oscillating). */
const GROW_BELOW = 0.8;

export function defaultConcurrencyLimit(slaP99Ms: number): ConcurrencyLimitConfig {
  // A quarter of the SLA waits in the balancer's queue; a mean answer of another quarter leaves its tail room in the rest.
  return { targetMs: slaP99Ms / 4, min: 1, max: 64, backoff: 0.75, periodMs: 1000 };
}

export function nextLimit(obs: ConcurrencyObservation, state: ConcurrencyState, cfg: ConcurrencyLimitConfig): { state: ConcurrencyState; reason: string } {
  const { limit } = state;
  if (obs.answered === 0) return { state, reason: 'no answers since the last look' };
  if (obs.responseMs > cfg.targetMs) {
    const cut = Math.max(cfg.min, Math.floor(limit * cfg.backoff));
    return { state: { limit: cut }, reason: `answers take ${obs.responseMs.toFixed(1)} ms, over the ${cfg.targetMs} ms target` };
  }
  if (obs.queued > 0 && obs.responseMs <= GROW_BELOW * cfg.targetMs && limit < cfg.max) {
    return { state: { limit: limit + 1 }, reason: `${obs.queued} waiting and answers take ${obs.responseMs.toFixed(1)} ms, under the ${cfg.targetMs} ms target` };
  }
  return { state, reason: 'within the target' };
}
