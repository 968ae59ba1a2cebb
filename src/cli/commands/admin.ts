import * as fs from 'node:fs';
import type { Command } from 'commander';
import { adminTokenFile } from '../../cluster/admin-api.ts';
import type { ServiceState } from '../../cluster/supervisor.ts';
import type { BalancerState } from '../../cluster/types.ts';
import { ErrorCodes, ShardwiseError, badArgument } from '../../util/errors.ts';
import { renderTable } from '../../util/format.ts';
import { httpUrl, positiveInt } from '../options.ts';

const DEFAULT_ADMIN = 'http://127.0.0.1:8081';

/** A call to a running deployment's admin API; its errors come back with the server's reason. */
async function call(admin: string, path: string, init: RequestInit = {}): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(new URL(path, admin), init);
  } catch (e) {
    throw new ShardwiseError(ErrorCodes.SERVICE, `no admin API at ${admin} (${(e as Error).cause ?? (e as Error).message})`, 'is `shardwise serve` running? it prints its admin URL; pass it with --admin');
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string; code?: string; hint?: string };
  if (!res.ok) throw new ShardwiseError((body.code as ShardwiseError['code']) ?? ErrorCodes.SERVICE, `${admin}: ${res.status} ${body.error ?? ''}`.trim(), body.hint);
  return body;
}

export function renderState(services: ServiceState[]): string {
  return renderTable(
    ['model', 'service', 'kind', 'desired', 'ready', 'draining', 'starting', 'pids', 'restarts', 'cpu limit', 'metrics ports'],
    services.map((s) => [
      s.model,
      s.name,
      s.kind,
      s.desired,
      s.replicas.filter((r) => r.state === 'ready').length,
      s.replicas.filter((r) => r.state === 'draining').length,
      s.starting,
      s.replicas.map((r) => r.pid).join(' '),
      s.replicas.reduce((n, r) => n + r.restarts, 0),
      [...new Set(s.replicas.map((r) => (r.cpuLimit == null ? 'none' : String(r.cpuLimit))))].join(' ') || '-',
      s.replicas.map((r) => r.metricsPort).join(' '),
    ]),
  );
}

/** One line for the balancer in front, if any. */
export function renderBalancer(b: BalancerState | null): string {
  return b ? `balancer: ${b.kind}, ${b.inflightLimit} queries in flight at most, ${b.queued} waiting, ${b.refused} refused (429), ${b.forwarded} passed on${b.metricsPort ? `; metrics on :${b.metricsPort}` : ''}` : 'balancer: none (the front ends listen on the public port)';
}

function tokenOf(admin: string, file: string | undefined): string {
  if (process.env.SHARDWISE_ADMIN_TOKEN) return process.env.SHARDWISE_ADMIN_TOKEN;
  const path = file ?? adminTokenFile(Number(new URL(admin).port));
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch {
    throw badArgument(`cannot read the admin token from ${path}`, 'pass --token-file (serve prints where it wrote the token) or set SHARDWISE_ADMIN_TOKEN');
  }
}

export function registerAdmin(program: Command): void {
  program
    .command('status')
    .description("a running deployment's services and replicas (from its admin API)")
    .option('--admin <url>', 'admin API of the deployment', httpUrl, DEFAULT_ADMIN)
    .option('--json', 'the state as JSON')
    .action(async (opts: { admin: string; json?: boolean }) => {
      const state = (await call(opts.admin, '/v1/state')) as { services: ServiceState[]; balancer: BalancerState | null };
      console.log(opts.json ? JSON.stringify(state, null, 2) : `${renderState(state.services)}\n${renderBalancer(state.balancer ?? null)}`);
    });
  program
    .command('scale')
    .description("set a service's replica count in a running deployment (scale-in drains first: no query fails)")
    .requiredOption('--service <name>', 'service name (as `status` lists them)')
    .requiredOption('--replicas <n>', 'replicas wanted', positiveInt)
    .option('--admin <url>', 'admin API of the deployment', httpUrl, DEFAULT_ADMIN)
    .option('--token-file <file>', 'the admin token file serve wrote (default: the one for the admin port)')
    .action(async (opts: { service: string; replicas: number; admin: string; tokenFile?: string }) => {
      const token = tokenOf(opts.admin, opts.tokenFile);
      const r = (await call(opts.admin, `/v1/services/${encodeURIComponent(opts.service)}/scale`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ replicas: opts.replicas }) })) as { from: number; to: number };
      console.log(`scaled ${opts.service} from ${r.from} to ${r.to} replicas`);
    });
}
