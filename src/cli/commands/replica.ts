import type { Command } from 'commander';
import { readManifest, type RowLoading } from '../../model/store.ts';
import { configOf } from '../../model/manifest.ts';
import { readPlan } from '../../plan/validate.ts';
import { badArgument } from '../../util/errors.ts';
import { createLogger, type Logger } from '../../util/log.ts';
import type { RouterHooks } from '../../cluster/replica-runtime.ts';
import type { ReplicaConfig } from '../../cluster/service-config.ts';
import type { Plan } from '../../plan/types.ts';
import { DEFAULT_SLA_P99_MS, admissionForSla } from '../../serving/admission.ts';
import { DEFAULT_COALESCING } from '../../serving/coalescing-engine.ts';
import { DEFAULT_HTTP_LIMITS } from '../../serving/http-api.ts';
import { ReplicaSourceByService, dnsResolver, parseHostPort, replicaSourceFromSpec } from '../../serving/dns-replica-source.ts';
import { nonNegativeInt, oneOf, positiveInt, positiveNumber, rowsOption } from '../options.ts';

/** `shardwise shard|dense|router`: one replica of one service of a plan, in the foreground (a pod's command). */
interface ReplicaOptions {
  model: string;
  plan: string;
  service?: string;
  listen: string;
  metricsListen: string;
  drainGraceMs: number;
}

interface RouterOptions extends ReplicaOptions {
  replicas: string[];
  discover?: string;
  dnsServer: string[];
  deadlineMs: number;
  slaP99Ms: number;
  coalesce: number;
  admission: boolean;
  pooling: 'shard' | 'router';
  rows: RowLoading;
}

const collect = (value: string, list: string[]) => [...list, value];

function common(cmd: Command, what: string, listenDefault: string): Command {
  return cmd
    .requiredOption('--model <dir>', 'model directory (on Kubernetes: the read-only model volume)')
    .requiredOption('--plan <file>', 'plan JSON (from `shardwise plan`; on Kubernetes: the ConfigMap)')
    .option('--listen <host:port>', `where ${what} listens; beyond loopback only when asked (0.0.0.0:PORT in a pod)`, listenDefault)
    .option('--metrics-listen <host:port>', '/metrics and health (/v2/health/live, /v2/health/ready) of this replica', '127.0.0.1:9090')
    .option('--drain-grace-ms <ms>', 'on SIGTERM: stay up (not ready) this long so load balancers and routers stop sending, then drain in-flight requests and exit', nonNegativeInt, 5000);
}

type Address = { host: string; port: number };
/** What differs between the three commands: the replica's config from its two addresses, and for a router where its replicas are. */
type ReplicaOf = (listen: Address, metrics: Address, log: Logger) => { config: ReplicaConfig; router?: RouterHooks };

