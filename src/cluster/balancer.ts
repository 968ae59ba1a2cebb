import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ErrorCodes, ShardwiseError, httpStatusOf } from '../util/errors.ts';
import { errorBody } from '../serving/http-api.ts';
import type { Logger } from '../util/log.ts';
import type { ScalingSettings } from './scaling-config.ts';
import { type ConcurrencyLimitConfig, defaultConcurrencyLimit } from './concurrency-limit.ts';

/**
 * A balancer in front of the front ends (HAProxy), for overload. A front end that refuses a
 * query itself still pays Node's whole per-request cost for it (~0.12 ms of its CPU on this
 * VM, README: bench:overload), so at 4× its capacity the refusals alone take most of its quota.
 * HAProxy refuses in C, outside the front ends' CPU: it gives each front-end replica at most
 * `inflightPerReplica` queries at once, queues the rest, and answers 429 (Retry-After) to a
 * query that has waited `queueMs` in its queue — what Knative's queue-proxy and an Envoy
 * concurrency limit do for a pod. Health and metadata requests bypass the queue, so a probe
 * never waits behind queries.
 */
export interface BalancerOptions {
  /** Queries one front-end replica is given at once (to start with, when adapted); the rest wait in the balancer's queue. */
  inflightPerReplica: number;
  /** How long a query may wait in the balancer's queue before it is refused with 429. */
  queueMs: number;
  /** How the in-flight limit adapts to the front ends' response times (src/cluster/concurrency-limit.ts), or null: fixed. */
  adaptive?: ConcurrencyLimitConfig | null;
  /** How long it waits on a front end's answer before a 504 (default FRONT_END_TIMEOUT_S). */
  frontEndTimeoutS?: number;
}

/**
 * Enough queries in flight for the front end's dynamic batching to merge a few, few enough that
 * a saturated replica answers them well within the SLA (bench:overload: 8 with a 25 ms queue
 * budget held 72% of max at 4x but admitted p99 80-90 ms; 4 with 12.5 ms, 73% and 42-67 ms).
 */
export const DEFAULT_BALANCER_INFLIGHT = 4;

/** Behind a balancer, the front ends' in-flight autoscale target as a share of their in-flight limit. */
export const BALANCED_TARGET_SHARE = 0.75;

/**
 * Front ends' scaling settings behind a balancer: a saturated replica holds exactly its
 * in-flight limit, never more, so an in-flight target at or above it would never scale out;
 * such a target is held at BALANCED_TARGET_SHARE of the limit. Otherwise the settings as given.
 */
export function balancedScaling<S extends Pick<ScalingSettings, 'frontEndMetric' | 'frontEndTargetInflight'>>(s: S, balancer: BalancerOptions | null): S {
  if (!balancer || s.frontEndMetric !== 'inflight' || s.frontEndTargetInflight < balancer.inflightPerReplica) return s;
  return { ...s, frontEndTargetInflight: BALANCED_TARGET_SHARE * balancer.inflightPerReplica };
}

/**
 * The balancer for a p99 SLA: a quarter of it for waiting in the balancer's queue (as admission
 * control's budget), the rest for the batch and the network; the flags' values where given.
 */
export function balancerForSla(slaP99Ms: number, given: { inflightPerReplica?: number; queueMs?: number; adaptive?: boolean; targetMs?: number } = {}): BalancerOptions {
  return {
    inflightPerReplica: given.inflightPerReplica ?? DEFAULT_BALANCER_INFLIGHT,
    queueMs: given.queueMs ?? slaP99Ms / 4,
    adaptive: given.adaptive === false ? null : defaultConcurrencyLimit(slaP99Ms, given.targetMs),
  };
}

export interface BalancerLayout extends BalancerOptions {
  /** Where the front ends listen (and, unless bindHost, where the balancer does). */
  host: string;
  /** The public address to bind (a pod's 0.0.0.0), if not host. */
  bindHost?: string;
  /** The public port (clients connect here). */
  port: number;
  /** The port every front-end replica shares (the kernel spreads the balancer's connections over them). */
  frontEndPort: number;
  /** Front-end replicas now: the balancer's in-flight limit is inflightPerReplica × this. */
  replicas: number;
  /** Where the refusal's error file lives, and the runtime API's socket unless runDir. */
  dir: string;
  /** Where the runtime API's socket goes, if not dir (a pod's writable /tmp beside a read-only ConfigMap). */
  runDir?: string;
  /** HAProxy's own Prometheus exporter (/metrics: its queue, refusals, connections), or none where the build lacks it. */
  metricsPort?: number;
}

/** The balancer's backend of queries (the others, health and metadata, go straight through). */
const QUERIES = 'queries';
const SERVER = 'front';

