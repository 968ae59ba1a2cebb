/**
 * One replica of a service, in this process: what it loads, where it listens, its metrics
 * port. The supervisor's child processes (service-process.ts) and the pod entry points
 * (`shardwise shard|dense|router`) both start replicas through here; they differ only in
 * how they learn replicas downstream and how they are told to stop.
 */
import { DEFAULT_ROW_LOADING, readManifest, type RowLoading } from '../model/store.ts';
import type { RowSource } from '../serving/hotness.ts';
import { formatBytes } from '../util/format.ts';
import { configOf } from '../model/manifest.ts';
import { FrameServer } from '../serving/frame-server.ts';
import { ServiceMetrics, startMetricsServer } from '../serving/metrics.ts';
import type { InferenceEngine } from '../serving/engine.ts';
import type { CoalescingOptions } from '../serving/coalescing-engine.ts';
import type { InferenceHttpServer } from '../serving/http-api.ts';
import type { PoolEvent } from '../serving/replica-pool.ts';
import type { ReplicaSource } from '../serving/replica-source.ts';
import type { Logger } from '../util/log.ts';
import type { FrontEndConfig, ReplicaConfig } from './service-config.ts';

export interface Running {
  port: number;
  socketPath?: string;
  metricsPort: number;
  close(graceMs: number, leaving: boolean): Promise<void>;
}

type Main = Omit<Running, 'metricsPort'> & { unready: () => string | null };

/**
 * A service's main listener plus its own side port for /metrics and health; close() closes
 * both. The side port is the slot's port from before a restart, so a scraper finds the
 * replica where it was; if another process took it meanwhile, any free port (logged).
 */
async function withMetricsPort(metrics: ServiceMetrics, main: Main, cfg: { metricsPort: number; metricsHost?: string }, log: Logger): Promise<Running> {
  const host = cfg.metricsHost ?? '127.0.0.1';
  let side;
  try {
    side = await startMetricsServer(metrics, main.unready, cfg.metricsPort, host);
  } catch (e) {
    if (cfg.metricsPort === 0) throw e;
    log.warn(`metrics port ${cfg.metricsPort} is taken (${(e as Error).message}); listening on another`);
    side = await startMetricsServer(metrics, main.unready, 0, host);
  }
  return {
    ...main,
    metricsPort: side.port,
    close: async (graceMs, leaving) => {
      await main.close(graceMs, leaving);
      side.server.close();
    },
  };
}

/** Internal frames on a Unix socket when the supervisor gives one (same machine), else on TCP. */
async function startFrameService(
  metrics: ServiceMetrics,
  handler: ConstructorParameters<typeof FrameServer>[1],
  cfg: { socketPath?: string; listen?: { host: string; port: number }; metricsPort: number; metricsHost?: string },
  log: Logger,
): Promise<Running> {
  const server = new FrameServer(metrics.service, handler, log.warn);
  let port = 0;
  if (cfg.socketPath) await server.listenPath(cfg.socketPath);
  else port = await server.listen(cfg.listen?.port ?? 0, cfg.listen?.host ?? '127.0.0.1');
  return withMetricsPort(metrics, { port, socketPath: cfg.socketPath, unready: () => null, close: () => server.close() }, cfg, log);
}

/**
 * The public API on the shared port, and this replica's own metrics port: with several
 * replicas behind one port, /metrics there answers for whichever took the connection.
 */
async function startFrontEnd(http: InferenceHttpServer, metrics: ServiceMetrics, cfg: FrontEndConfig & { metricsPort: number; metricsHost?: string }, log: Logger): Promise<Running> {
  const port = await http.listen(cfg.port, cfg.host ?? '127.0.0.1');
  return withMetricsPort(metrics, { port, unready: () => http.unready(), close: (graceMs, leaving) => http.close(graceMs, leaving) }, cfg, log);
}

/**
 * Downstream pool events: a log line and a counter each (hedges only counted: they are
 * routine); an ejection also asks the replica source to look again (a pod may have gone).
 */
function poolEvents(metrics: ServiceMetrics, log: Logger, hooks: RouterHooks): (e: PoolEvent) => void {
  return (e) => {
    const labels = { service: metrics.service, pool: e.service };
    if (e.type === 'hedged') return metrics.hedges.inc(labels);
    if (e.type === 'drained') return hooks.onDrained?.(e.service, e.replica);
    if (e.type === 'ejected') {
      metrics.ejections.inc(labels);
      log.warn(`ejected ${e.service} replica ${e.replica} for ${e.forMs} ms: ${e.reason}`);
      hooks.source.refresh?.(e.service);
    } else log.info(`${e.service} replica ${e.replica} answers again; back in rotation after ${e.afterMs} ms`);
  };
}

const rowLoading = (cfg: ReplicaConfig): RowLoading => cfg.rows ?? DEFAULT_ROW_LOADING;

