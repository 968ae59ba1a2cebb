import type { Frame, FrameTypeCode } from './frame.ts';
import { type Address, FrameClient, RemoteError, TransportError, addressKey } from './frame-client.ts';
import { ErrorCodes, ShardwiseError } from '../util/errors.ts';

/**
 * How a pool tells a slow or dead replica from a busy one. Defaults after Envoy's outlier
 * detection (consecutive failures eject for base × times-ejected, capped) and "The Tail at
 * Scale" (hedge a request still unanswered at the service's p95).
 */
export interface PoolHealthOptions {
  /** A request unanswered after this quantile of the pool's recent latencies is sent to a second replica too. */
  hedgeQuantile: number;
  /** Never hedge sooner than this (a p95 of 0.3 ms on an idle machine would hedge every hiccup). */
  minHedgeMs: number;
  /** Consecutive failures (connection errors, timeouts, hedge races lost) that eject a replica. */
  ejectAfter: number;
  /** First ejection; each further one in a row doubles it, up to maxEjectionMs. */
  baseEjectionMs: number;
  maxEjectionMs: number;
}

export const DEFAULT_POOL_HEALTH: PoolHealthOptions = { hedgeQuantile: 0.95, minHedgeMs: 3, ejectAfter: 5, baseEjectionMs: 1000, maxEjectionMs: 30_000 };

export type PoolEvent =
  | { type: 'ejected'; service: string; replica: string; forMs: number; reason: string }
  | { type: 'returned'; service: string; replica: string; afterMs: number }
  | { type: 'hedged'; service: string }
  /** A replica taken out of the set has answered everything it had: it may stop now. */
  | { type: 'drained'; service: string; replica: string };

/** A replica's health as the pool sees it. */
interface Member {
  client: FrameClient;
  key: string;
  failures: number;
  /** Date.now() until which it gets no requests; 0 when in rotation. */
  ejectedUntil: number;
  /** Ejections in a row without a success between them: the next one lasts base × 2^ejections. */
  ejections: number;
  ejectedAt: number;
}

interface Attempt {
  member: Member;
  id: number;
  startedAt: number;
}

/** Recent request latencies of the pool, for the hedge delay (a ring; the quantile is recomputed every 32 samples). */
const LATENCY_WINDOW = 128;

/**
 * The replicas of one service. Each request goes to the healthy replica with the fewest
 * outstanding requests. A request still unanswered at the pool's p95 is hedged on another
 * replica (first answer wins, the other is cancelled); a connection failure is retried at
 * once on another replica; both share the request's deadline. A replica that fails
 * `ejectAfter` times in a row (a hung process loses every hedge race) is ejected for a
 * growing interval, then probed with live traffic: one more failure ejects it again, a success
 * returns it. ERROR frames are the request's fault and count against no replica.
 */
export class ReplicaPool {
  private members: Member[] = [];
  /** Replicas taken out of the set with requests still out: no new ones, closed when the last answers. */
  private readonly draining = new Set<Member>();
  private readonly latencies = new Float64Array(LATENCY_WINDOW);
  private latencyCount = 0;
  private hedgeDelay: number;
  private turn = 0;

  constructor(
    readonly service: string,
    addresses: Address[] = [],
    private readonly health: PoolHealthOptions = DEFAULT_POOL_HEALTH,
    private readonly onEvent: (e: PoolEvent) => void = () => {},
  ) {
    this.hedgeDelay = health.minHedgeMs;
    this.setAddresses(addresses);
  }

  get size(): number {
    return this.members.length;
  }

  /**
   * Replaces the replica set (after a restart or a scale step). A dropped replica gets no new
   * request; its connection closes once the requests it has are answered (a drain, announced
   * with a 'drained' event), so a scale-in fails no query. Health state is kept per address.
   */
  setAddresses(addresses: Address[]): void {
    const keep = new Map(this.members.map((m) => [m.key, m]));
    for (const m of this.draining) keep.set(m.key, m);
    this.members = addresses.map((a) => keep.get(addressKey(a)) ?? { client: new FrameClient(a), key: addressKey(a), failures: 0, ejectedUntil: 0, ejections: 0, ejectedAt: 0 });
    const live = new Set(this.members.map((m) => m.key));
    for (const [k, m] of keep) {
      if (live.has(k)) this.draining.delete(m);
      else {
        this.draining.add(m);
        this.closeIfDrained(m);
      }
    }
  }

  private closeIfDrained(m: Member): void {
    if (!this.draining.has(m) || m.client.outstanding > 0) return;
    this.draining.delete(m);
    m.client.close();
    this.onEvent({ type: 'drained', service: this.service, replica: m.key });
  }

  /** Why this service cannot be served now, or null. */
  unready(): string | null {
    if (this.members.length === 0) return `service ${this.service} has no replica`;
    const now = Date.now();
    if (this.members.every((m) => m.ejectedUntil > now)) return `every replica of service ${this.service} is ejected (not answering)`;
    return null;
  }

