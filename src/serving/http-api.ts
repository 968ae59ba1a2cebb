import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { validateBatch } from '../model/batch.ts';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits, decodeRequest, encodeBinaryResponse, encodeResponse, wantsBinaryOutput } from '../protocol/oip.ts';
import { ErrorCodes, ShardwiseError, badRequest, httpStatusOf, listenError, notFound } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { AdmissionControl, type AdmissionOptions } from './admission.ts';
import type { InferenceEngine } from './engine.ts';
import { LoopLagSampler } from './loop-lag.ts';
import { bodyOverLimit, parseJsonBounded, parseLengthHeader, readBody } from './http-body.ts';
import type { ServiceMetrics } from './metrics.ts';

const BINARY_HEADER = 'inference-header-content-length';
const MODEL_VERSIONS = ['1'];

/** What one front end accepts; every bound answers with a 4xx naming it (README: resource limits). */
export interface HttpLimits {
  /** A whole request body (JSON header plus binary tensors). */
  maxBodyBytes: number;
  /** The JSON part of a body: JSON tensors cost ~10× their binary size to parse. */
  maxJsonBytes: number;
  maxJsonDepth: number;
  /** All request headers together (Node answers 431 past it). */
  maxHeaderBytes: number;
  maxConnections: number;
  keepAliveTimeoutMs: number;
  /** From connection to the end of the headers. */
  headersTimeoutMs: number;
  /** From connection to the end of the body (a slow or stuck upload gets 408). */
  bodyTimeoutMs: number;
  /** During shutdown: how long a request still receiving its body may hold the exit. */
  drainBodyTimeoutMs: number;
  request: RequestLimits;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxBodyBytes: 64 << 20,
  maxJsonBytes: 8 << 20,
  maxJsonDepth: 32,
  maxHeaderBytes: 16 << 10,
  maxConnections: 4096,
  keepAliveTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  drainBodyTimeoutMs: 1000,
  request: DEFAULT_REQUEST_LIMITS,
};

export interface FrontEndOptions {
  limits: HttpLimits;
  /** null: queue without bound (the baseline bench:overload compares against). */
  admission: AdmissionOptions | null;
  log: Logger;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Answers once the rest of the request's body has arrived (read and dropped), so that the
 * connection, kept alive or closed after the answer, is never closed on bytes still coming: a
 * close with unread bytes is a reset, and the client loses the answer (a refused 6 MB body in
 * the bad-input battery got EPIPE and no 429). A body over the limit, or of unknown length, is
 * not waited for: the answer goes at once and the connection closes after it. A client that
 * stops sending meets the body timeout (408).
 */
function answerAfterBody(req: http.IncomingMessage, res: http.ServerResponse, maxBodyBytes: number, answer: () => void): void {
  const length = req.headers['content-length'];
  if (req.complete || (length === undefined && req.headers['transfer-encoding'] === undefined)) return answer();
  const declared = Number(length);
  if (!(declared <= maxBodyBytes)) {
    res.setHeader('connection', 'close');
    return answer();
  }
  req.once('end', answer);
  req.resume();
}

/** The JSON body of every error answer: the reason, its registry code, and what to do where known. */
export function errorBody(e: unknown): { error: string; code: string; hint?: string } {
  if (e instanceof ShardwiseError) return e.hint ? { error: e.message, code: e.code, hint: e.hint } : { error: e.message, code: e.code };
  return { error: 'internal error (logged by the server)', code: ErrorCodes.INTERNAL };
}

/** A path segment decoded, or a 400 for malformed %-encoding (decodeURIComponent throws on `%`). */
function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badRequest(`the URL segment ${JSON.stringify(s)} is not valid %-encoding`);
  }
}

/** A parser-level error (before any route runs) as a JSON answer on the raw socket. */
function clientErrorAnswer(err: NodeJS.ErrnoException): [number, ShardwiseError] {
  if (err.code === 'HPE_HEADER_OVERFLOW') return [431, new ShardwiseError(ErrorCodes.HEADERS_TOO_LARGE, 'request headers are over the server\'s limit', 'send fewer or shorter headers')];
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, new ShardwiseError(ErrorCodes.REQUEST_TIMEOUT, 'the request was not received within the server\'s timeout', 'send the whole request promptly')];
  return [400, badRequest(`malformed HTTP request (${err.code ?? err.message})`)];
}