/** Loads the plan, starts one replica, then runs until SIGTERM (not ready, the grace, drain, exit 0) or SIGINT (at once). */
async function runReplica(service: string, opts: ReplicaOptions, replicaOf: (plan: Plan) => ReplicaOf): Promise<void> {
  const model = configOf(readManifest(opts.model));
  const of = replicaOf(readPlan(opts.plan, model));
  const log = createLogger(`${service}/${process.pid}`);
  const { config, router } = of(parseHostPort(opts.listen, '--listen', true), parseHostPort(opts.metricsListen, '--metrics-listen', true), log);
  const { startReplica } = await import('../../cluster/replica-runtime.ts');
  const running = await startReplica(config, log, router);
  log.info(`ready: ${running.socketPath ?? `port ${running.port}`}, metrics port ${running.metricsPort}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string, graceMs: number) => {
      log.info(`${signal}: ${graceMs > 0 ? `not ready; ${graceMs} ms grace, then ` : ''}draining and stopping`);
      void running.close(graceMs, false).then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM', opts.drainGraceMs));
    process.once('SIGINT', () => stop('SIGINT', 0));
  });
  log.info('stopped');
  process.exit(0);
}

export function registerReplicas(program: Command): void {
  rowsOption(common(program.command('shard').description("serve one replica of one embedding shard of a plan (a pod's command)"), 'the shard (internal frames, TCP)', '127.0.0.1:7000'))
    .requiredOption('--service <name>', 'the shard, by its name in the plan (shard-0 …)')
    .action((opts: ReplicaOptions & { service: string; rows: RowLoading }) =>
      runReplica(opts.service, opts, (plan) => {
        const shard = plan.shards.findIndex((s) => s.name === opts.service);
        if (shard < 0) throw badArgument(`the plan has no shard named ${JSON.stringify(opts.service)}`, `its shards: ${plan.shards.map((s) => s.name).join(', ')}`);
        return (listen, metrics) => ({ config: { role: 'shard', service: opts.service, replica: 0, modelDir: opts.model, rows: opts.rows, plan, shard, listen, metricsHost: metrics.host, metricsPort: metrics.port } });
      }),
    );

  common(program.command('dense').description("serve one replica of a plan's dense service (bottom MLP, interaction, top MLP)"), 'the dense service (internal frames, TCP)', '127.0.0.1:7000').action((opts: ReplicaOptions) =>
    runReplica('dense', opts, (plan) => {
      if (plan.dense.placement !== 'service') throw badArgument('this plan runs the dense half inside the router (dense.placement "router"): there is no dense service to start');
      return (listen, metrics) => ({ config: { role: 'dense', service: 'dense', replica: 0, modelDir: opts.model, listen, metricsHost: metrics.host, metricsPort: metrics.port } });
    }),
  );

  rowsOption(common(program.command('router').description('serve one replica of the router: the public OIP API, fanning out to shard (and dense) replicas it discovers'), 'the public HTTP API', '127.0.0.1:8080'))
    .option('--replicas <service=spec>', "where one service's replicas are: shard-0=static:10.0.0.5:7000,10.0.0.6:7000 or shard-0=dns:shard-0.ns.svc.cluster.local:7000 (repeat per service)", collect, [])
    .option('--discover <template>', 'the spec of every service not given by --replicas, {service} replaced by its name: e.g. dns:shardwise-{service}:7000')
    .option('--dns-server <host[:port]>', 'ask this DNS server (repeatable; default: the system resolver)', collect, [])
    .option('--deadline-ms <ms>', 'per-query deadline inside the router', positiveInt, 2000)
    .option('--sla-p99-ms <ms>', 'the p99 target admission control protects', positiveNumber, DEFAULT_SLA_P99_MS)
    .option('--coalesce <n>', 'dynamic batching: batches in service at once (0: off)', nonNegativeInt, DEFAULT_COALESCING.maxConcurrent)
    .option('--no-admission', 'queue every query however late (no 429s)')
    .option('--pooling <where>', 'where embedding rows are pooled: shard (partials on the wire) or router (raw rows on the wire; a baseline for bench:network)', oneOf(['shard', 'router'] as const), 'shard')
    .action((opts: RouterOptions) =>
      runReplica('router', opts, (plan) => {
        const services = [...plan.shards.map((s) => s.name), ...(plan.dense.placement === 'service' ? ['dense'] : [])];
        const specs = routerSpecs(opts, services);
        const coalesce = opts.coalesce > 0 ? { ...DEFAULT_COALESCING, maxConcurrent: opts.coalesce } : null;
        const admission = opts.admission ? admissionForSla(opts.slaP99Ms, coalesce?.maxDelayMs) : null;
        return (listen, metrics, log) => {
          const resolver = dnsResolver(opts.dnsServer);
          const source = new ReplicaSourceByService(new Map([...specs].map(([service, spec]) => [service, replicaSourceFromSpec(service, spec, { resolver, onError: log.warn })])));
          return {
            config: { role: 'router', service: 'router', replica: 0, modelDir: opts.model, rows: opts.rows, plan, deadlineMs: opts.deadlineMs, pooling: opts.pooling, port: listen.port, host: listen.host, coalesce, limits: DEFAULT_HTTP_LIMITS, admission, metricsHost: metrics.host, metricsPort: metrics.port },
            router: { source },
          };
        };
      }),
    );
}

/** Each downstream service's replica spec: its own --replicas, else the --discover template; every service needs one. */
function routerSpecs(opts: RouterOptions, services: string[]): Map<string, string> {
  const specs = new Map<string, string>();
  for (const r of opts.replicas) {
    const eq = r.indexOf('=');
    const service = r.slice(0, eq);
    if (eq < 1 || !services.includes(service)) throw badArgument(`--replicas ${JSON.stringify(r)}: ${eq < 1 ? 'give SERVICE=SPEC' : `the plan has no service ${JSON.stringify(service)}`}`, `its services: ${services.join(', ')}`);
    specs.set(service, r.slice(eq + 1));
  }
  for (const service of services) {
    if (specs.has(service)) continue;
    if (!opts.discover) throw badArgument(`no replicas given for ${service}`, 'give --replicas SERVICE=SPEC for each of ' + services.join(', ') + ', or --discover dns:shardwise-{service}:7000');
    specs.set(service, opts.discover.replaceAll('{service}', service));
  }
  return specs;
}