/** HAProxy's buffer per direction of a stream: a query's whole request must fit for it to be retried. */
const BUFFER_BYTES = 65536;

const inflightLimit = (l: Pick<BalancerLayout, 'inflightPerReplica' | 'replicas'>) => l.inflightPerReplica * Math.max(1, l.replicas);

/**
 * How long the balancer waits on a front end's answer: a healthy one answers a query within its
 * deadline (2 s by default) and receives a body within its 10 s body timeout, so a front end
 * that takes longer is hung (SIGSTOPped, deadlocked), and the client gets a JSON 504 instead of
 * waiting on.
 */
export const FRONT_END_TIMEOUT_S = 15;

/** An error as the raw HTTP answer HAProxy sends from an error file: the registry's status and JSON body. */
function errorResponse(e: ShardwiseError, reason: string, retryAfter: boolean): string {
  const body = JSON.stringify(errorBody(e));
  const headers = ['content-type: application/json', ...(retryAfter ? ['retry-after: 1'] : []), 'cache-control: no-store', `content-length: ${Buffer.byteLength(body)}`];
  return [`HTTP/1.1 ${httpStatusOf(e)} ${reason}`, ...headers, '', body].join('\r\n');
}

/** The answer to a query that waited out the balancer's queue budget (its error file for 503 in the queries' backend). */
export function refusalResponse(queueMs: number): string {
  return errorResponse(new ShardwiseError(ErrorCodes.OVERLOADED, `over capacity: no front-end replica could take the query within the balancer's ${queueMs} ms queue budget`, 'retry after Retry-After seconds, or add replicas'), 'Too Many Requests', true);
}

/**
 * Every error file the balancer's config names, by file name: the refusal, and JSON in place of
 * HAProxy's HTML pages for a front end that is down (502, 503) or hung (504).
 */
export function balancerErrorFiles(o: BalancerOptions): Record<string, string> {
  const down = new ShardwiseError(ErrorCodes.SERVICE, 'no front-end replica answered: it is restarting or down', 'retry after Retry-After seconds');
  const hung = new ShardwiseError(ErrorCodes.TIMEOUT, `the front end did not answer within ${o.frontEndTimeoutS ?? FRONT_END_TIMEOUT_S} s`, 'retry; if it persists, the front end is hung: see its log');
  return { 'refused.http': refusalResponse(o.queueMs), 'unavailable.http': errorResponse(down, 'Service Unavailable', true), 'timeout.http': errorResponse(hung, 'Gateway Timeout', false) };
}

/** haproxy.cfg for a layout. Queries are POST …/infer; everything else bypasses the queue. */
export function haproxyConfig(l: BalancerLayout): string {
  const front = `${l.host}:${l.frontEndPort}`;
  const bind = l.bindHost ?? l.host;
  return [
    'global',
    // Client connections at once (haproxy needs two descriptors each, under this VM's 20k limit).
    '  maxconn 4096',
    // One thread: the balancer shares the machine with the services it fronts.
    '  nbthread 1',
    // A query must fit one buffer to be retried (below): RM1's batch of 8 is ~41 KB.
    `  tune.bufsize ${BUFFER_BYTES}`,
    `  stats socket ${path.join(l.runDir ?? l.dir, 'haproxy.sock')} mode 600 level admin`,
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    // The front ends are on this host (a pod's loopback): a connection is made in microseconds or
    // refused. HAProxy waits this long (at most 1 s) before each retry of a refused one, so with
    // 1 s a query that found its front end gone waited 3 s for its three retries.
    '  timeout connect 100ms',
    '  timeout client 60s',
    `  timeout server ${l.frontEndTimeoutS ?? FRONT_END_TIMEOUT_S}s`,
    '  timeout http-request 10s',
    '  timeout http-keep-alive 5s',
    `  errorfile 502 ${path.join(l.dir, 'unavailable.http')}`,
    `  errorfile 503 ${path.join(l.dir, 'unavailable.http')}`,
    `  errorfile 504 ${path.join(l.dir, 'timeout.http')}`,
    'frontend public',
    `  bind ${bind}:${l.port}`,
    `  use_backend ${QUERIES} if METH_POST { path_end /infer }`,
    '  default_backend direct',
    `backend ${QUERIES}`,
    `  timeout queue ${Math.max(1, Math.round(l.queueMs))}ms`,
    // Newest first (Facebook's adaptive LIFO): under overload the queue is always full to its
    // budget, and in arrival order every answered query would first wait out most of it; the
    // newest served first wait little, and the oldest, past saving, are the ones refused.
    // The class is the arrival's millisecond in a 2.048 s cycle, negated (lower goes first);
    // at each wrap the queries of the last queue budget are briefly out of order.
    '  http-request set-priority-class date(0,ms),mod(2048),neg',
    `  errorfile 503 ${path.join(l.dir, 'refused.http')}`,
    // With no front end running, a query is not over capacity: 503 at once, not a 429 after the queue budget.
    `  http-request return status 503 errorfile ${path.join(l.dir, 'unavailable.http')} if { nbsrv eq 0 }`,
    // Idle connections to the front ends serve any client's next query (they are stateless).
    '  http-reuse always',
    // A front end that dies with queries in flight closes their connections unanswered: an
    // inference has no side effect, so each is sent again, on a new connection the kernel gives
    // a live replica (the shared port). Not on a timeout: a hung front end gets its 504.
    '  retry-on conn-failure empty-response',
    '  retries 3',
    // A TCP check every half second: with no front end listening (a pod's router container
    // restarting; no supervisor beside it to say so), the server is down and queries get the
    // 503 above at once, not, after their retries, this backend's 429 file. On loopback a
    // refused connection is no fluke, so one failure is enough.
    `  server ${SERVER} ${front} maxconn ${inflightLimit(l)} check inter 500ms fall 1 rise 1${l.replicas === 0 ? ' disabled' : ''}`,
    'backend direct',
    `  server ${SERVER} ${front}`,
    ...(l.metricsPort ? ['frontend metrics', `  bind ${bind}:${l.metricsPort}`, '  http-request use-service prometheus-exporter if { path /metrics }'] : []),
    '',
  ].join('\n');
}