/** The one answer to every refused query (why it was refused is in the admission log lines and metrics, not per answer). */
const OVERLOADED_BODY = Buffer.from(
  JSON.stringify(errorBody(new ShardwiseError(ErrorCodes.OVERLOADED, 'over capacity: queries would wait past the admission budget', 'retry after Retry-After seconds, or add replicas'))),
);

const outcomeOf = (status: number) => (status === 429 ? 'rejected' : status < 500 ? 'bad_request' : status === 504 ? 'timeout' : 'error');

/**
 * The public API: Open Inference Protocol v2 over HTTP/1.1 keep-alive, JSON bodies or
 * Triton's binary tensor extension (Inference-Header-Content-Length). Every request path is
 * total: whatever the URL, headers or body, the answer is a status from the error registry
 * with a JSON reason, and the process keeps serving. Admission control refuses queries it
 * could not answer within the SLA with 429 + Retry-After, before reading their bodies.
 * close() drains: not ready at once, still serving through a grace period, then in-flight
 * requests finish and stuck uploads are cut after a short timeout.
 */
export class InferenceHttpServer {
  private readonly server: http.Server;
  private readonly limits: HttpLimits;
  private readonly admission: AdmissionControl | null;
  private readonly log: Logger;
  private ready = false;
  private closing = false;
  private inflight = 0;
  private idle: (() => void) | null = null;
  /** Requests still receiving their body: the ones a drain cuts after drainBodyTimeoutMs. */
  private readonly receiving = new Set<http.IncomingMessage>();

