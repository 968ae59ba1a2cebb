/**
 * Entry point of every service process the supervisor starts: reads its ServiceConfig,
 * starts the role, reports its ports over IPC, and drains and exits on 'stop', SIGTERM, or
 * when the supervisor goes away (so no process outlives its supervisor).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readManifest } from '../model/store.ts';
import { configOf } from '../model/manifest.ts';
import { FrameServer } from '../serving/frame-server.ts';
import { ServiceMetrics, startMetricsServer } from '../serving/metrics.ts';
import type { InferenceEngine } from '../serving/engine.ts';
import type { CoalescingOptions } from '../serving/coalescing-engine.ts';
import type { InferenceHttpServer } from '../serving/http-api.ts';
import type { PoolEvent } from '../serving/replica-pool.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { SERVICE_ENV, type ChildMessage, type FrontEndConfig, type ParentMessage, type ServiceConfig } from './service-config.ts';

interface Running {
  port: number;
  socketPath?: string;
  metricsPort: number;
  onReplicas?: (m: Extract<ParentMessage, { type: 'replicas' }>) => void;
  close(graceMs: number, leaving: boolean): Promise<void>;
}

type Main = Omit<Running, 'metricsPort'> & { unready: () => string | null };

/**
 * A service's main listener plus its own side port for /metrics and health; close() closes
 * both. The side port is the slot's port from before a restart, so a scraper finds the
 * replica where it was; if another process took it meanwhile, any free port (logged).
 */
