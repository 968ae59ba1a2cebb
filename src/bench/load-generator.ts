import * as http from 'node:http';
import { Pool } from 'undici';
import type { Batch } from '../model/batch.ts';
import { encodeBinaryRequest } from '../protocol/oip.ts';
import { LatencyRecorder } from '../util/latency.ts';
import { Rng } from '../util/rng.ts';
import { rawHttpSender } from './raw-http-sender.ts';
import { type Outcome, type Sender, outcomeOf } from './sender.ts';

export interface LoadTarget {
  url: string;
  modelName: string;
}

/** A query ready to send: Triton binary-tensor body, encoded once before the run. */
export interface EncodedQuery {
  body: Buffer;
  headerLength: string;
}

export interface RunResult {
  targetQps: number;
  durationS: number;
  sent: number;
  ok: number;
  /** Refused by admission control (429): the server said it was over capacity, at once. */
  rejected: number;
  /** Answered 200 within RunOptions.slaMs (goodput); equal to ok when no SLA was given. */
  okWithinSla: number;
  errors: number;
  timeouts: number;
  /** What the first query that failed (an error or a timeout) got, to say why in a report. */
  firstFailure?: string;
  achievedQps: number;
  latency: ReturnType<LatencyRecorder['summary']>;
  /**
   * How late the load generator sent its queries (send time − scheduled time, every query
   * counted): part of every latency above, and the measure of its own overload. When the
   * sender shares cores with what it measures, a high send lag says the step measured the
   * sender, not the server.
   */
  sendLag: { p99Ms: number; maxMs: number };
}

/**
 * The HTTP client that sends the queries. On a small machine the sender's CPU is taken from the
 * servers being measured, so the default is the cheapest (`npm run bench:cpu` measures all three
 * on one deployment): raw HTTP/1.1 on sockets, then undici, then node:http.
 */
export const LOAD_CLIENTS = ['raw', 'undici', 'node-http'] as const;
export type LoadClient = (typeof LOAD_CLIENTS)[number];

function nodeHttpSender(url: URL, timeoutMs: number): Sender {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  return {
    send(query, finish) {
      const req = http.request(url, {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': query.headerLength, 'content-length': query.body.length },
        timeout: timeoutMs,
      });
      req.setNoDelay(true);
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => finish(outcomeOf(res.statusCode!), `HTTP ${res.statusCode}`));
      });
      req.on('timeout', () => {
        req.destroy();
        finish('timeouts');
      });
      req.on('error', (e) => {
        if (!req.destroyed || (e as NodeJS.ErrnoException).code !== 'ECONNRESET') finish('errors', e.message);
      });
      req.end(query.body);
    },
    async close() {
      agent.destroy();
    },
  };
}

function undiciSender(url: URL, timeoutMs: number): Sender {
  const pool = new Pool(url.origin, { connections: 512, pipelining: 1, keepAliveTimeout: 30_000 });
  const path = url.pathname;
  return {
    send(query, finish) {
      let status = 0;
      pool.dispatch(
        {
          method: 'POST',
          path,
          body: query.body,
          headers: ['content-type', 'application/octet-stream', 'inference-header-content-length', query.headerLength],
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        },
        {
          // Its presence marks the handler as undici's current (v7) interface.
          onRequestStart() {},
          onResponseStart(_c, statusCode) {
            status = statusCode;
          },
          onResponseEnd() {
            finish(outcomeOf(status), `HTTP ${status}`);
          },
          onResponseError(_c, e) {
            const code = (e as NodeJS.ErrnoException).code;
            finish(code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'timeouts' : 'errors', e.message);
          },
        },
      );
    },
    async close() {
      await pool.destroy();
    },
  };
}

export interface RunOptions {
  qps: number;
  /** Default raw. */
  client?: LoadClient;
  durationS: number;
  /** A rate that changes with time (seconds from the start of the measured part), instead of qps. */
  rate?: (tS: number) => number;
  /** Called once per second of the run with that second's counts (the per-second timeline). */
  onSecond?: (s: SecondStats) => void;
  timeoutMs: number;
  seed?: number;
  /** Seconds of load before measuring (JIT, connections, caches); its queries are not counted. */
  warmupS?: number;
  /** Called about once a second while the run is going. */
  onProgress?: (line: string) => void;
  /** Count the answers within this many ms apart (okWithinSla). */
  slaMs?: number;
}

/** One second of a run, by scheduled send time. */
export interface SecondStats {
  /** Seconds from the start of the measured part. */
  t: number;
  /** The rate asked for at that second. */
  offered: number;
  sent: number;
  ok: number;
  rejected: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** The latest the load generator sent a query due in that second (see RunResult.sendLag). */
  sendLagMaxMs: number;
}

const quantile = (sorted: number[], q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);

export function encodeQueries(queries: Batch[], numDense: number): EncodedQuery[] {
  return queries.map((q) => {
    const { body, headerLength } = encodeBinaryRequest(q, numDense);
    return { body, headerLength: String(headerLength) };
  });
}

