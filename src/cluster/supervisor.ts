import { fork, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Plan } from '../plan/types.ts';
import { readManifest, type RowLoading } from '../model/store.ts';
import { ensureOrderedTables, orderedTablesDir } from '../profile/ordered-tables.ts';
import { formatBytes } from '../util/format.ts';
import { type Address, addressKey } from '../serving/frame-client.ts';
import type { CoalescingOptions } from '../serving/coalescing-engine.ts';
import { type AdmissionOptions, DEFAULT_SLA_P99_MS, admissionForSla } from '../serving/admission.ts';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../serving/http-api.ts';
import { ErrorCodes, ShardwiseError, badRequest, notFound } from '../util/errors.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { cgroupCpuLimiter } from './cpu-limit.ts';
import { type BalancerOptions, HaproxyBalancer } from './balancer.ts';
import { type ConcurrencyLimitConfig, type ConcurrencyState, nextLimit } from './concurrency-limit.ts';
import { HistogramWindows, bucketsOf } from './histogram-quantile.ts';
import type { BalancerState } from './types.ts';
import { SERVICE_MALLOC_TUNABLES, serviceNodeFlags } from './runtime-flags.ts';
import { moduleEntry } from '../util/entry.ts';
import { SERVICE_ENV, type ChildMessage, type ParentMessage, type ServiceConfig } from './service-config.ts';

const SERVICE = moduleEntry('./service-process.ts', import.meta.url);
const READY_TIMEOUT_MS = 180_000;
/** How long a replica may take to drain and exit after its grace period before it is SIGKILLed. */
const STOP_TIMEOUT_MS = 15_000;
/**
 * Crash-loop backoff, as a kubelet does it: the first two deaths within the window restart at
 * once, then each waits twice as long, up to 30 s. A replica is never left down for good: a
 * public port that closes forever because of a burst of crashes is worse than a slow retry.
 */
const RESTART_WINDOW_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;
const backoffMs = (deathsInWindow: number) => (deathsInWindow <= 2 ? 0 : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (deathsInWindow - 3)));
/** Socket folders are named after the supervisor's pid, so a later start can tell a dead one's leftovers. */
const SOCKET_DIR_PREFIX = 'shardwise-';
const SOCKET_DIR_PATTERN = /^shardwise-(\d+)-/;
/** Writing the tables' ordered copies logs each table once it has taken this long. */
const ORDERED_PROGRESS_AFTER_MS = 2000;

/**
 * Starts a service process. Front ends (router, monolithic) are cluster workers so that
 * replicas of one front end listen on the same public port. Each replica accepts from the
 * shared socket itself (the kernel's balancing, SCHED_NONE): with cluster's round-robin the
 * primary accepts every connection and hands it over an IPC round trip that waits on the
 * replica's event loop, so under load a new connection (a health probe, a client's extra
 * socket) waited seconds behind the queries (README: bench:overload). The kernel hands a
 * connection to whichever replica is in accept first, so a busy replica takes fewer; the cost
 * is an uneven spread when the replicas are idle. Internal services are plain child processes.
 */
function forkService(cfg: ServiceConfig): ChildProcess {
  const execArgv = [...SERVICE.execArgv, ...serviceNodeFlags(cfg.role)];
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc'] as const;
  const env = { GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? SERVICE_MALLOC_TUNABLES, [SERVICE_ENV]: JSON.stringify(cfg) };
  if (cfg.role === 'router' || cfg.role === 'monolithic') {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: SERVICE.file, execArgv, stdio: [...stdio] });
    return cluster.fork(env).process;
  }
  return fork(SERVICE.file, [], { execArgv, env: { ...process.env, ...env }, stdio: [...stdio] });
}

