import type { Command } from 'commander';
import { readManifest, type RowLoading } from '../../model/store.ts';
import { configOf } from '../../model/manifest.ts';
import { readPlan } from '../../plan/validate.ts';
import type { Plan } from '../../plan/types.ts';
import type { ModelConfig } from '../../model/types.ts';
import * as fs from 'node:fs';
import { LocalSupervisor, type ReplicaInfo } from '../../cluster/supervisor.ts';
import { AdminServer, adminTokenFile, newAdminToken, removeStaleTokenFiles, writeTokenFile } from '../../cluster/admin-api.ts';
import { createLogger } from '../../util/log.ts';
import { AutoscaleLoop } from '../../cluster/autoscale-loop.ts';
import { LATENCY_TARGET_SHARE, scalingConfig, scalingMetric, type ScalingSettings } from '../../cluster/scaling-config.ts';
import { readCostModel, type CostModel } from '../../planner/cost-model.ts';
import { planningInputOf, replicaCapacities, roleCpus } from '../../planner/capacity.ts';
import { DEFAULT_COALESCING } from '../../serving/coalescing-engine.ts';
import { DEFAULT_SLA_P99_MS, admissionForSla } from '../../serving/admission.ts';
import { DEFAULT_HTTP_LIMITS } from '../../serving/http-api.ts';
import { ErrorCodes, ShardwiseError, badArgument } from '../../util/errors.ts';
import { formatBytes, renderTable } from '../../util/format.ts';
import { nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber, progress, rowsOption, scalingOptions, tcpPort } from '../options.ts';
import { type BalancerOptions, DEFAULT_BALANCER_INFLIGHT, balancedScaling, balancerForSla } from '../../cluster/balancer.ts';

export function renderReplicas(replicas: ReplicaInfo[]): string {
  return renderTable(
    ['service', 'role', 'replica', 'pid', 'listens on', 'metrics port', 'rss at start', 'ready in'],
    replicas.map((r) => [r.service, r.role, r.replica, r.pid, r.socketPath ?? `:${r.port}`, r.metricsPort === r.port ? 'same' : r.metricsPort, formatBytes(r.rssBytes), `${r.startMs.toFixed(0)} ms`]),
  );
}

interface ServeOptions extends ScalingSettings {
  model: string;
  plan?: string;
  monolithic?: boolean;
  port: number;
  deadlineMs: number;
  coalesce: number;
  maxBatch: number;
  maxQueueDelayMs: number;
  slaP99Ms: number;
  maxQueueMs?: number;
  maxInflight?: number;
  admission: boolean;
  drainGraceMs: number;
  bodyTimeoutMs: number;
  replicaCpus?: number;
  adminPort?: number;
  adminTokenFile?: string;
  autoscale?: boolean;
  rows: RowLoading;
  cost?: string;
  balancer: 'none' | 'haproxy';
  balancerInflight: number;
  balancerQueueMs?: number;
  balancerAdaptive: boolean;
  balancerTargetMs?: number;
}

/**
 * One HPA loop per service, each on its kind's metric, the windows from the flags, the
 * targets from the flags or, with --cost, a share of each replica's calibrated capacity.
 */
function autoscaleLoop(supervisor: LocalSupervisor, plan: Plan | null, config: ModelConfig, cost: CostModel | null, flags: ServeOptions, balancer: BalancerOptions | null): AutoscaleLoop {
  // The latency target follows this deployment's SLA.
  let opts = { ...flags, frontEndTargetP95Ms: flags.frontEndTargetP95Ms ?? LATENCY_TARGET_SHARE * flags.slaP99Ms };
  const balanced = balancedScaling(opts, balancer);
  if (balanced !== opts) progress(`autoscale: the front end's in-flight target ${opts.frontEndTargetInflight} is not below the balancer's ${balancer!.inflightPerReplica} per replica; holding ${balanced.frontEndTargetInflight} instead`);
  opts = balanced;
  if (cost && plan && !plan.workload) progress('warning: the plan records no workload: shard targets from the cost model assume 1 sample per query (plan with `shardwise plan --batch B` to record it)');
  const capacities = cost && plan ? replicaCapacities(planningInputOf(plan, config, cost), plan, opts.replicaCpus) : null;
  const services = supervisor.state().map((s) => ({ service: s.name, source: scalingMetric(s.kind, opts), config: scalingConfig(s.kind, s.name, opts, capacities) }));
  progress(`autoscaling ${services.map((s) => `${s.service} (${s.config.metric} → ${s.config.target})`).join(', ')} every ${opts.syncPeriodS} s`);
  return new AutoscaleLoop(supervisor, services, createLogger('autoscaler'));
}

