/**
 * Admission control of one front end. Past capacity an open-loop client keeps sending, so a
 * server that queues everything answers everyone late (p99 of seconds, then timeouts); one
 * that refuses what it cannot serve in time answers the rest within the SLA. Two bounds:
 *
 * - the wait: once a new query would wait longer than `maxQueueMs` before its batch starts,
 *   for `burstMs` on end, new queries are refused until the wait falls back under it (CoDel's
 *   idea: a *standing* queue's delay, not its length, is what a latency SLA bounds; it needs
 *   no capacity estimate, and a short burst passes). The wait is the larger of the engine's
 *   queue age and the event loop's lag: a saturated loop leaves requests unparsed in socket
 *   buffers, a queue the engine cannot see;
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

/**
 * The queue budget a p99 SLA leaves: a quarter of it for waiting, the rest for the batch itself
 * and the network; a wait over it may stand for half the SLA (a burst, a cold JIT) before
 * refusals begin.
 */
export function admissionForSla(slaP99Ms: number, maxQueueDelayMs = 0): AdmissionOptions {
  return { maxInflight: 1024, maxQueueMs: maxQueueDelayMs + slaP99Ms / 4, burstMs: slaP99Ms / 2 };
}

export class AdmissionControl {
  private inflight = 0;
  /** When the wait last rose over the budget (performance.now() ms), or -1 while under it. */
  private overSince = -1;
  private lastWait = 0;
  private refused = 0;

  /**
   * `waitMs`: how long a query arriving now would wait before its batch starts.
   * `onChange`: called when refusing starts (with why) and when it stops (with how many were refused).
   */
  constructor(
    readonly opts: AdmissionOptions,
    private readonly waitMs: (now: number) => number,
    private readonly onChange: (refusing: boolean, detail: string) => void = () => {},
  ) {}

  /** Whether a query arriving now is admitted (release() it when answered). No allocation: it runs for every refused query. */
  admit(now = performance.now()): boolean {
    const ok = this.wouldAdmit(now);
    if (ok) {
      this.inflight++;
      if (this.refused > 0) {
        this.onChange(false, `${this.refused} queries refused`);
        this.refused = 0;
      }
    } else if (this.refused++ === 0) this.onChange(true, this.refusal(now));
    return ok;
  }

  /** Whether admit() would admit a query arriving now, admitting none (a client asking before it sends its body). */
  wouldAdmit(now = performance.now()): boolean {
    return this.inflight < this.opts.maxInflight && this.waitOk(now);
  }

  private waitOk(now: number): boolean {
    const wait = (this.lastWait = this.waitMs(now));
    if (wait <= this.opts.maxQueueMs) this.overSince = -1;
    else if (this.overSince < 0) this.overSince = now;
    else if (now - this.overSince >= this.opts.burstMs) return false;
    return true;
  }

  /** Why queries are being refused now. */
  refusal(now = performance.now()): string {
    if (this.inflight >= this.opts.maxInflight) return `${this.inflight} queries in flight, the limit is ${this.opts.maxInflight}`;
    return `queries have waited over the ${this.opts.maxQueueMs} ms queue budget for ${(now - this.overSince).toFixed(0)} ms (now ${this.lastWait.toFixed(0)} ms)`;
  }

  release(): void {
    this.inflight--;
  }
}
