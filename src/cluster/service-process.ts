/**
 * Entry point of every service process the supervisor starts: reads its ServiceConfig,
 * starts the role, reports its ports over IPC, and drains and exits on 'stop', SIGTERM, or
 * when the supervisor goes away (so no process outlives its supervisor).
 */
import { readManifest } from '../model/store.ts';
import { configOf } from '../model/manifest.ts';
import { FrameServer } from '../serving/frame-server.ts';
import { ServiceMetrics, startMetricsServer } from '../serving/metrics.ts';
import type { InferenceEngine } from '../serving/engine.ts';
import type { CoalescingOptions } from '../serving/coalescing-engine.ts';
import type { InferenceHttpServer } from '../serving/http-api.ts';
import { SERVICE_ENV, type ChildMessage, type ParentMessage, type ServiceConfig } from './service-config.ts';

interface Running {
  port: number;
  socketPath?: string;
  metricsPort: number;
  onReplicas?: (m: Extract<ParentMessage, { type: 'replicas' }>) => void;
  close(): Promise<void>;
}

/** A service's main listener plus its own side port for /metrics and health; close() closes both. */
async function withMetricsPort(metrics: ServiceMetrics, main: Omit<Running, 'metricsPort'>): Promise<Running> {
  const side = await startMetricsServer(metrics, () => true);
  return {
    ...main,
    metricsPort: side.port,
    close: async () => {
      await main.close();
      side.server.close();
    },
  };
}

/** Internal frames on a Unix socket when the supervisor gives one (same machine), else on a TCP port. */
async function startFrameService(metrics: ServiceMetrics, handler: ConstructorParameters<typeof FrameServer>[1], socketPath?: string): Promise<Running> {
  const server = new FrameServer(metrics.service, handler);
  let port = 0;
  if (socketPath) await server.listenPath(socketPath);
  else port = await server.listen(0);
  return withMetricsPort(metrics, { port, socketPath, close: () => server.close() });
}

/**
 * The public API on the shared port, and this replica's own metrics port: with several
 * replicas behind one port, /metrics there answers for whichever took the connection.
 */
async function startFrontEnd(http: InferenceHttpServer, metrics: ServiceMetrics, port: number): Promise<Running> {
  return withMetricsPort(metrics, { port: await http.listen(port), close: () => http.close() });
}

async function coalesced(engine: InferenceEngine, opts: CoalescingOptions | null): Promise<InferenceEngine> {
  if (!opts) return engine;
  const { CoalescingEngine } = await import('../serving/coalescing-engine.ts');
  return new CoalescingEngine(engine, opts);
}

async function start(cfg: ServiceConfig): Promise<Running> {
  const metrics = new ServiceMetrics(cfg.service);
  const manifest = readManifest(cfg.modelDir);
  const config = configOf(manifest);
  // Each role imports only what it runs: a shard never loads onnxruntime (~40 MiB of RSS per replica).
  switch (cfg.role) {
    case 'shard': {
      const { ShardService } = await import('../serving/shard-service.ts');
      return startFrameService(metrics, new ShardService(cfg.modelDir, manifest, config, cfg.plan, cfg.shard, metrics).handle, cfg.socketPath);
    }
    case 'dense': {
      const { DenseModel } = await import('../reference/dense-model.ts');
      const { DenseService } = await import('../serving/dense-service.ts');
      const { loadDense } = await import('../model/store.ts');
      const dense = await DenseModel.create(config, loadDense(cfg.modelDir, manifest));
      const running = await startFrameService(metrics, new DenseService(config, dense, metrics).handle, cfg.socketPath);
      return { ...running, close: async () => (await running.close(), await dense.close()) };
    }
    case 'monolithic': {
      const { ReferenceModel } = await import('../reference/reference-model.ts');
      const { MonolithicEngine } = await import('../serving/engine.ts');
      const { InferenceHttpServer } = await import('../serving/http-api.ts');
      const { loadModel } = await import('../model/store.ts');
      const http = new InferenceHttpServer(await coalesced(new MonolithicEngine(await ReferenceModel.create(loadModel(cfg.modelDir))), cfg.coalesce), metrics);
      return startFrontEnd(http, metrics, cfg.port);
    }
    case 'router': {
      const { DenseModel } = await import('../reference/dense-model.ts');
      const { ReplicaPool } = await import('../serving/frame-client.ts');
      const { DisaggregatedEngine } = await import('../serving/disaggregated-engine.ts');
      const { InferenceHttpServer } = await import('../serving/http-api.ts');
      const { loadDense } = await import('../model/store.ts');
      const { readHotnessOrder, readHotnessRanges } = await import('../serving/hotness.ts');
      const shards = cfg.shards.map((addrs, i) => new ReplicaPool(cfg.plan.shards[i].name, addrs));
      const denseRemote = cfg.plan.dense.placement === 'service';
      const dense = denseRemote ? new ReplicaPool('dense', cfg.dense) : await DenseModel.create(config, loadDense(cfg.modelDir, manifest));
      const cacheRows = cfg.plan.router.cacheRows;
      const order = readHotnessOrder(cfg.plan, config);
      const cache = cacheRows > 0 ? readHotnessRanges(cfg.modelDir, manifest, order, config.tables.map((t, table) => ({ table, rowStart: 0, rowEnd: Math.min(cacheRows, t.rows) }))) : null;
      const engine = new DisaggregatedEngine({ config, plan: cfg.plan, order, shards, dense, cache, metrics, deadlineMs: cfg.deadlineMs });
      const http = new InferenceHttpServer(await coalesced(engine, cfg.coalesce), metrics);
      return {
        ...(await startFrontEnd(http, metrics, cfg.port)),
        onReplicas: (m) => (m.shard === 'dense' ? (dense as InstanceType<typeof ReplicaPool>).setAddresses(m.addresses) : shards[m.shard].setAddresses(m.addresses)),
      };
    }
  }
}

const send = (m: ChildMessage) => process.send?.(m);

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env[SERVICE_ENV] ?? 'null') as ServiceConfig;
  let running: Running;
  try {
    running = await start(cfg);
  } catch (e) {
    send({ type: 'failed', message: (e as Error).message });
    process.stderr.write(`${cfg?.service ?? 'service'}: failed to start: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await running.close();
    process.exit(0);
  };
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stop') void stop();
    else if (m.type === 'replicas') running.onReplicas?.(m);
  });
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => {}); // the supervisor owns Ctrl-C and stops children in order
  process.on('disconnect', () => void stop());
  send({ type: 'ready', port: running.port, socketPath: running.socketPath, metricsPort: running.metricsPort, rssBytes: process.memoryUsage.rss() });
}

await main();