/** Whether this haproxy build has its Prometheus exporter (Debian's does). */
export function haproxyHasPrometheus(bin: string): boolean {
  return /\+PROMEX\b/.test(spawnSync(bin, ['-vv'], { encoding: 'utf8' }).stdout ?? '');
}

/** The haproxy binary: SHARDWISE_HAPROXY, else `haproxy` on PATH (or in /usr/sbin, where Debian puts it); null if none runs. */
export function findHaproxy(): string | null {
  const candidates = process.env.SHARDWISE_HAPROXY ? [process.env.SHARDWISE_HAPROXY] : ['haproxy', '/usr/sbin/haproxy', '/usr/local/sbin/haproxy'];
  for (const bin of candidates) if (spawnSync(bin, ['-v'], { stdio: 'ignore' }).status === 0) return bin;
  return null;
}

/** Sends one command to HAProxy's runtime API and returns its answer. */
function runtimeCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = net.connect(socket, () => c.end(`${command}\n`));
    c.on('data', (d) => chunks.push(d));
    c.on('error', reject);
    c.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/**
 * Runs haproxy ($0, config $1) so that it dies with the supervisor, even a SIGKILLed one (the
 * Node services see their IPC channel close; haproxy would keep the public port): a reader of
 * the supervisor's pipe kills it at end-of-file. stop() ends the pipe the same way.
 */
const TIED_TO_PARENT = 'exec 3<&0; "$0" -db -f "$1" </dev/null & hp=$!; (read _ <&3; kill $hp 2>/dev/null) & wait $hp';

/** HAProxy as the deployment's public listener (one process, restarted if it dies). */
export class HaproxyBalancer {
  private child: ChildProcess | null = null;
  private stopped = false;
  private readonly socket: string;
  private readonly configFile: string;

  private constructor(private readonly bin: string, private layout: BalancerLayout, private readonly log: Logger) {
    this.socket = path.join(layout.runDir ?? layout.dir, 'haproxy.sock');
    this.configFile = path.join(layout.dir, 'haproxy.cfg');
  }

  /** Writes the config, starts HAProxy and resolves once it accepts on the public port. */
  static async start(layout: BalancerLayout, log: Logger): Promise<HaproxyBalancer> {
    const bin = findHaproxy();
    if (!bin) throw new ShardwiseError(ErrorCodes.BAD_ARGUMENT, 'the haproxy balancer was asked for, but no haproxy binary runs here', 'install it (Debian: apt-get install haproxy), point SHARDWISE_HAPROXY at it, or serve without --balancer');
    if (layout.metricsPort && !haproxyHasPrometheus(bin)) {
      log.warn(`balancer: ${bin} is built without its Prometheus exporter: no balancer metrics`);
      layout = { ...layout, metricsPort: undefined };
    }
    const b = new HaproxyBalancer(bin, layout, log);
    for (const [file, text] of Object.entries(balancerErrorFiles(layout))) fs.writeFileSync(path.join(layout.dir, file), text);
    try {
      await b.spawn();
    } catch (e) {
      b.stopped = true; // a balancer that never started is not restarted
      throw e;
    }
    log.info(`balancer: haproxy on ${layout.host}:${layout.port}, ${layout.inflightPerReplica} queries in flight per front-end replica, ${layout.queueMs} ms queue budget, then 429${layout.metricsPort ? `; its metrics on :${layout.metricsPort}/metrics` : ''}`);
    return b;
  }