export interface ReplicaInfo {
  service: string;
  role: ServiceConfig['role'];
  /** The replica's slot in its service, kept across restarts. */
  replica: number;
  pid: number;
  /** TCP port (the router's public port), or 0 for a service reached over its Unix socket. */
  port: number;
  socketPath?: string;
  metricsPort: number;
  rssBytes: number;
  /** Milliseconds from spawning the process to its ready message. */
  startMs: number;
  restarts: number;
  /** ready: in its routers' rotation; draining: out of it, finishing what it has, then stopped. */
  state: 'ready' | 'draining';
  /** The CPU limit enforced on it (cgroups), or null: unlimited (none asked, or cgroups not writable). */
  cpuLimit: number | null;
}

export type ServiceKind = 'router' | 'dense' | 'shard' | 'monolithic';

/** One service of the deployment, keyed by (model, name): a name is never a position. */
export interface ServiceState {
  model: string;
  name: string;
  kind: ServiceKind;
  /** The replica count asked for (by the plan, scale() or the autoscaler). */
  desired: number;
  minReplicas: number;
  maxReplicas: number;
  /** Processes spawned and not ready yet. */
  starting: number;
  replicas: ReplicaInfo[];
}

/** What the supervisor did, as data (the log lines are written from these). */
export type SupervisorEvent = { at: number; model: string; service: string } & (
  | { type: 'started'; replica: number; pid: number }
  | { type: 'ready'; replica: number; pid: number; startMs: number }
  | { type: 'draining'; replica: number; pid: number }
  | { type: 'exited'; replica: number; pid: number; code: number | null; signal: string | null; expected: boolean }
  | { type: 'scaled'; from: number; to: number }
);

type EventBody = SupervisorEvent extends infer E ? (E extends unknown ? Omit<E, 'at' | 'model'> : never) : never;

/** How long a front-end replica leaving a scale-in keeps answering (with Connection: close) after it stopped accepting. */
const LEAVE_GRACE_MS = 2000;

/** How long a scale-in waits for the routers to finish with a replica before stopping it anyway (logged). */
const DRAIN_TIMEOUT_MS = 10_000;

interface Replica {
  cfg: ServiceConfig;
  child: ChildProcess;
  info: ReplicaInfo;
  /** Stopped on purpose (scale-in, shutdown): its exit is not restarted. */
  stopping: boolean;
  /** When this slot's replicas died within the restart window (crash-loop backoff). */
  restartTimes: number[];
}

export interface SupervisorOptions {
  modelDir: string;
  /** null: serve the whole model in one process (model-wise). */
  plan: Plan | null;
  port: number;
  deadlineMs: number;
  /** Dynamic batching at the front end (router or monolithic server); null turns it off. */
  coalesce: CoalescingOptions | null;
  /** The front end's limits (default DEFAULT_HTTP_LIMITS). */
  limits?: HttpLimits;
  /** Admission control at the front end (default: for a 50 ms p99 SLA, or none behind a balancer, which bounds its queue); null queues without bound. */
  admission?: AdmissionOptions | null;
  /** A CPU limit per replica of a role (a pod's `resources.limits.cpu`), enforced with cgroups where they can be written. */
  replicaCpus?: Partial<Record<ServiceConfig['role'], number>>;
  /** The most replicas scale() gives one service (default 16); the least is 1. */
  maxReplicasPerService?: number;
  /** How replicas load embedding rows (default: mapped where the addon is built). */
  rows?: RowLoading;
  /** HAProxy on the public port in front of the front ends, refusing past their in-flight limit (default: none, the front ends listen there). */
  balancer?: BalancerOptions | null;
  log?: Logger;
}

const processAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Removes socket folders left by supervisors that died without cleaning up (SIGKILL, OOM, power loss). */
function removeStaleSocketDirs(log: Logger): void {
  const tmp = os.tmpdir();
  for (const name of fs.readdirSync(tmp)) {
    const m = SOCKET_DIR_PATTERN.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      fs.rmSync(path.join(tmp, name), { recursive: true, force: true });
      log.info(`removed ${path.join(tmp, name)}, left by supervisor pid ${m[1]} which is gone`);
    } catch {
      // Not ours to remove (permissions): leave it.
    }
  }
}