/**
 * Open-loop load: arrivals are a Poisson process at `qps`, scheduled in advance and sent when
 * due whatever the server is doing, so a slow server cannot slow the sender. Latency counts
 * from the scheduled send time (no coordinated omission). Queries replay the trace in order,
 * wrapping around.
 */
export async function runOpenLoop(target: LoadTarget, queries: EncodedQuery[], opts: RunOptions): Promise<RunResult> {
  const url = new URL(`/v2/models/${encodeURIComponent(target.modelName)}/infer`, target.url);
  const senders: Record<LoadClient, (url: URL, timeoutMs: number) => Sender> = { raw: rawHttpSender, undici: undiciSender, 'node-http': nodeHttpSender };
  const sender = senders[opts.client ?? 'raw'](url, opts.timeoutMs);
  const rng = new Rng(opts.seed ?? 1);
  const latency = new LatencyRecorder();
  const sendLag = new LatencyRecorder();
  const result = { sent: 0, ok: 0, rejected: 0, okWithinSla: 0, errors: 0, timeouts: 0 };
  const slaMs = opts.slaMs ?? Infinity;
  const rate = opts.rate ?? (() => opts.qps);
  // Per-second buckets by scheduled time, kept only when someone reads them (a latency list each, sorted once at the end of its second).
  const emptySecond = () => ({ sent: 0, ok: 0, rejected: 0, errors: 0, lagMs: 0, latencies: [] as number[] });
  const seconds: ReturnType<typeof emptySecond>[] = [];
  const bucket = (scheduled: number) => (seconds[Math.floor((scheduled - measureFrom) / 1000)] ??= emptySecond());
  let reported = 0;
  const reportSeconds = (upTo: number) => {
    for (; reported < upTo && reported < Math.ceil(opts.durationS); reported++) {
      const b = seconds[reported] ?? emptySecond();
      const sorted = b.latencies.sort((x, y) => x - y);
      opts.onSecond!({ t: reported, offered: rate(reported + 0.5), sent: b.sent, ok: b.ok, rejected: b.rejected, errors: b.errors, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), sendLagMaxMs: b.lagMs });
      seconds[reported] = undefined as never;
    }
  };
  const start = performance.now();
  const measureFrom = start + (opts.warmupS ?? 0) * 1000;
  const end = measureFrom + opts.durationS * 1000;
  let next = start;
  let q = 0;
  let inflight = 0;
  let lastProgress = start;
  let firstFailure: string | undefined;

  const send = (scheduled: number, now: number) => {
    const query = queries[q++ % queries.length];
    const counted = scheduled >= measureFrom;
    const sec = counted && opts.onSecond ? bucket(scheduled) : null;
    if (counted) {
      result.sent++;
      sendLag.recordMs(now - scheduled);
    }
    if (sec) {
      sec.sent++;
      sec.lagMs = Math.max(sec.lagMs, now - scheduled);
    }
    inflight++;
    const finish = (outcome: Outcome, detail?: string) => {
      inflight--;
      if (!counted) return;
      result[outcome]++;
      if (sec) {
        if (outcome === 'ok') sec.ok++;
        else if (outcome === 'rejected') sec.rejected++;
        else sec.errors++;
      }
      if (outcome === 'ok') {
        const ms = performance.now() - scheduled;
        latency.recordMs(ms);
        sec?.latencies.push(ms);
        if (ms <= slaMs) result.okWithinSla++;
      } else if (outcome !== 'rejected') firstFailure ??= detail ?? `no answer within ${opts.timeoutMs} ms`;
    };
    sender.send(query, finish);
  };

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next <= now && next < end) {
        const r = rate(Math.max(0, (next - measureFrom) / 1000));
        // No traffic asked for now: look again in 100 ms.
        if (r <= 0) {
          next += 100;
          continue;
        }
        send(next, now);
        next += (-Math.log(1 - rng.next()) * 1000) / r;
      }
      // A second is reported once the requests of the second before it had their timeout to answer.
      if (opts.onSecond) reportSeconds(Math.floor((now - measureFrom - opts.timeoutMs) / 1000));
      if (opts.onProgress && now - lastProgress >= 1000) {
        lastProgress = now;
        opts.onProgress(`  ${((now - start) / 1000).toFixed(0)}s sent ${result.sent} ok ${result.ok} refused ${result.rejected} errors ${result.errors + result.timeouts} in flight ${inflight} p99 ${latency.count ? latency.percentileMs(99).toFixed(1) : '-'} ms${now < measureFrom ? ' (warming up: not counted)' : ''}`);
      }
      if (next < end) setTimeout(tick, Math.max(0, Math.min(next - now, 5)));
      else resolve();
    };
    tick();
  });
  // Wait for the stragglers (bounded by the request timeout).
  while (inflight > 0) await new Promise((r) => setTimeout(r, 5));
  if (opts.onSecond) reportSeconds(Infinity);
  await sender.close();
  const durationS = opts.durationS;
  if (firstFailure) opts.onProgress?.(`  first failure: ${firstFailure}`);
  const lag = sendLag.summary();
  return { targetQps: opts.qps, durationS, ...result, firstFailure, achievedQps: result.ok / durationS, latency: latency.summary(), sendLag: { p99Ms: lag.p99Ms, maxMs: lag.maxMs } };
}

