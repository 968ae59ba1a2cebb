import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** A tick whose event loop was busy at least this share of the time counts as saturated. */
const SATURATED = 0.95;

/**
 * How long a request arriving now waits before the event loop reads it, estimated from a
 * timer that ticks every `periodMs` while someone asks (it stops after `idleStopMs` without a
 * question, so an idle service is never woken). A saturated front end queues requests
 * *before* they are parsed (in socket buffers and the accept queue), where no queue of its own
 * can see them. Two signs of that wait: the timer running late (one long callback), and the
 * loop staying busy tick after tick without ever waiting for I/O (a backlog of many short
 * ones): the length of that busy streak is how long the backlog has stood.
 */
export class LoopLagSampler {
  private timer: NodeJS.Timeout | null = null;
  private expected = 0;
  private lag = 0;
  private lastAsked = 0;
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  /** When the loop's current busy streak began (performance.now() ms), or -1. */
  private busySince = -1;

  constructor(private readonly periodMs = 5, private readonly idleStopMs = 1000) {}

  /** The estimated wait in ms: the last tick's lateness (or now's, if a tick is overdue), or the busy streak, whichever is longer. */
  lagMs(now = performance.now()): number {
    this.lastAsked = now;
    if (!this.timer) {
      this.lag = 0;
      this.busySince = -1;
      this.elu = performance.eventLoopUtilization();
      this.arm(now);
    }
    return Math.max(this.lag, now - this.expected, this.busySince < 0 ? 0 : now - this.busySince);
  }

  private arm(now: number): void {
    this.expected = now + this.periodMs;
    this.timer = setTimeout(this.tick, this.periodMs);
    this.timer.unref();
  }

  private readonly tick = () => {
    const now = performance.now();
    this.lag = Math.max(0, now - this.expected);
    const elu = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(elu, this.elu).utilization >= SATURATED;
    this.elu = elu;
    if (!busy) this.busySince = -1;
    else if (this.busySince < 0) this.busySince = now - this.periodMs - this.lag;
    if (now - this.lastAsked > this.idleStopMs) this.timer = null;
    else this.arm(now);
  };
}