/** The admin API on loopback, its token in a 0600 file (removed at stop). */
async function startAdmin(supervisor: LocalSupervisor, port: number, tokenFile: string | undefined, autoscale: AutoscaleLoop | null) {
  const token = process.env.SHARDWISE_ADMIN_TOKEN || newAdminToken();
  const server = new AdminServer(supervisor, token, createLogger('admin'), () => autoscale?.decisions ?? new Map());
  const bound = await server.listen(port).catch(async (e: NodeJS.ErrnoException) => {
    await supervisor.stop();
    throw new ShardwiseError(ErrorCodes.SERVICE, `the admin API cannot listen on 127.0.0.1:${port} (${e.code ?? e.message})`, 'pick another with --admin-port (0: any free port)');
  });
  const file = tokenFile ?? adminTokenFile(bound);
  await removeStaleTokenFiles(createLogger('admin'));
  writeTokenFile(file, token);
  return {
    url: `http://127.0.0.1:${bound}`,
    tokenFile: file,
    close: async () => {
      await server.close();
      fs.rmSync(file, { force: true });
    },
  };
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('serve a model on this machine: every replica its own process; Ctrl-C drains and stops')
    .requiredOption('--model <dir>', 'model directory')
    .option('--plan <file>', 'plan JSON (from `shardwise plan`): disaggregated serving')
    .option('--monolithic', 'serve the whole model in one process (the model-wise baseline)')
    .option('--port <port>', 'public HTTP port (Open Inference Protocol v2)', tcpPort, 8080)
    .option('--deadline-ms <ms>', 'per-query deadline inside the router', positiveInt, 2000)
    .option('--coalesce <n>', 'dynamic batching: batches in service at once, later arrivals merge (0: off)', nonNegativeInt, DEFAULT_COALESCING.maxConcurrent)
    .option('--max-batch <samples>', 'largest merged batch', positiveInt, DEFAULT_COALESCING.maxSamples)
    .option('--max-queue-delay-ms <ms>', 'dynamic batching latency budget: a query may wait this long for others to merge with (0: send when a batch slot is free)', nonNegativeNumber, DEFAULT_COALESCING.maxDelayMs)
    .option('--sla-p99-ms <ms>', 'the p99 latency target admission control protects: queries that would wait past a quarter of it get 429', positiveNumber, DEFAULT_SLA_P99_MS)
    .option('--max-queue-ms <ms>', 'admission control: refuse while the oldest waiting query has waited this long (default: from --sla-p99-ms)', positiveNumber)
    .option('--max-inflight <n>', 'admission control: most queries admitted at once per front-end replica', positiveInt)
    .option('--no-admission', 'queue every query however late it will be (no 429s)')
    .option('--balancer <kind>', "what listens on the public port: 'none' (the front ends themselves) or 'haproxy', which gives each front-end replica --balancer-inflight queries at once and answers 429 to one that waited --balancer-queue-ms, in C, outside the front ends' CPU (refusing in Node costs the front end ~0.12 ms a query); needs haproxy installed", oneOf(['none', 'haproxy'] as const), 'none')
    .option('--balancer-inflight <n>', 'with --balancer haproxy: queries one front-end replica is given at once (to start with, unless --no-balancer-adaptive); the rest wait in the balancer', positiveInt, DEFAULT_BALANCER_INFLIGHT)
    .option('--no-balancer-adaptive', 'with --balancer haproxy: keep --balancer-inflight fixed instead of moving it every 500 ms with the slower of the front ends\' p95 and the balancer\'s mean response time (while queries wait and that is under 80% of --balancer-target-ms, up in proportion to the headroom, at most x1.5; over it, a quarter fewer)')
    .option('--balancer-target-ms <ms>', 'with the adaptive limit: the answer time (ms) it holds the front ends under (default: half of --sla-p99-ms)', positiveNumber)
    .option('--balancer-queue-ms <ms>', 'with --balancer haproxy: how long a query may wait in the balancer before it gets 429 (default: a quarter of --sla-p99-ms)', positiveNumber)
    .option('--drain-grace-ms <ms>', 'on SIGTERM: keep serving this long while not ready, so load balancers stop sending first (Ctrl-C skips it)', nonNegativeInt, 5000)
    .option('--admin-port <port>', 'admin API (GET /v1/state, POST /v1/services/{name}/scale) on loopback; default: the public port + 1, or any free port with --port 0', tcpPort)
    .option('--admin-token-file <file>', 'where the admin token is written (0600); SHARDWISE_ADMIN_TOKEN gives one instead of generating it')
    .option('--autoscale', 'scale every service on its own metric with HPA semantics: shards on lookups/s per replica, the dense service on requests/s, the router (or monolith) on in-flight queries or p95 latency (--front-end-metric)')
    .option('--cost <file>', 'cost model (`shardwise calibrate [--replica-cpus C]`): each role\'s replicas run under the CPUs it was measured at (unless --replica-cpus), and with --autoscale shard and dense targets are --target-utilization of a replica\'s calibrated capacity')
    .option('--replica-cpus <cpus>', 'CPU limit of every replica (a pod\'s limits.cpu), enforced with the cgroup cpu controller where it can be written', positiveNumber)
    .option('--body-timeout-ms <ms>', 'a request must arrive whole within this long (408 after)', positiveInt, DEFAULT_HTTP_LIMITS.bodyTimeoutMs);
  scalingOptions(rowsOption(cmd)).action(async (opts: ServeOptions) => {
    if (!!opts.plan === !!opts.monolithic) throw badArgument('give exactly one of --plan <file> or --monolithic');
    const config = configOf(readManifest(opts.model));
    const plan = opts.plan ? readPlan(opts.plan, config) : null;
    const cost = opts.cost ? readCostModel(opts.cost) : null;
    const coalesce = opts.coalesce > 0 ? { maxConcurrent: opts.coalesce, maxSamples: opts.maxBatch, maxDelayMs: opts.maxQueueDelayMs } : null;
    const sla = admissionForSla(opts.slaP99Ms, coalesce?.maxDelayMs);
    // Behind a balancer the front ends' queue is bounded already (--balancer-inflight each); their own admission would refuse twice.
    const admission = opts.admission && opts.balancer === 'none' ? { ...sla, maxInflight: opts.maxInflight ?? sla.maxInflight, maxQueueMs: opts.maxQueueMs ?? sla.maxQueueMs } : null;
    const limits = { ...DEFAULT_HTTP_LIMITS, bodyTimeoutMs: opts.bodyTimeoutMs };
    // CPU limits: one for every replica, else each role's from the cost model (as the pods' limits in `manifests`), else none.
    const cpus = opts.replicaCpus;
    const replicaCpus = cpus !== undefined ? { shard: cpus, dense: cpus, router: cpus, monolithic: cpus } : cost ? roleCpus(cost, plan) : undefined;
    const balancer = opts.balancer === 'haproxy' ? balancerForSla(opts.slaP99Ms, { inflightPerReplica: opts.balancerInflight, queueMs: opts.balancerQueueMs, adaptive: opts.balancerAdaptive, targetMs: opts.balancerTargetMs }) : null;
    const supervisor = new LocalSupervisor({ modelDir: opts.model, plan, port: opts.port, deadlineMs: opts.deadlineMs, coalesce, limits, admission, replicaCpus, maxReplicasPerService: opts.maxReplicas, rows: opts.rows, balancer });
    // Handlers first: until a listener exists a SIGTERM kills this process outright (no drain, its replicas orphaned, its
    // token file left), and one sent right after the ready lines below raced their installation (a test saw it). A signal
    // during start-up stops the deployment once it is up.
    let pending: { signal: string; graceMs: number } | undefined;
    let onSignal = (signal: string, graceMs: number) => void (pending ??= { signal, graceMs });
    process.once('SIGINT', () => onSignal('SIGINT', 0));
    process.once('SIGTERM', () => onSignal('SIGTERM', opts.drainGraceMs));
    progress(`starting ${plan ? `${plan.shards.length} shards (${plan.strategy})` : 'the monolithic model'}…`);
    await supervisor.start();
    const autoscale = opts.autoscale ? autoscaleLoop(supervisor, plan, config, cost, opts, balancer) : null;
    const admin = await startAdmin(supervisor, opts.adminPort ?? (opts.port === 0 || opts.port === 65535 ? 0 : opts.port + 1), opts.adminTokenFile, autoscale);
    autoscale?.start();
    console.log(renderReplicas(supervisor.replicas()));
    console.log(`\nserving model '${config.name}' at http://127.0.0.1:${supervisor.routerPort}/v2/models/${config.name}/infer  (metrics: each replica's metrics port above; Ctrl-C to stop)`);
    console.log(`admin API at ${admin.url} (token in ${admin.tokenFile}): shardwise status --admin ${admin.url}`);
    await new Promise<void>((resolve) => {
      onSignal = (signal, graceMs) => {
        progress(`${signal}: ${graceMs > 0 ? `not ready; serving ${graceMs} ms more while load balancers notice, then ` : ''}draining and stopping…`);
        autoscale?.stop();
        void supervisor.stop(graceMs).then(() => admin.close()).then(resolve);
      };
      if (pending) onSignal(pending.signal, pending.graceMs);
    });
    progress('stopped');
  });
}