  /**
   * The least-outstanding member in rotation and not yet tried, ties broken round-robin (else
   * sequential traffic would all go to the first); ejected ones only when nothing else is left.
   */
  private pick(tried: readonly Attempt[]): Member | undefined {
    const now = Date.now();
    let best: Member | undefined;
    let fallback: Member | undefined;
    const n = this.members.length;
    const start = (this.turn = (this.turn + 1) % Math.max(1, n));
    for (let i = 0; i < n; i++) {
      const m = this.members[(start + i) % n];
      if (tried.some((a) => a.member === m)) continue;
      if (m.ejectedUntil > now) {
        if (!fallback || m.ejectedUntil < fallback.ejectedUntil) fallback = m;
        continue;
      }
      if (!best || m.client.outstanding < best.client.outstanding) best = m;
    }
    return best ?? (tried.length === 0 ? fallback : undefined);
  }

  request(type: FrameTypeCode, parts: Buffer[], deadline: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const attempts: Attempt[] = [];
      let settled = false;
      let live = 0;
      let hedgeTimer: NodeJS.Timeout | null = null;
      const settle = () => {
        settled = true;
        if (hedgeTimer) clearTimeout(hedgeTimer);
      };
      const launch = (member: Member) => {
        const attempt: Attempt = { member, id: 0, startedAt: performance.now() };
        attempts.push(attempt);
        live++;
        attempt.id = member.client.send(type, parts, Math.max(1, deadline - Date.now()), (err, frame) => {
          live--;
          this.closeIfDrained(member);
          if (settled) return;
          if (!err) {
            settle();
            this.succeeded(member, performance.now() - attempt.startedAt);
            // Cancel the other attempt; if it started first, it lost the race (a hung replica loses every one).
            for (const other of attempts) {
              if (other === attempt) continue;
              other.member.client.cancel(other.id);
              this.closeIfDrained(other.member);
              if (other.startedAt < attempt.startedAt) this.failed(other.member, `no answer within ${(performance.now() - other.startedAt).toFixed(1)} ms while another replica answered`);
            }
            return resolve(frame!);
          }
          if (err instanceof RemoteError) {
            settle();
            for (const other of attempts) {
              if (other === attempt) continue;
              other.member.client.cancel(other.id);
              this.closeIfDrained(other.member);
            }
            return reject(err);
          }
          this.failed(member, err.message);
          const next = attempts.length < 2 && Date.now() < deadline ? this.pick(attempts) : undefined;
          if (next) launch(next);
          else if (live === 0) {
            settle();
            // Name the service: the caller (and the 503 a client gets) should not have to map an address back to it.
            const code = err instanceof ShardwiseError ? err.code : ErrorCodes.SERVICE;
            reject(new TransportError(code, `${this.service}: no replica answered (last: ${err.message})`, err instanceof ShardwiseError ? err.hint : undefined));
          }
        });
      };
      const first = this.pick(attempts);
      if (!first) return reject(new TransportError(ErrorCodes.SERVICE, `service ${this.service} has no replicas`, 'check that its replicas run and are ready (the local supervisor restarts failed ones; on Kubernetes, its pods and their readiness)'));
      launch(first);
      if (this.members.length > 1 && this.hedgeDelay < deadline - Date.now()) {
        hedgeTimer = setTimeout(() => {
          hedgeTimer = null;
          if (settled || attempts.length >= 2) return;
          const second = this.pick(attempts);
          if (!second) return;
          this.onEvent({ type: 'hedged', service: this.service });
          launch(second);
        }, this.hedgeDelay);
      }
    });
  }

  private succeeded(m: Member, ms: number): void {
    this.latencies[this.latencyCount++ % LATENCY_WINDOW] = ms;
    if (this.latencyCount % 32 === 0) {
      const sorted = this.latencies.slice(0, Math.min(this.latencyCount, LATENCY_WINDOW)).sort();
      this.hedgeDelay = Math.max(this.health.minHedgeMs, sorted[Math.floor(this.health.hedgeQuantile * (sorted.length - 1))]);
    }
    m.failures = 0;
    if (m.ejections > 0) {
      this.onEvent({ type: 'returned', service: this.service, replica: m.key, afterMs: Date.now() - m.ejectedAt });
      m.ejections = 0;
    }
  }

  private failed(m: Member, reason: string): void {
    m.failures++;
    const now = Date.now();
    if (m.ejectedUntil > now) return;
    // A replica back from an ejection is on probation: its first failure ejects it again, for longer.
    if (m.failures < this.health.ejectAfter && m.ejections === 0) return;
    const forMs = Math.min(this.health.maxEjectionMs, this.health.baseEjectionMs * 2 ** m.ejections);
    if (m.ejections === 0) m.ejectedAt = now;
    m.ejections++;
    m.ejectedUntil = now + forMs;
    this.onEvent({ type: 'ejected', service: this.service, replica: m.key, forMs, reason: `${m.failures} failures in a row, the last: ${reason}` });
  }

  close(): void {
    for (const m of [...this.members, ...this.draining]) m.client.close();
  }
}