export interface FindMaxOptions {
  slaP99Ms: number;
  stepS: number;
  timeoutMs: number;
  startQps?: number;
  /**
   * Each step runs long enough to measure at least this many queries: a p99 over a few
   * hundred samples is decided by two or three stragglers (default 1000).
   */
  minSamples?: number;
  /** Stop once the first failing rate is at or below this (the max is then below it): a search need not bisect down to 1 qps. */
  floorQps?: number;
  maxErrorRate?: number;
  warmupS?: number;
  onProgress?: (line: string) => void;
}

/** A run meets the SLA when p99 is under it, failures (refusals included) are rare and the server kept up with the offered rate. */
export function meetsSla(r: RunResult, slaP99Ms: number, maxErrorRate = 0.001): boolean {
  return r.latency.p99Ms <= slaP99Ms && (r.errors + r.timeouts + r.rejected) / Math.max(1, r.sent) <= maxErrorRate && r.achievedQps >= 0.9 * r.targetQps;
}

/**
 * The search for the highest offered QPS whose p99 meets the SLA, one step at a time: double
 * from `startQps` until a step fails, then bisect between the last pass and the first failure
 * to within 5%. A miss counts only when a second run at the same rate confirms it: on a shared
 * machine one stall can blow a step's p99, and a search that believed it would stop far below
 * the real capacity. Stepping lets a benchmark interleave several searches so that every
 * deployment sees the same phases of a noisy machine.
 */
export class MaxQpsSearch {
  readonly steps: RunResult[] = [];
  best: RunResult | null = null;
  private lo = 0;
  private hi: number;
  private growing = true;
  private confirming = false;
  private done = false;

  constructor(private readonly opts: FindMaxOptions) {
    this.hi = opts.startQps ?? 50;
  }

  /** The highest rate that met the SLA so far (the answer once `next()` is null). */
  get maxQps(): number {
    return this.lo;
  }

  /** The rate to run next, or null when the search is over. */
  next(): number | null {
    if (this.done) return null;
    if (this.growing || this.confirming) return this.rate();
    if (this.hi <= (this.opts.floorQps ?? 0)) {
      this.done = true;
      return null;
    }
    if (this.hi - this.lo > 0.05 * this.hi && this.hi - this.lo > 1) return this.rate();
    this.done = true;
    return null;
  }

  /** How long a step at `qps` runs: long enough for minSamples queries (default 1000). */
  durationS(qps: number): number {
    return Math.max(this.opts.stepS, (this.opts.minSamples ?? 1000) / qps);
  }

  /** Takes the result of running `next()`'s rate. */
  record(r: RunResult): void {
    this.steps.push(r);
    const qps = this.rate();
    const pass = meetsSla(r, this.opts.slaP99Ms, this.opts.maxErrorRate);
    const verdict = pass ? 'meets' : this.confirming ? 'misses' : 'misses (confirming)';
    this.opts.onProgress?.(`  ${qps.toFixed(0).padStart(6)} qps offered → ${r.achievedQps.toFixed(0).padStart(6)} ok/s, p99 ${r.latency.p99Ms.toFixed(1)} ms, refused ${r.rejected}, errors ${r.errors + r.timeouts}: ${verdict} the ${this.opts.slaP99Ms} ms SLA`);
    if (!pass && !this.confirming) {
      this.confirming = true;
      return;
    }
    this.confirming = false;
    if (pass) {
      this.best = r;
      this.lo = qps;
      if (this.growing) this.hi *= 2;
    } else if (this.growing) this.growing = false;
    else this.hi = qps;
  }

  private rate(): number {
    return this.growing ? this.hi : (this.lo + this.hi) / 2;
  }
}

/**
 * Runs several searches in turns, one step each, until all are done: on a shared VM whose
 * speed drifts for minutes at a time, searches run one after another would each meet a
 * different machine.
 */
export async function runInterleaved(searches: { search: MaxQpsSearch; target: LoadTarget }[], queries: EncodedQuery[], opts: { timeoutMs: number; warmupS?: number }): Promise<void> {
  for (let going = true; going; ) {
    going = false;
    for (const { search, target } of searches) {
      const qps = search.next();
      if (qps === null) continue;
      going = true;
      search.record(await runOpenLoop(target, queries, { qps, durationS: search.durationS(qps), timeoutMs: opts.timeoutMs, warmupS: opts.warmupS }));
    }
  }
}

/** Runs a MaxQpsSearch against one target. */
export async function findMaxQps(target: LoadTarget, queries: EncodedQuery[], opts: FindMaxOptions): Promise<{ maxQps: number; best: RunResult | null; steps: RunResult[] }> {
  const search = new MaxQpsSearch(opts);
  for (let qps = search.next(); qps !== null; qps = search.next()) {
    search.record(await runOpenLoop(target, queries, { qps, durationS: search.durationS(qps), timeoutMs: opts.timeoutMs, warmupS: opts.warmupS }));
  }
  return { maxQps: search.maxQps, best: search.best, steps: search.steps };
}