/** A free loopback port, so front-end replicas share a port of their own (cluster shares listeners by port). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

const address = (r: Replica): Address => (r.info.socketPath ? { path: r.info.socketPath } : { host: '127.0.0.1', port: r.info.port });

/**
 * Runs a plan on this machine: every replica is its own OS process. Starts shards and dense
 * replicas, then the router with their addresses; restarts a replica that dies (with
 * crash-loop backoff) on its slot's metrics port and tells the router its new address;
 * stop() drains the router first, then everything else.
 */
export class LocalSupervisor {
  private readonly groups = new Map<string, Replica[]>();
  private stopped = false;
  private readonly log: Logger;
  /** Unix sockets of the internal services (measured 1.5× loopback TCP: bench:transport). */
  private readonly socketDir: string;
  private sockets = 0;
  private readonly backoffTimers = new Set<NodeJS.Timeout>();
  private readonly cpuLimiter;
  /** Per service: how to configure a replica in a slot, its kind, the replicas asked for, and how many are starting. */
  private readonly services = new Map<string, { kind: ServiceKind; configFor: (slot: number) => ServiceConfig; desired: number; starting: number }>();
  private readonly listeners: ((e: SupervisorEvent) => void)[] = [];
  /** Scale-ins waiting for the routers to finish with a replica: address → routers (pids) yet to say so. */
  private readonly drainWaits = new Map<string, { routers: Set<number>; done: () => void }>();
  /** Per service, replicas out of rotation that are finishing their requests before they stop. */
  private readonly draining = new Map<string, Set<Replica>>();
  private readonly removeSocketDir = () => fs.rmSync(this.socketDir, { recursive: true, force: true });
  private haproxy: HaproxyBalancer | null = null;
  private modelName: string | undefined;
  private stopAdapting = () => {};
  /** The balancer's last in-flight limit update (scale() resolves after it). */
  private balancerUpdate: Promise<void> = Promise.resolve();
  /** The port clients connect to: the balancer's, or the front ends' own. */
  private publicPort = 0;

  constructor(private readonly opts: SupervisorOptions) {
    this.log = opts.log ?? createLogger('supervisor');
    this.cpuLimiter = cgroupCpuLimiter(this.log);
    removeStaleSocketDirs(this.log);
    this.socketDir = fs.mkdtempSync(path.join(os.tmpdir(), `${SOCKET_DIR_PREFIX}${process.pid}-`));
    // Every exit path but SIGKILL runs this; after a SIGKILL the children remove the folder
    // as they leave, and the next supervisor's removeStaleSocketDirs catches what is left.
    process.once('exit', this.removeSocketDir);
  }

  /** Every replica, in start order. */
  replicas(): ReplicaInfo[] {
    return [...this.groups.values()].flat().map((r) => ({ ...r.info }));
  }

  /** The model's name (what its URL serves): the plan's, else the model directory's manifest's. */
  get model(): string {
    return (this.modelName ??= this.opts.plan?.model.name ?? readManifest(this.opts.modelDir).name);
  }

  /** Every service with its replicas, for the admin API and `shardwise status`. */
  state(): ServiceState[] {
    const max = this.opts.maxReplicasPerService ?? 16;
    return [...this.services].map(([name, s]) => ({
      model: this.model,
      name,
      kind: s.kind,
      desired: s.desired,
      minReplicas: 1,
      maxReplicas: max,
      starting: s.starting,
      replicas: [...(this.groups.get(name) ?? []), ...this.drainingReplicas(name)].map((r) => ({ ...r.info })),
    }));
  }