async function withMetricsPort(metrics: ServiceMetrics, main: Main, port: number, log: Logger): Promise<Running> {
  let side;
  try {
    side = await startMetricsServer(metrics, main.unready, port);
  } catch (e) {
    if (port === 0) throw e;
    log.warn(`metrics port ${port} is taken (${(e as Error).message}); listening on another`);
    side = await startMetricsServer(metrics, main.unready, 0);
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

/** Internal frames on a Unix socket when the supervisor gives one (same machine), else on a TCP port. */
async function startFrameService(metrics: ServiceMetrics, handler: ConstructorParameters<typeof FrameServer>[1], cfg: { socketPath?: string; metricsPort: number }, log: Logger): Promise<Running> {
  const server = new FrameServer(metrics.service, handler, log.warn);
  let port = 0;
  if (cfg.socketPath) await server.listenPath(cfg.socketPath);
  else port = await server.listen(0);
  return withMetricsPort(metrics, { port, socketPath: cfg.socketPath, unready: () => null, close: () => server.close() }, cfg.metricsPort, log);
}

/**
 * The public API on the shared port, and this replica's own metrics port: with several
 * replicas behind one port, /metrics there answers for whichever took the connection.
 */
async function startFrontEnd(http: InferenceHttpServer, metrics: ServiceMetrics, cfg: FrontEndConfig & { metricsPort: number }, log: Logger): Promise<Running> {
  const port = await http.listen(cfg.port);
  return withMetricsPort(metrics, { port, unready: () => http.unready(), close: (graceMs, leaving) => http.close(graceMs, leaving) }, cfg.metricsPort, log);
}

/** Downstream pool events: a log line and a counter each (hedges only counted: they are routine). */
function poolEvents(metrics: ServiceMetrics, log: Logger): (e: PoolEvent) => void {
  return (e) => {
    const labels = { service: metrics.service, pool: e.service };
    if (e.type === 'hedged') return metrics.hedges.inc(labels);
    if (e.type === 'drained') return void send({ type: 'drained', service: e.service, address: e.replica });
    if (e.type === 'ejected') {
      metrics.ejections.inc(labels);
      log.warn(`ejected ${e.service} replica ${e.replica} for ${e.forMs} ms: ${e.reason}`);
    } else log.info(`${e.service} replica ${e.replica} answers again; back in rotation after ${e.afterMs} ms`);
  };
}

async function coalesced(engine: InferenceEngine, opts: CoalescingOptions | null): Promise<InferenceEngine> {
  if (!opts) return engine;
  const { CoalescingEngine } = await import('../serving/coalescing-engine.ts');
  return new CoalescingEngine(engine, opts);
}

async function start(cfg: ServiceConfig, log: Logger): Promise<Running> {
  const metrics = new ServiceMetrics(cfg.service);
  const manifest = readManifest(cfg.modelDir);
  const config = configOf(manifest);
  // Each role imports only what it runs: a shard never loads onnxruntime (~40 MiB of RSS per replica).
  switch (cfg.role) {
    case 'shard': {
      const { ShardService } = await import('../serving/shard-service.ts');
      return startFrameService(metrics, new ShardService(cfg.modelDir, manifest, config, cfg.plan, cfg.shard, metrics).handle, cfg, log);
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
      const engine = await coalesced(new MonolithicEngine(await ReferenceModel.create(loadModel(cfg.modelDir))), cfg.coalesce);
      return startFrontEnd(new InferenceHttpServer(engine, metrics, { limits: cfg.limits, admission: cfg.admission, log }), metrics, cfg, log);
    }
    case 'router': {
      const { DenseModel } = await import('../reference/dense-model.ts');
      const { ReplicaPool, DEFAULT_POOL_HEALTH } = await import('../serving/replica-pool.ts');
      const { DisaggregatedEngine } = await import('../serving/disaggregated-engine.ts');
      const { InferenceHttpServer } = await import('../serving/http-api.ts');
      const { loadDense } = await import('../model/store.ts');
      const { readHotnessOrder, readHotnessRanges } = await import('../serving/hotness.ts');
      const { PushedReplicaSource } = await import('../serving/replica-source.ts');
      // The supervisor's replica lists, by service name: the starting ones now, updates over IPC.
      const source = new PushedReplicaSource();
      cfg.plan.shards.forEach((s, i) => source.push(s.name, cfg.shards[i]));
      source.push('dense', cfg.dense);
      const onPoolEvent = poolEvents(metrics, log);
      const pool = (service: string) => {
        const p = new ReplicaPool(service, [], DEFAULT_POOL_HEALTH, onPoolEvent);
        source.watch(service, (addresses) => p.setAddresses(addresses));
        return p;
      };
      const shards = cfg.plan.shards.map((s) => pool(s.name));
      const dense = cfg.plan.dense.placement === 'service' ? pool('dense') : await DenseModel.create(config, loadDense(cfg.modelDir, manifest));
      const cacheRows = cfg.plan.router.cacheRows;
      const order = readHotnessOrder(cfg.plan, config);
      const cache = cacheRows > 0 ? readHotnessRanges(cfg.modelDir, manifest, order, config.tables.map((t, table) => ({ table, rowStart: 0, rowEnd: Math.min(cacheRows, t.rows) }))) : null;
      const engine = new DisaggregatedEngine({ config, plan: cfg.plan, order, shards, dense, cache, metrics, deadlineMs: cfg.deadlineMs });
      const http = new InferenceHttpServer(await coalesced(engine, cfg.coalesce), metrics, { limits: cfg.limits, admission: cfg.admission, log });
      return {
        ...(await startFrontEnd(http, metrics, cfg, log)),
        onReplicas: (m) => source.push(m.service, m.addresses),
      };
    }
  }
}

const send = (m: ChildMessage) => process.send?.(m);

/**
 * With the supervisor gone (SIGKILLed, crashed), nobody removes the socket folder: the last
 * internal service to leave it does (rmdir succeeds only on an empty folder).
 */
function removeSocketDirIfLast(socketPath: string | undefined): void {
  if (!socketPath) return;
  try {
    fs.rmSync(socketPath, { force: true });
    fs.rmdirSync(path.dirname(socketPath));
  } catch {
    // Another replica's socket is still there; it removes the folder when it leaves.
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env[SERVICE_ENV] ?? 'null') as ServiceConfig;
  const log = createLogger(`${cfg?.service ?? 'service'}/${cfg?.replica ?? 0}`);
  let running: Running;
  try {
    running = await start(cfg, log);
  } catch (e) {
    send({ type: 'failed', message: (e as Error).message });
    log.error(`failed to start: ${(e as Error).stack ?? e}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = async (graceMs: number, leaving = false, orphaned = false) => {
    if (stopping) return;
    stopping = true;
    await running.close(graceMs, leaving);
    if (orphaned) removeSocketDirIfLast(running.socketPath);
    process.exit(0);
  };
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stop') void stop(m.graceMs, m.leaving);
    else if (m.type === 'replicas') running.onReplicas?.(m);
  });
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => {}); // the supervisor owns Ctrl-C and stops children in order
  process.on('disconnect', () => void stop(0, false, true));
  send({ type: 'ready', port: running.port, socketPath: running.socketPath, metricsPort: running.metricsPort, rssBytes: process.memoryUsage.rss() });
}

await main();