  /** Starts haproxy on the layout as it is now (its limits included, after a restart too), once haproxy accepts the config. */
  private async spawn(): Promise<void> {
    fs.writeFileSync(this.configFile, haproxyConfig(this.layout));
    const check = spawnSync(this.bin, ['-c', '-q', '-f', this.configFile], { encoding: 'utf8' });
    if (check.status !== 0) throw new ShardwiseError(ErrorCodes.SERVICE, `haproxy refused its configuration: ${(check.stderr || check.stdout).trim()}`);
    const child = spawn('/bin/sh', ['-c', TIED_TO_PARENT, this.bin, this.configFile], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
    child.stdin!.on('error', () => {}); // the shell already gone: nothing to tell it
    child.once('exit', (code, signal) => {
      child.stdin!.end();
      if (this.stopped) return;
      this.log.error(`balancer: haproxy exited (${signal ?? `code ${code}`}): ${stderr.trim() || 'no message'}; restarting it in 1 s`);
      setTimeout(() => void this.spawn().catch((e) => this.log.error(`balancer: haproxy could not be restarted: ${(e as Error).message}`)), 1000).unref();
    });
    const { host, port } = this.layout;
    for (let i = 0; ; i++) {
      if (child.exitCode !== null || child.signalCode !== null) throw new ShardwiseError(ErrorCodes.SERVICE, `haproxy exited during start: ${stderr.trim() || 'no message'}`);
      const up = await new Promise<boolean>((resolve) => {
        const c = net.connect(port, host, () => (c.destroy(), resolve(true)));
        c.on('error', () => resolve(false));
      });
      if (up) return;
      if (i > 100) throw new ShardwiseError(ErrorCodes.SERVICE, `haproxy did not listen on ${host}:${port} within 5 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Where HAProxy's Prometheus exporter listens, if it has one. */
  get metricsPort(): number | undefined {
    return this.layout.metricsPort;
  }

  /**
   * The front-end replica count or the limit per replica changed: the running balancer's
   * in-flight limit follows (a restart writes it into the config); with no replica running, the
   * queries' server is in maintenance, so queries get a 503 at once instead of waiting out the
   * queue budget for a 429.
   */
  async setLimit(change: { replicas?: number; inflightPerReplica?: number }): Promise<void> {
    const wasDown = this.layout.replicas === 0;
    this.layout = { ...this.layout, ...change };
    const down = this.layout.replicas === 0;
    const commands = [`set maxconn server ${QUERIES}/${SERVER} ${inflightLimit(this.layout)}`, ...(down !== wasDown ? [`set server ${QUERIES}/${SERVER} state ${down ? 'maint' : 'ready'}`] : [])];
    for (const command of commands) {
      const answer = await runtimeCommand(this.socket, command);
      if (answer.trim()) this.log.warn(`balancer: haproxy did not take '${command}': ${answer.trim()}`);
    }
  }

  /** The in-flight limit per front-end replica now. */
  get inflightPerReplica(): number {
    return this.layout.inflightPerReplica;
  }

  /**
   * The balancer's counters for queries: the in-flight limit, queries waiting now, its refusals,
   * the queries it passed on and their mean response time. HAProxy counts a refusal as the
   * connection error it is inside (a query that found no front end in time, answered with the
   * 429 error file): the backend's `econ`; a hung front end's 504s are response errors, not refusals.
   */
  async stats(): Promise<{ inflightLimit: number; queued: number; refused: number; forwarded: number; meanResponseMs: number }> {
    const [head, ...lines] = (await runtimeCommand(this.socket, 'show stat')).split('\n');
    const header = head.replace(/^# /, '').split(',');
    const rows = lines.map((l) => l.split(','));
    const row = rows.find((f) => f[0] === QUERIES && f[1] === SERVER);
    const backend = rows.find((f) => f[0] === QUERIES && f[1] === 'BACKEND');
    if (!row || !backend) throw new ShardwiseError(ErrorCodes.SERVICE, 'haproxy did not report its queries backend');
    const get = (fields: string[], name: string) => Number(fields[header.indexOf(name)]);
    // Queries wait in the backend's queue (no server is theirs yet).
    // rtime: the mean time from a query sent to a front end to its answer's head, over the last 1,024.
    return { inflightLimit: get(row, 'slim'), queued: get(backend, 'qcur'), refused: get(backend, 'econ'), forwarded: get(row, 'stot'), meanResponseMs: get(row, 'rtime') || 0 };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.stdin!.end();
    });
  }
}