  constructor(private readonly engine: InferenceEngine, private readonly metrics: ServiceMetrics, opts: FrontEndOptions) {
    this.limits = opts.limits;
    this.log = opts.log;
    const lag = new LoopLagSampler();
    // Refusing can start and stop many times a second under overload: one line per 5 s at most (the exact count is shardwise_requests_total{outcome="rejected"}).
    let loggedAt = -Infinity;
    const onChange = (refusing: boolean, detail: string) => {
      if (!refusing || performance.now() - loggedAt < 5000) return;
      loggedAt = performance.now();
      this.log.warn(`admission: refusing queries with 429: ${detail}`);
    };
    this.admission = opts.admission ? new AdmissionControl(opts.admission, (now) => Math.max(engine.queueAgeMs(), lag.lagMs(now)), onChange) : null;
    const handle = (req: http.IncomingMessage, res: http.ServerResponse) => void this.route(req, res).catch((e) => this.fail(req, res, e));
    this.server = http.createServer(
      { maxHeaderSize: this.limits.maxHeaderBytes, requestTimeout: this.limits.bodyTimeoutMs, headersTimeout: this.limits.headersTimeoutMs, connectionsCheckingInterval: 500 },
      handle,
    );
    this.server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => this.continueOrAnswer(req, res, handle));
    this.server.keepAliveTimeout = this.limits.keepAliveTimeoutMs;
    this.server.maxConnections = this.limits.maxConnections;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
      const [status, e] = clientErrorAnswer(err);
      const text = JSON.stringify(errorBody(e));
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
    });
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (e) => reject(listenError(e, `${host}:${port}`)));
      this.server.listen(port, host, () => {
        this.ready = true;
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  /** Why this front end is not ready (draining, or a service without a healthy replica), or null. */
  unready(): string | null {
    return this.ready ? this.engine.unready() : 'shutting down';
  }

  private metadata() {
    const c = this.engine.config;
    return {
      name: c.name,
      versions: MODEL_VERSIONS,
      platform: 'shardwise-dlrm',
      inputs: [
        { name: 'dense', datatype: 'FP32', shape: [-1, c.numDense] },
        { name: 'indices', datatype: 'INT64', shape: [-1] },
        { name: 'offsets', datatype: 'INT64', shape: [-1] },
        { name: 'per_sample_weights', datatype: 'FP32', shape: [-1], optional: true },
      ],
      outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
    };
  }

  private readiness(res: http.ServerResponse): void {
    const why = this.unready();
    if (why) sendJson(res, 503, { error: `not ready: ${why}`, code: ErrorCodes.SERVICE });
    else res.writeHead(200).end();
  }

  private allow(req: http.IncomingMessage, res: http.ServerResponse, method: string, url: string): boolean {
    if (req.method === method || (method === 'GET' && req.method === 'HEAD')) return true;
    sendJson(res, 405, { error: `${req.method} is not allowed on ${url}; use ${method}`, code: ErrorCodes.METHOD_NOT_ALLOWED }, { allow: method });
    return false;
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.closing) res.setHeader('connection', 'close');
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/metrics') return void (this.allow(req, res, 'GET', url) && (await this.metrics.handleMetrics(res)));
    if (url === '/v2/health/live') return void (this.allow(req, res, 'GET', url) && res.writeHead(200).end());
    if (url === '/v2/health/ready') return void (this.allow(req, res, 'GET', url) && this.readiness(res));
    if (url === '/v2') return void (this.allow(req, res, 'GET', url) && sendJson(res, 200, { name: 'shardwise', version: '0.1.0', extensions: ['binary_tensor_data'] }));
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/.exec(url);
    if (!m) throw notFound(`no route ${url}`, 'routes: /v2, /v2/health/{live,ready}, /v2/models/{name}[/versions/1][/ready|/infer], /metrics');
    const name = decodeSegment(m[1]);
    if (name !== this.engine.config.name) throw notFound(`unknown model ${JSON.stringify(name)}; this server serves '${this.engine.config.name}'`);
    if (m[2] !== undefined) {
      const version = decodeSegment(m[2]);
      if (!MODEL_VERSIONS.includes(version)) throw notFound(`model '${name}' has no version ${JSON.stringify(version)}; its versions are ${MODEL_VERSIONS.join(', ')}`);
    }
    if (m[3] === undefined) return void (this.allow(req, res, 'GET', url) && sendJson(res, 200, this.metadata()));
    if (m[3] === '/ready') return void (this.allow(req, res, 'GET', url) && this.readiness(res));
    if (this.allow(req, res, 'POST', url)) await this.infer(req, res);
  }

  /** The answer for anything a route threw: its registry status and reason; a stack in the log only for a 500. */
  private fail(req: http.IncomingMessage, res: http.ServerResponse, e: unknown): void {
    const status = httpStatusOf(e);
    if (status >= 500 && !(e instanceof ShardwiseError)) this.log.error(`${req.method} ${req.url}: ${(e as Error)?.stack ?? e}`);
    if (res.headersSent || res.destroyed) return void (res.writableEnded || res.destroy());
    answerAfterBody(req, res, this.limits.maxBodyBytes, () => res.destroyed || sendJson(res, status, errorBody(e)));
  }

  /**
   * A client that waits for a go-ahead before it sends its body (Expect: 100-continue, as curl
   * does for large ones) hears a body over the limit (413) or a refusal (429) before it uploads
   * anything, the connection closing after the answer; otherwise it gets its 100 Continue and
   * the request goes on as any other. (Node would send the 100 itself: the client then uploaded
   * a body only to have it refused, and one over the limit was cut off while still arriving.)
   */
  private continueOrAnswer(req: http.IncomingMessage, res: http.ServerResponse, handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): void {
    const declared = Number(req.headers['content-length']);
    const refused = req.method === 'POST' && req.url?.endsWith('/infer') && this.admission && !this.admission.wouldAdmit();
    if (!(declared > this.limits.maxBodyBytes) && !refused) {
      res.writeContinue();
      return handle(req, res);
    }
    res.setHeader('connection', 'close');
    if (refused) {
      this.metrics.requests.inc({ service: this.metrics.service, outcome: 'rejected' });
      return this.sendRefusal(res);
    }
    sendJson(res, 413, errorBody(bodyOverLimit(this.limits.maxBodyBytes)));
  }

  private sendRefusal(res: http.ServerResponse): void {
    if (res.destroyed) return;
    res.writeHead(429, { 'content-type': 'application/json', 'content-length': OVERLOADED_BODY.length, 'retry-after': '1' });
    res.end(OVERLOADED_BODY);
  }

  /**
   * 429 without parsing the body: refusing must cost far less than serving (the answer is
   * encoded once; the body is skipped, not copied, and the answer sent once it is in).
   */
  private refuse(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.metrics.requests.inc({ service: this.metrics.service, outcome: 'rejected' });
    answerAfterBody(req, res, this.limits.maxBodyBytes, () => this.sendRefusal(res));
  }

  private async infer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.admission && !this.admission.admit()) return this.refuse(req, res);
    const t0 = performance.now();
    const { service } = this.metrics;
    const { limits, engine } = this;
    this.inflight++;
    this.metrics.inflight.inc({ service });
    try {
      const headerLength = parseLengthHeader('Inference-Header-Content-Length', req.headers[BINARY_HEADER]);
      this.receiving.add(req);
      const raw = await readBody(req, limits.maxBodyBytes, headerLength === undefined ? 0 : (4 - (headerLength % 4)) % 4);
      this.receiving.delete(req);
      const jsonLength = headerLength ?? raw.length;
      if (jsonLength > raw.length) throw badRequest(`Inference-Header-Content-Length ${jsonLength} does not fit a ${raw.length}-byte body`);
      const body = parseJsonBounded(raw.subarray(0, jsonLength), limits.maxJsonBytes, limits.maxJsonDepth);
      const batch = decodeRequest(body, engine.config, jsonLength < raw.length ? raw.subarray(jsonLength) : undefined, limits.request);
      validateBatch(engine.config, batch);
      const scores = await engine.infer(batch);
      const id = (body as { id?: string }).id;
      if (this.closing) res.setHeader('connection', 'close');
      if (wantsBinaryOutput(body)) {
        const out = encodeBinaryResponse(engine.config.name, scores, id);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.body.length, [BINARY_HEADER]: out.headerLength });
        res.end(out.body);
      } else sendJson(res, 200, encodeResponse(engine.config.name, scores, id));
      this.metrics.requests.inc({ service, outcome: 'ok' });
    } catch (e) {
      this.metrics.requests.inc({ service, outcome: outcomeOf(httpStatusOf(e)) });
      this.fail(req, res, e);
    } finally {
      this.receiving.delete(req);
      this.admission?.release();
      this.metrics.observe('total', t0);
      this.metrics.inflight.dec({ service });
      if (--this.inflight === 0) this.idle?.();
    }
  }

  /**
   * Drains, then closes: readiness answers 503 at once; for `graceMs` everything is still
   * served (a load balancer needs that long to stop sending); then no new connections, idle
   * keep-alive connections close, in-flight requests finish (answers carry Connection: close),
   * and uploads still unfinished after drainBodyTimeoutMs are cut. `leaving`: see below.
   */
  async close(graceMs = 0, leaving = false): Promise<void> {
    this.ready = false;
    const stopAccepting = () => new Promise<void>((r) => this.server.close(() => r()));
    // Leaving (one replica of several on a shared port, a scale-in): new connections go to the
    // others at once, and every answer in the grace period says Connection: close, so clients
    // move their keep-alive connections before any is closed under them.
    const closing = leaving ? stopAccepting() : null;
    this.closing = leaving;
    if (graceMs > 0) await new Promise((r) => setTimeout(r, graceMs));
    this.closing = true;
    const closed = closing ?? stopAccepting();
    this.server.closeIdleConnections();
    const cut = setTimeout(() => {
      for (const req of this.receiving) {
        this.log.warn(`shutdown: cutting a request still sending its body after ${this.limits.drainBodyTimeoutMs} ms`);
        req.socket.destroy();
      }
    }, this.limits.drainBodyTimeoutMs);
    if (this.inflight > 0) await new Promise<void>((r) => (this.idle = r));
    clearTimeout(cut);
    this.server.closeAllConnections();
    await closed;
    await this.engine.close();
  }
}