function logRows(log: Logger, bytes: number, source: RowSource, cfg: ReplicaConfig, t0: number): void {
  const how = rowLoading(cfg) === 'map' ? 'mapped' : 'read';
  log.info(`${formatBytes(bytes)} of rows ${how} from the ${source} in ${(performance.now() - t0).toFixed(0)} ms`);
  if (source === 'tables streamed through the permutation') log.warn('no hotness-ordered copy of the tables for this profile: `shardwise order --plan PLAN --model DIR` writes one (serve does at start), so replicas map their rows instead of streaming whole tables');
}

async function coalesced(engine: InferenceEngine, opts: CoalescingOptions | null): Promise<InferenceEngine> {
  if (!opts) return engine;
  const { CoalescingEngine } = await import('../serving/coalescing-engine.ts');
  return new CoalescingEngine(engine, opts);
}

/** What a router needs from whoever started it: where each service's replicas are, and who to tell when a dropped one has drained. */
export interface RouterHooks {
  source: ReplicaSource & { refresh?(service: string): void };
  onDrained?: (service: string, address: string) => void;
}

/** Starts one replica of its role in this process: its listener, its metrics port, and for a router the pools its source fills. */
export async function startReplica(cfg: ReplicaConfig, log: Logger, router?: RouterHooks): Promise<Running> {
  const metrics = new ServiceMetrics(cfg.service);
  const manifest = readManifest(cfg.modelDir);
  const config = configOf(manifest);
  // Each role imports only what it runs: a shard never loads onnxruntime (~40 MiB of RSS per replica).
  switch (cfg.role) {
    case 'shard': {
      const { ShardService } = await import('../serving/shard-service.ts');
      const t0 = performance.now();
      const shard = new ShardService(cfg.modelDir, manifest, config, cfg.plan, cfg.shard, rowLoading(cfg), metrics);
      logRows(log, shard.bytesHeld, shard.rowSource, cfg, t0);
      return startFrameService(metrics, shard.handle, cfg, log);
    }
    case 'dense': {
      const { DenseModel } = await import('../reference/dense-model.ts');
      const { DenseService } = await import('../serving/dense-service.ts');
      const { loadDense } = await import('../model/store.ts');
      const dense = await DenseModel.create(config, loadDense(cfg.modelDir, manifest));
      const running = await startFrameService(metrics, new DenseService(config, dense, metrics).handle, cfg, log);
      return { ...running, close: async (graceMs, leaving) => (await running.close(graceMs, leaving), await dense.close()) };
    }
    case 'monolithic': {
      const { ReferenceModel } = await import('../reference/reference-model.ts');
      const { MonolithicEngine } = await import('../serving/engine.ts');
      const { InferenceHttpServer } = await import('../serving/http-api.ts');
      const { loadModel } = await import('../model/store.ts');
      const engine = await coalesced(new MonolithicEngine(await ReferenceModel.create(loadModel(cfg.modelDir, rowLoading(cfg)))), cfg.coalesce);
      return startFrontEnd(new InferenceHttpServer(engine, metrics, { limits: cfg.limits, admission: cfg.admission, log }), metrics, cfg, log);
    }
    case 'router': {
      const { DenseModel } = await import('../reference/dense-model.ts');
      const { ReplicaPool, DEFAULT_POOL_HEALTH } = await import('../serving/replica-pool.ts');
      const { DisaggregatedEngine } = await import('../serving/disaggregated-engine.ts');
      const { InferenceHttpServer } = await import('../serving/http-api.ts');
      const { loadDense } = await import('../model/store.ts');
      const { readHotnessOrder, readRouterCache } = await import('../serving/hotness.ts');
      if (!router) throw new Error('a router needs a replica source');
      const onPoolEvent = poolEvents(metrics, log, router);
      const pool = (service: string) => {
        const p = new ReplicaPool(service, [], DEFAULT_POOL_HEALTH, onPoolEvent);
        router.source.watch(service, (addresses) => p.setAddresses(addresses));
        return p;
      };
      const shards = cfg.plan.shards.map((s) => pool(s.name));
      const dense = cfg.plan.dense.placement === 'service' ? pool('dense') : await DenseModel.create(config, loadDense(cfg.modelDir, manifest));
      const order = readHotnessOrder(cfg.plan, config);
      const t0 = performance.now();
      const cache = readRouterCache(cfg.modelDir, manifest, cfg.plan, config, rowLoading(cfg));
      if (cache) logRows(log, cache.tables.reduce((n, t) => n + t.data.byteLength, 0), cache.source, cfg, t0);
      const engine = new DisaggregatedEngine({ config, plan: cfg.plan, order, shards, dense, cache: cache?.tables ?? null, metrics, deadlineMs: cfg.deadlineMs, pooling: cfg.pooling });
      const http = new InferenceHttpServer(await coalesced(engine, cfg.coalesce), metrics, { limits: cfg.limits, admission: cfg.admission, log });
      return startFrontEnd(http, metrics, cfg, log);
    }
  }
}