  /** Subscribes to the supervisor's events (replica started, ready, draining, exited; service scaled). */
  on(listener: (e: SupervisorEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(e: EventBody): void {
    const event = { at: Date.now(), model: this.model, ...e } as SupervisorEvent;
    for (const l of this.listeners) l(event);
  }

  private drainingReplicas(service: string): Replica[] {
    return [...(this.draining.get(service) ?? [])];
  }

  get routerPort(): number {
    return this.publicPort;
  }

  /** The front-end service: the router, or the whole model. */
  private get frontEnd(): string {
    return this.opts.plan ? 'router' : 'model';
  }

  /** The balancer in front of the front ends, if the deployment has one. */
  get balancerProcess(): HaproxyBalancer | null {
    return this.haproxy;
  }

  /**
   * Every period, the balancer's in-flight limit per front-end replica moves with the front ends'
   * p95 over the period (their `total` histograms, scraped) and the balancer's queue (nextLimit);
   * each change is logged.
   */
  private adaptLimit(haproxy: HaproxyBalancer, cfg: ConcurrencyLimitConfig): void {
    const windows = new HistogramWindows();
    const observe = async () => {
      let p95 = 0;
      let answered = 0;
      for (const r of this.groups.get(this.frontEnd) ?? []) {
        const text = await fetch(`http://127.0.0.1:${r.info.metricsPort}/metrics`).then((res) => res.text(), () => '');
        const buckets = bucketsOf(text, 'shardwise_request_duration_seconds', 'total');
        const w = buckets && windows.next(r.info.pid, buckets);
        if (!w) continue;
        answered += w.count;
        p95 = Math.max(p95, 1000 * w.p95);
      }
      const { queued, meanResponseMs } = await haproxy.stats();
      return { at: Date.now(), p95Ms: p95, answered, queued, balancerMeanMs: meanResponseMs };
    };
    let state: ConcurrencyState = { limit: haproxy.inflightPerReplica };
    const timer = setInterval(() => {
      this.balancerUpdate = this.balancerUpdate
        .then(async () => {
          const limit = haproxy.inflightPerReplica;
          const next = nextLimit(await observe(), { ...state, limit }, cfg);
          state = next.state;
          if (next.state.limit === limit) return;
          this.log.info(`balancer: in-flight limit ${limit} → ${next.state.limit} per front-end replica (${next.reason})`);
          await haproxy.setLimit({ inflightPerReplica: next.state.limit });
        })
        .catch((e) => this.log.warn(`balancer: could not adapt its in-flight limit: ${(e as Error).message}`));
    }, cfg.periodMs);
    timer.unref();
    this.stopAdapting = () => clearInterval(timer);
  }

  balancerMetricsPort(): number | null {
    return this.haproxy?.metricsPort ?? null;
  }

  /** The balancer's counters (admin API, `status`), or null without one. */
  async balancer(): Promise<BalancerState | null> {
    if (!this.haproxy) return null;
    const { inflightLimit, queued, refused, forwarded } = await this.haproxy.stats();
    return { kind: 'haproxy', inflightLimit, queued, refused, forwarded, metricsPort: this.balancerMetricsPort() };
  }

  /** Why the deployment cannot serve every query now (a service with no live replica), or null. */
  unready(): string | null {
    for (const [service, group] of this.groups) if (group.length === 0) return `service ${service} has no running replica`;
    return null;
  }

  /**
   * Makes sure the tables have hotness-ordered copies for the plan's profile (writing them once,
   * with progress), so every shard replica, now or scaled out later, maps its ranges instead of
   * streaming whole tables; the plan the replicas get records the profile's checksum, so none
   * hashes it again. Where the model folder cannot be written, replicas stream (warned).
   */
  private withOrderedTables(plan: Plan): Plan {
    if (!plan.hotness) return plan;
    const manifest = readManifest(this.opts.modelDir);
    const t0 = performance.now();
    try {
      // Progress per table only once the write is slow enough to wonder about (a 20M-row table takes tens of seconds).
      const { checksum, written } = ensureOrderedTables(this.opts.modelDir, manifest, plan.hotness, (t, bytes) => {
        if (performance.now() - t0 > ORDERED_PROGRESS_AFTER_MS) this.log.info(`hotness-ordered copy of table ${t + 1}/${manifest.tables.length} written (${formatBytes(bytes)}, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      });
      if (written) this.log.info(`hotness-ordered copies of the tables written in ${((performance.now() - t0) / 1000).toFixed(1)} s under ${orderedTablesDir(this.opts.modelDir, checksum)}`);
      return { ...plan, hotness: { ...plan.hotness, checksum } };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM' && code !== 'ENOSPC') throw e;
      this.log.warn(`cannot write hotness-ordered copies of the tables under ${this.opts.modelDir} (${code}): every shard replica will stream its tables at start`);
      return plan;
    }
  }

  async start(): Promise<void> {
    const { modelDir, deadlineMs, coalesce, limits = DEFAULT_HTTP_LIMITS, rows } = this.opts;
    const plan = this.opts.plan && this.withOrderedTables(this.opts.plan);
    const admission = this.opts.admission !== undefined ? this.opts.admission : this.opts.balancer ? null : admissionForSla(DEFAULT_SLA_P99_MS, coalesce?.maxDelayMs);
    try {
      // Ports found free are taken only when the front ends bind them: found just before those start, not before the shards' seconds of start-up, so little else on the machine can take them meanwhile.
      const frontEndPort = async () => {
        this.publicPort = this.opts.port || (await freePort());
        // With a balancer the front ends share a loopback port of their own behind it.
        return this.opts.balancer ? await freePort() : this.publicPort;
      };
      let port = 0;
      if (!plan) {
        port = await frontEndPort();
        await this.startGroup('model', 1, (replica) => ({ role: 'monolithic', service: 'model', replica, modelDir, rows, metricsPort: 0, port, coalesce, limits, admission }));
      } else {
        const starts: Promise<unknown>[] = plan.shards.map((s, shard) =>
          this.startGroup(s.name, s.replicas, (replica) => ({ role: 'shard', service: s.name, replica, modelDir, rows, metricsPort: 0, plan, shard })),
        );
        if (plan.dense.placement === 'service') {
          starts.push(this.startGroup('dense', plan.dense.replicas, (replica) => ({ role: 'dense', service: 'dense', replica, modelDir, metricsPort: 0 })));
        }
        await Promise.all(starts);
        const addresses = this.internalAddresses(plan);
        port = await frontEndPort();
        await this.startGroup('router', plan.router.replicas, (replica) => ({ role: 'router', service: 'router', replica, modelDir, rows, metricsPort: 0, plan, ...addresses, deadlineMs, port, coalesce, limits, admission }));
      }
      if (this.opts.balancer) {
        const layout = { ...this.opts.balancer, host: '127.0.0.1', port: this.publicPort, frontEndPort: port, replicas: this.groups.get(this.frontEnd)!.length, dir: this.socketDir, metricsPort: await freePort() };
        this.haproxy = await HaproxyBalancer.start(layout, this.log);
        if (this.opts.balancer.adaptive) this.adaptLimit(this.haproxy, this.opts.balancer.adaptive);
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Where every shard's and the dense service's replicas are now. */
  private internalAddresses(plan: Plan): { shards: Address[][]; dense: Address[] } {
    return { shards: plan.shards.map((s) => this.groups.get(s.name)!.map(address)), dense: (this.groups.get('dense') ?? []).map(address) };
  }

  private async startGroup(service: string, replicas: number, cfgOf: (replica: number) => ServiceConfig): Promise<void> {
    const group: Replica[] = [];
    this.groups.set(service, group);
    const kind = cfgOf(0).role;
    // A router starts with the internal services' current addresses, not those of the first start.
    const configFor = (slot: number): ServiceConfig => {
      const cfg = cfgOf(slot);
      return cfg.role === 'router' ? { ...cfg, ...this.internalAddresses(cfg.plan) } : cfg;
    };
    this.services.set(service, { kind, configFor, desired: replicas, starting: 0 });
    await Promise.all(Array.from({ length: replicas }, async (_, i) => (group[i] = await this.spawn(configFor(i), 0))));
  }

  private spawn(cfg: ServiceConfig, restarts: number): Promise<Replica> {
    if (cfg.role === 'shard' || cfg.role === 'dense') cfg = { ...cfg, socketPath: path.join(this.socketDir, `${++this.sockets}.sock`) };
    const who = `${cfg.service} replica ${cfg.replica}`;
    const svc = this.services.get(cfg.service);
    if (svc) svc.starting++;
    const started = () => svc && svc.starting--;
    return new Promise<Replica>((resolve, reject) => {
      const spawnedAt = performance.now();
      const child = forkService(cfg);
      this.emit({ type: 'started', service: cfg.service, replica: cfg.replica, pid: child.pid ?? 0 });
      const cpus = this.opts.replicaCpus?.[cfg.role];
      let cpuLimit: number | null = null;
      if (cpus !== undefined && child.pid !== undefined) {
        const group = `${cfg.service}-${cfg.replica}-${child.pid}`;
        if (this.cpuLimiter.limit(child.pid, group, cpus)) {
          cpuLimit = cpus;
          child.once('exit', () => this.cpuLimiter.release(group));
        }
      }
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new ShardwiseError(ErrorCodes.SERVICE, `${who} did not become ready within ${READY_TIMEOUT_MS / 1000} s`));
      }, READY_TIMEOUT_MS);
      const onExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(new ShardwiseError(ErrorCodes.SERVICE, `${who} exited during start (${signal ?? `code ${code}`})${failure ? `: ${failure}` : ''}`, failureHint ?? 'its error is printed above'));
      };
      let failure = '';
      let failureHint: string | undefined;
      child.once('exit', onExit);
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'drained') return this.routerDrained(child.pid!, m.address);
        if (m.type === 'failed') return void ((failure = m.message), (failureHint = m.hint)); // the exit that follows rejects, after the child printed why
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        child.off('exit', onExit);
        const r: Replica = {
          cfg: { ...cfg, metricsPort: m.metricsPort },
          child,
          stopping: false,
          restartTimes: [],
          info: { service: cfg.service, role: cfg.role, replica: cfg.replica, pid: child.pid!, port: m.port, socketPath: m.socketPath, metricsPort: m.metricsPort, rssBytes: m.rssBytes, startMs: performance.now() - spawnedAt, restarts, state: 'ready', cpuLimit },
        };
        child.once('exit', (code, signal) => {
          this.emit({ type: 'exited', service: r.info.service, replica: r.info.replica, pid: r.info.pid, code, signal, expected: r.stopping || this.stopped });
          void this.onUnexpectedExit(r, code, signal);
        });
        this.emit({ type: 'ready', service: cfg.service, replica: cfg.replica, pid: r.info.pid, startMs: r.info.startMs });
        resolve(r);
      });
    }).finally(started);
  }

  private async onUnexpectedExit(r: Replica, code: number | null, signal: string | null): Promise<void> {
    if (r.stopping || this.stopped) return;
    this.log.warn(`${r.info.service} replica ${r.info.replica} (pid ${r.info.pid}) exited (${signal ?? `code ${code}`}); restarting`);
    // Take the dead replica out of the router's choice at once, then add the new one.
    const group = this.groups.get(r.info.service)!;
    group.splice(group.indexOf(r), 1);
    this.publish(r.info.service);
    let deaths = r.restartTimes;
    for (let attempt = r.info.restarts + 1; !this.stopped; attempt++) {
      const now = Date.now();
      deaths = [...deaths.filter((t) => now - t < RESTART_WINDOW_MS), now];
      const wait = backoffMs(deaths.length);
      if (wait > 0) {
        this.log.warn(`crash loop: ${r.info.service} replica ${r.info.replica} died ${deaths.length} times within ${RESTART_WINDOW_MS / 1000} s; next start in ${wait / 1000} s`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => (this.backoffTimers.delete(t), resolve()), wait);
          this.backoffTimers.add(t);
        });
        if (this.stopped) return;
      }
      try {
        // The slot's config as a new replica would get it (a router: today's addresses), on the slot's metrics port.
        const cfg = { ...this.services.get(r.info.service)!.configFor(r.info.replica), metricsPort: r.cfg.metricsPort };
        const fresh = await this.spawn(cfg, attempt);
        fresh.restartTimes = deaths;
        if (this.stopped) return void fresh.child.kill('SIGTERM');
        group.splice(Math.min(r.info.replica, group.length), 0, fresh);
        this.publish(r.info.service);
        this.log.info(`${r.info.service} replica ${r.info.replica} is back as pid ${fresh.info.pid} (metrics port ${fresh.info.metricsPort})`);
        return;
      } catch (e) {
        this.log.error(`${r.info.service} replica ${r.info.replica} could not be restarted: ${(e as Error).message}`);
      }
    }
  }

  /**
   * Sets a service's replica count. Up: new replicas in free slots, each announced to the
   * routers when ready. Down: the highest slots drain: they leave the routers' rotation at once,
   * and stop only when every router has answered what it sent them (or after DRAIN_TIMEOUT_MS,
   * logged), so a scale-in fails and retries no query. Resolves when the count is reached.
   */
  async scale(service: string, replicas: number): Promise<{ from: number; to: number }> {
    const svc = this.services.get(service);
    const group = this.groups.get(service);
    if (!svc || !group) throw notFound(`no service '${service}'`, `services: ${[...this.services.keys()].join(', ')}`);
    const max = this.opts.maxReplicasPerService ?? 16;
    if (!Number.isInteger(replicas)) throw badRequest(`replicas must be an integer, got ${JSON.stringify(replicas)}`);
    if (replicas < 1 || replicas > max) throw badRequest(`replicas ${replicas} is outside [1, ${max}] (min 1, max ${max}) for service ${service}`);
    if (this.stopped) throw new ShardwiseError(ErrorCodes.SERVICE, 'the deployment is stopping');
    const from = group.length + svc.starting;
    svc.desired = replicas;
    this.emit({ type: 'scaled', service, from, to: replicas });
    this.log.info(`scaling ${service} from ${from} to ${replicas} replicas`);
    if (replicas > from) {
      const used = new Set(group.map((r) => r.info.replica));
      const slots: number[] = [];
      for (let slot = 0; slots.length < replicas - from; slot++) if (!used.has(slot)) slots.push(slot);
      await Promise.all(
        slots.map(async (slot) => {
          const r = await this.spawn(svc.configFor(slot), 0);
          if (this.stopped) return void r.child.kill('SIGTERM');
          this.log.info(`${service} replica ${slot} ready in ${r.info.startMs.toFixed(0)} ms (pid ${r.info.pid})`);
          group.push(r);
          group.sort((a, b) => a.info.replica - b.info.replica);
          this.publish(service);
        }),
      );
    } else if (replicas < group.length) {
      const leaving = [...group].sort((a, b) => b.info.replica - a.info.replica).slice(0, group.length - replicas);
      await Promise.all(leaving.map((r) => this.drainAndStop(r)));
    }
    await this.balancerUpdate;
    return { from, to: replicas };
  }

  /** Takes one replica out of rotation, waits until the routers are done with it, then stops it. */
  private async drainAndStop(r: Replica): Promise<void> {
    const { service } = r.info;
    const group = this.groups.get(service)!;
    group.splice(group.indexOf(r), 1);
    r.stopping = true;
    r.info.state = 'draining';
    const draining = this.draining.get(service) ?? new Set<Replica>();
    draining.add(r);
    this.draining.set(service, draining);
    this.emit({ type: 'draining', service, replica: r.info.replica, pid: r.info.pid });
    const routers = (this.groups.get('router') ?? []).filter((x) => x.child.connected);
    if (r.cfg.role !== 'router' && r.cfg.role !== 'monolithic' && routers.length > 0) {
      const key = addressKey(address(r));
      const done = new Promise<void>((resolve) => this.drainWaits.set(key, { routers: new Set(routers.map((x) => x.info.pid)), done: resolve }));
      this.publish(service);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), DRAIN_TIMEOUT_MS)))]);
      clearTimeout(timer);
      this.drainWaits.delete(key);
      if (timedOut) this.log.warn(`${service} replica ${r.info.replica}: the routers did not finish with it within ${DRAIN_TIMEOUT_MS / 1000} s; stopping it anyway`);
    }
    // A front end leaving a shared port: its clients get LEAVE_GRACE_MS to move their connections.
    const front = r.cfg.role === 'router' || r.cfg.role === 'monolithic';
    if (front) this.publish(service);
    await this.stopReplica(r, front ? LEAVE_GRACE_MS : 0, front);
    draining.delete(r);
  }

  /** A router says it has answered everything it sent to a replica it was told to drop. */
  private routerDrained(routerPid: number, key: string): void {
    const wait = this.drainWaits.get(key);
    if (!wait) return; // a dead replica's address leaving the set, not a scale-in
    wait.routers.delete(routerPid);
    if (wait.routers.size === 0) wait.done();
  }

  /** Sends a service's current replica addresses to every router replica; for the front end, its replica count to the balancer. */
  private publish(service: string): void {
    if (service === this.frontEnd) {
      const replicas = this.groups.get(service)!.length;
      const balancer = this.haproxy;
      if (balancer) this.balancerUpdate = this.balancerUpdate.then(() => balancer.setLimit({ replicas })).catch((e) => this.log.warn(`balancer: could not update its in-flight limit: ${(e as Error).message}`));
      return;
    }
    if (!this.opts.plan) return;
    const msg: ParentMessage = { type: 'replicas', service, addresses: this.groups.get(service)!.map(address) };
    for (const router of this.groups.get('router') ?? []) if (router.child.connected) router.child.send(msg);
  }

  private stopReplica(r: Replica, graceMs: number, leaving = false): Promise<void> {
    r.stopping = true;
    if (r.child.exitCode !== null || r.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => {
        this.log.warn(`${r.info.service} replica ${r.info.replica} (pid ${r.info.pid}) did not exit within ${(graceMs + STOP_TIMEOUT_MS) / 1000} s; killing it`);
        r.child.kill('SIGKILL');
      }, graceMs + STOP_TIMEOUT_MS);
      r.child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (r.child.connected) r.child.send({ type: 'stop', graceMs, leaving } satisfies ParentMessage);
      else r.child.kill('SIGTERM');
    });
  }

  /**
   * Drains and stops everything: the front ends first (not ready at once, still serving for
   * `graceMs` while load balancers notice, then in-flight queries finish), then the rest.
   */
  async stop(graceMs = 0): Promise<void> {
    this.stopped = true;
    for (const t of this.backoffTimers) clearTimeout(t);
    this.backoffTimers.clear();
    for (const front of ['router', 'model']) await Promise.all((this.groups.get(front) ?? []).map((r) => this.stopReplica(r, graceMs)));
    this.stopAdapting();
    await this.balancerUpdate;
    await this.haproxy?.stop();
    await Promise.all([...this.groups.values(), ...[...this.draining.values()].map((d) => [...d])].flat().map((r) => this.stopReplica(r, 0)));
    this.removeSocketDir();
    process.off('exit', this.removeSocketDir);
    this.cpuLimiter.close();
  }
}
