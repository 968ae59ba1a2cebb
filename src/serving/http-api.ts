import * as http from 'node:http';
import { validateBatch } from '../model/batch.ts';
import { decodeRequest, encodeBinaryResponse, encodeResponse, wantsBinaryOutput } from '../protocol/oip.ts';
import { ErrorCodes, ShardwiseError, badRequest } from '../util/errors.ts';
import type { InferenceEngine } from './engine.ts';
import type { ServiceMetrics } from './metrics.ts';

const MAX_BODY_BYTES = 64 << 20;
const BINARY_HEADER = 'inference-header-content-length';

function statusOf(e: unknown): number {
  if (!(e instanceof ShardwiseError)) return 500;
  switch (e.code) {
    case ErrorCodes.BAD_REQUEST:
      return 400;
    case ErrorCodes.TIMEOUT:
      return 504;
    case ErrorCodes.SERVICE:
      return 503;
    default:
      return 500;
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Reads a body into one buffer sized by Content-Length (chunks copied in, no concat). Under the
 * binary extension the body is placed so its binary section starts 4-byte aligned: the tensors
 * then decode as views of it instead of copies.
 */
function readBody(req: http.IncomingMessage, headerLength: number | undefined): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  const pad = headerLength === undefined ? 0 : (4 - (headerLength % 4)) % 4;
  return new Promise((resolve, reject) => {
    // Stop reading and answer; the connection closes after the answer (see infer).
    const tooBig = () => {
      req.removeAllListeners('data');
      req.pause();
      reject(badRequest(`request body is over ${MAX_BODY_BYTES} bytes`, 'send smaller batches'));
    };
    if (declared > MAX_BODY_BYTES) return tooBig();
    const sized = Number.isInteger(declared) && declared >= 0;
    const chunks: Buffer[] = [];
    let body = sized ? Buffer.allocUnsafe(declared + pad).subarray(pad) : Buffer.alloc(0);
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (size + c.length > MAX_BODY_BYTES) return tooBig();
      if (sized) c.copy(body, size);
      else chunks.push(c);
      size += c.length;
    });
    req.on('end', () => {
      if (!sized) {
        // Chunked transfer: no length up front, so gather then place once.
        body = Buffer.allocUnsafe(size + pad).subarray(pad);
        let at = 0;
        for (const c of chunks) at += c.copy(body, at);
      }
      resolve(body.subarray(0, size));
    });
    req.on('error', reject);
  });
}

/**
 * The public API: Open Inference Protocol v2 over HTTP/1.1 keep-alive, JSON bodies or
 * Triton's binary tensor extension (Inference-Header-Content-Length). A bad request gets 400
 * with a message naming the tensor; the server keeps serving. close() drains in-flight requests.
 */
export class InferenceHttpServer {
  private readonly server: http.Server;
  private ready = false;
  private inflight = 0;
  private idle: (() => void) | null = null;

  constructor(private readonly engine: InferenceEngine, private readonly metrics: ServiceMetrics) {
    this.server = http.createServer((req, res) => void this.route(req, res));
    this.server.keepAliveTimeout = 30_000;
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.ready = true;
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  private metadata() {
    const c = this.engine.config;
    return {
      name: c.name,
      versions: ['1'],
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

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && url === '/metrics') return this.metrics.handleMetrics(res);
    if (req.method === 'GET' && url === '/v2/health/live') return void res.writeHead(200).end();
    if (req.method === 'GET' && url === '/v2/health/ready') return void res.writeHead(this.ready ? 200 : 503).end();
    if (req.method === 'GET' && url === '/v2') return sendJson(res, 200, { name: 'shardwise', version: '0.1.0', extensions: ['binary_tensor_data'] });
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?(\/ready|\/infer)?$/.exec(url);
    if (!m) return sendJson(res, 404, { error: `no route ${req.method} ${url}` });
    const name = decodeURIComponent(m[1]);
    if (name !== this.engine.config.name) return sendJson(res, 404, { error: `unknown model '${name}'; this server serves '${this.engine.config.name}'` });
    if (req.method === 'GET' && m[2] === undefined) return sendJson(res, 200, this.metadata());
    if (req.method === 'GET' && m[2] === '/ready') return void res.writeHead(this.ready ? 200 : 503).end();
    if (req.method === 'POST' && m[2] === '/infer') return this.infer(req, res);
    return sendJson(res, 405, { error: `${req.method} is not allowed on ${url}` });
  }

  private async infer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t0 = performance.now();
    const service = this.metrics.service;
    this.inflight++;
    this.metrics.inflight.inc({ service });
    try {
      const declaredHeader = req.headers[BINARY_HEADER] === undefined ? undefined : Number(req.headers[BINARY_HEADER]);
      const raw = await readBody(req, Number.isInteger(declaredHeader) ? declaredHeader : undefined);
      const headerLength = declaredHeader ?? raw.length;
      if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > raw.length) {
        throw badRequest(`Inference-Header-Content-Length ${req.headers[BINARY_HEADER]} does not fit a ${raw.length}-byte body`);
      }
      let body: unknown;
      try {
        body = JSON.parse(raw.subarray(0, headerLength).toString('utf8'));
      } catch (e) {
        throw badRequest(`request JSON does not parse: ${(e as Error).message}`);
      }
      const batch = decodeRequest(body, this.engine.config, headerLength < raw.length ? raw.subarray(headerLength) : undefined);
      validateBatch(this.engine.config, batch);
      const scores = await this.engine.infer(batch);
      const id = (body as { id?: string }).id;
      if (wantsBinaryOutput(body)) {
        const out = encodeBinaryResponse(this.engine.config.name, scores, id);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.body.length, [BINARY_HEADER]: out.headerLength });
        res.end(out.body);
      } else sendJson(res, 200, encodeResponse(this.engine.config.name, scores, id));
      this.metrics.requests.inc({ service, outcome: 'ok' });
    } catch (e) {
      const status = statusOf(e);
      if (status === 500) process.stderr.write(`${service}: infer failed: ${(e as Error).stack ?? e}\n`);
      this.metrics.requests.inc({ service, outcome: status === 400 ? 'bad_request' : status === 504 ? 'timeout' : 'error' });
      // A body left unread cannot be skipped on a keep-alive connection: answer, then close it.
      if (!req.complete) res.setHeader('connection', 'close');
      if (!res.headersSent) sendJson(res, status, { error: (e as Error).message, code: (e as ShardwiseError).code ?? 'SW_INTERNAL' });
    } finally {
      this.metrics.observe('total', t0);
      this.metrics.inflight.dec({ service });
      if (--this.inflight === 0) this.idle?.();
    }
  }

  /** Stops accepting connections, finishes in-flight requests, then closes. */
  async close(): Promise<void> {
    this.ready = false;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeIdleConnections();
    if (this.inflight > 0) await new Promise<void>((r) => (this.idle = r));
    this.server.closeAllConnections();
    await closed;
    await this.engine.close();
  }
}
