import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCodes, ShardwiseError, badRequest, httpStatusOf, notFound } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Controller } from './types.ts';
import type { Decision } from './autoscaler.ts';

/** What the admin API drives: the local supervisor today, the same shape for any controller. */

/** Admin bodies are a few bytes; anything bigger is not one. */
const MAX_ADMIN_BODY = 4096;

/** Where `serve` writes the token of the admin API on `port` unless told otherwise (and where `status`/`scale` look). */
export const adminTokenFile = (port: number) => path.join(os.tmpdir(), `shardwise-admin-${port}.token`);

export const newAdminToken = () => crypto.randomBytes(24).toString('hex');

const TOKEN_FILE_PATTERN = /^shardwise-admin-(\d+)\.token$/;

/** Whether something accepts connections on the loopback port (a slow answer counts as yes). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500, () => (socket.destroy(), resolve(true)));
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * Removes default token files left by deployments that died without removing theirs (SIGKILL,
 * OOM): nothing listens on their port, and the file is older than `minAgeMs`. The age keeps a
 * starting deployment's fresh file (written right after its admin API listens) out of reach.
 */
export async function removeStaleTokenFiles(log: Logger, minAgeMs = 60_000): Promise<void> {
  const tmp = os.tmpdir();
  for (const name of fs.readdirSync(tmp)) {
    const m = TOKEN_FILE_PATTERN.exec(name);
    if (!m) continue;
    const file = path.join(tmp, name);
    try {
      if (Date.now() - fs.statSync(file).mtimeMs < minAgeMs || (await listening(Number(m[1])))) continue;
      fs.rmSync(file, { force: true });
      log.info(`removed ${file}, left by a deployment whose admin API on port ${m[1]} is gone`);
    } catch {
      // Gone meanwhile, or not ours to remove: leave it.
    }
  }
}

/** Writes the token to `file`, readable by its owner only (0600). */
export function writeTokenFile(file: string, token: string): void {
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600); // an existing file keeps its mode through writeFileSync
}

function authorized(req: http.IncomingMessage, token: string): boolean {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]);
  const want = Buffer.from(token);
  return given.length === want.length && crypto.timingSafeEqual(given, want);
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      text += c;
      if (text.length > MAX_ADMIN_BODY) {
        req.destroy();
        reject(badRequest(`body over ${MAX_ADMIN_BODY} bytes`));
      }
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(badRequest('body must be JSON, e.g. {"replicas": 3}'));
      }
    });
    req.on('error', reject);
  });
}

/**
 * The control plane over HTTP, on its own port (loopback unless told otherwise):
 *   GET  /v1/state                      services and replicas, with the autoscaler's last decision, and the balancer's counters (reading needs no token)
 *   GET  /metrics                       shardwise_replicas and shardwise_desired_replicas per service
 *   GET  /v1/targets                    every replica's metrics address (and the balancer's) in Prometheus' HTTP service-discovery format
 *   POST /v1/services/{name}/scale      {"replicas": n}, with `Authorization: Bearer <token>`
 * 401 without the token, 404 for an unknown service, 400 naming the bound for a bad count.
 */
export class AdminServer {
  private readonly server: http.Server;
  private port = 0;

