/**
 * Admission control of one front end. Past capacity an open-loop client keeps sending, so a
 * server that queues everything answers everyone late (p99 of seconds, then timeouts); one
 * that refuses what it cannot serve in time answers the rest within the SLA. Two bounds:
 *
 * - the queue: once the oldest query waiting for a batch slot has waited longer than
 *   `maxQueueMs` for `burstMs` on end, new queries are refused until the wait falls back
 *   under it (CoDel's idea: a *standing* queue's delay, not its length, is what a latency SLA
 *   bounds; it needs no capacity estimate, and a short burst passes);
 * - in flight: at most `maxInflight` admitted queries at once, the backstop when nothing queues
 *   (no dynamic batching) or queries wait downstream.
 *
 * A refusal is cheap (no body parsed) so that the event loop stays free for the admitted
 * queries and for health checks.
 */
export interface AdmissionOptions {
  maxInflight: number;
  maxQueueMs: number;
  /** How long the queue may stand over maxQueueMs before refusals begin (a burst's grace). */
  burstMs: number;
}

/** The p99 SLA `serve` assumes unless told (ElasticRec's and DeepRecSys' tens of ms). */
export const DEFAULT_SLA_P99_MS = 50;

/** The queue budget a p99 SLA leaves: a quarter of it for waiting, the rest for the batch itself and the network. */
export function admissionForSla(slaP99Ms: number, maxQueueDelayMs = 0): AdmissionOptions {
  return { maxInflight: 1024, maxQueueMs: maxQueueDelayMs + slaP99Ms / 4, burstMs: slaP99Ms / 4 };
}

export class AdmissionControl {
  private inflight = 0;
  /** When the queue's wait last rose over the budget (performance.now() ms), or -1 while under it. */
  private overSince = -1;

  constructor(readonly opts: AdmissionOptions, private readonly queueAgeMs: () => number) {}

  /** null when the query is admitted (release() it when answered), else why it was refused. */
  admit(now = performance.now()): string | null {
    if (this.inflight >= this.opts.maxInflight) return `${this.inflight} queries in flight, the limit is ${this.opts.maxInflight}`;
    const age = this.queueAgeMs();
    if (age <= this.opts.maxQueueMs) this.overSince = -1;
    else if (this.overSince < 0) this.overSince = now;
    else if (now - this.overSince >= this.opts.burstMs) {
      return `queries have waited over the ${this.opts.maxQueueMs} ms queue budget for ${(now - this.overSince).toFixed(0)} ms (oldest ${age.toFixed(0)} ms)`;
    }
    this.inflight++;
    return null;
  }

  release(): void {
    this.inflight--;
  }
}