  constructor(
    private readonly controller: Controller,
    private readonly token: string,
    private readonly log: Logger,
    private readonly decisions: () => ReadonlyMap<string, Decision> = () => new Map(),
  ) {
    this.server = http.createServer((req, res) => void this.route(req, res).catch((e) => this.fail(res, e)));
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve((this.port = (this.server.address() as { port: number }).port)));
    });
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: http.ServerResponse, e: unknown): void {
    const status = httpStatusOf(e);
    if (status >= 500) this.log.error(`admin: ${(e as Error)?.stack ?? e}`);
    const se = e instanceof ShardwiseError ? e : null;
    if (!res.headersSent) this.send(res, status, { error: se?.message ?? 'internal error (logged)', code: se?.code ?? ErrorCodes.INTERNAL, ...(se?.hint ? { hint: se.hint } : {}) });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/v1/state') {
      if (req.method !== 'GET') throw new ShardwiseError(ErrorCodes.METHOD_NOT_ALLOWED, `${req.method} is not allowed on ${url}; use GET`);
      const decisions = this.decisions();
      const balancer = (await this.controller.balancer?.()) ?? null;
      return this.send(res, 200, { services: this.controller.state().map((svc) => ({ ...svc, autoscale: decisions.get(svc.name) ?? null })), balancer });
    }
    if (url === '/metrics') return this.metrics(res);
    if (url === '/v1/targets') return this.send(res, 200, this.targets());
    const m = /^\/v1\/services\/([^/]+)\/scale$/.exec(url);
    if (!m) throw notFound(`no route ${url}`, 'routes: GET /v1/state, POST /v1/services/{name}/scale');
    if (req.method !== 'POST') throw new ShardwiseError(ErrorCodes.METHOD_NOT_ALLOWED, `${req.method} is not allowed on ${url}; use POST`);
    if (!authorized(req, this.token)) throw new ShardwiseError(ErrorCodes.UNAUTHORIZED, 'missing or wrong admin token', 'send Authorization: Bearer <the token in the file serve printed>');
    let name: string;
    try {
      name = decodeURIComponent(m[1]);
    } catch {
      throw badRequest(`the service name ${JSON.stringify(m[1])} is not valid %-encoding`);
    }
    const body = await readJson(req);
    const replicas = (body as { replicas?: unknown } | null)?.replicas;
    if (typeof replicas !== 'number') throw badRequest(`body must be {"replicas": <integer>}, got ${JSON.stringify(body)}`);
    const { from, to } = await this.controller.scale(name, replicas);
    this.log.info(`admin: scaled ${name} from ${from} to ${to}`);
    this.send(res, 200, { service: name, from, to });
  }

  /**
   * One target group per replica (http_sd_configs): a restarted or added replica is found
   * without touching Prometheus' config; the admin port itself is a target too. The target
   * labels are prefixed so they never collide with the series' own `service` and `model`
   * labels (Prometheus would rename those to exported_*).
   */
  private targets(): { targets: string[]; labels: Record<string, string> }[] {
    const services = this.controller.state();
    const model = services[0]?.model ?? '';
    const replicas = services.flatMap((s) =>
      s.replicas.map((r) => ({ targets: [`127.0.0.1:${r.metricsPort}`], labels: { shardwise_model: s.model, shardwise_service: s.name, shardwise_kind: s.kind, shardwise_replica: String(r.replica) } })),
    );
    const own = (port: number, name: string) => ({ targets: [`127.0.0.1:${port}`], labels: { shardwise_model: model, shardwise_service: name, shardwise_kind: name, shardwise_replica: '0' } });
    const balancer = this.controller.balancerMetricsPort?.();
    return [...replicas, own(this.port, 'admin'), ...(balancer ? [own(balancer, 'balancer')] : [])];
  }

  /** Two gauges, in the Prometheus text format by hand: the supervisor stays without prom-client (12 MiB). */
  private metrics(res: http.ServerResponse): void {
    const services = this.controller.state();
    const lines = (name: string, help: string, value: (s: (typeof services)[number]) => number) => [
      `# HELP ${name} ${help}`,
      `# TYPE ${name} gauge`,
      ...services.map((s) => `${name}{model="${s.model}",service="${s.name}"} ${value(s)}`),
    ];
    const text = [
      ...lines('shardwise_replicas', 'Replicas of a service in rotation', (s) => s.replicas.filter((r) => r.state === 'ready').length),
      ...lines('shardwise_desired_replicas', 'Replicas a service is scaled to (its plan, a scale request or the autoscaler)', (s) => s.desired),
      '',
    ].join('\n');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(text);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
