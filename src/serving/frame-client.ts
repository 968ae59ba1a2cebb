import * as net from 'node:net';
import { type Frame, FrameDecoder, FrameType, type FrameTypeCode } from './frame.ts';
import { writeFrame } from './frame-server.ts';
import { decodeError } from './messages.ts';
import { ErrorCodes, ShardwiseError } from '../util/errors.ts';

/** A replica's address: TCP host and port, or a Unix domain socket path (processes on one machine). */
export type Address = { host: string; port: number; path?: undefined } | { path: string; host?: undefined; port?: undefined };

export const addressKey = (a: Address) => a.path ?? `${a.host}:${a.port}`;

/** Called once with the answer or the failure of one request. */
export type FrameCallback = (err: Error | null, frame: Frame | null) => void;

interface Pending {
  done: FrameCallback;
  timer: NodeJS.Timeout;
}

/** The far side answered with an ERROR frame: a request problem, not a broken replica. */
export class RemoteError extends ShardwiseError {}

/** Connection or deadline failure: worth retrying on another replica. */
export class TransportError extends ShardwiseError {}

/**
 * One pipelined connection to one replica. Requests carry ids, so many can be outstanding;
 * `outstanding` is what least-outstanding replica choice reads. Reconnects on the next
 * request after a failure.
 */
export class FrameClient {
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    readonly address: Address,
    /** A connection not up within this long fails (a host that is gone drops SYNs: without it, minutes). */
    private readonly connectTimeoutMs = 1000,
  ) {}

  get outstanding(): number {
    return this.pending.size;
  }

  private connect(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    if (this.connecting) return this.connecting;
    this.connecting = new Promise<net.Socket>((resolve, reject) => {
      const socket = this.address.path !== undefined ? net.connect(this.address.path) : net.connect(this.address.port, this.address.host);
      socket.setNoDelay(true);
      const decoder = new FrameDecoder();
      const connectTimer = setTimeout(() => socket.destroy(new Error(`not connected within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(connectTimer);
        // A peer whose host vanished (link cut, node lost) sends no FIN: keepalive probes find it.
        if (this.address.path === undefined) socket.setKeepAlive(true, 5000);
        this.socket = socket;
        this.connecting = null;
        resolve(socket);
      });
      socket.on('data', (chunk) => {
        try {
          decoder.push(chunk, (f) => this.settle(f));
        } catch (e) {
          socket.destroy(e as Error);
        }
      });
      const fail = (e?: Error) => {
        clearTimeout(connectTimer);
        const err = new TransportError(ErrorCodes.SERVICE, `connection to ${addressKey(this.address)} lost${e ? ` (${e.message})` : ''}`);
        if (this.connecting) {
          this.connecting = null;
          reject(err);
        }
        this.socket = null;
        const failed = [...this.pending.values()];
        this.pending.clear();
        for (const p of failed) {
          clearTimeout(p.timer);
          p.done(err, null);
        }
      };
      socket.once('error', fail);
      socket.once('close', () => fail());
    });
    return this.connecting;
  }

  private settle(f: Frame): void {
    const p = this.pending.get(f.requestId);
    if (!p) return; // answered after its deadline, or cancelled
    this.pending.delete(f.requestId);
    clearTimeout(p.timer);
    if (f.type === FrameType.ERROR) {
      const { code, message } = decodeError(f.payload);
      p.done(new RemoteError(code as ShardwiseError['code'], message), null);
    } else p.done(null, f);
  }

  /**
   * Sends one request; `done` is called once, with the answer, an ERROR frame's RemoteError,
   * or a TransportError (connection lost, or no answer within timeoutMs). Returns the request
   * id for cancel().
   */
  send(type: FrameTypeCode, parts: Buffer[], timeoutMs: number, done: FrameCallback): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    const timer = setTimeout(() => {
      this.pending.delete(id);
      done(new TransportError(ErrorCodes.TIMEOUT, `no answer from ${addressKey(this.address)} within ${timeoutMs} ms`), null);
    }, timeoutMs);
    this.pending.set(id, { done, timer });
    if (this.socket && !this.socket.destroyed) writeFrame(this.socket, type, id, parts);
    else {
      // Connection failures reach every pending request through connect()'s handlers.
      this.connect().then(
        (socket) => this.pending.has(id) && writeFrame(socket, type, id, parts),
        () => {},
      );
    }
    return id;
  }

  /** Forgets a request: its answer, if it comes, is dropped and `done` is not called. */
  cancel(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
  }

  request(type: FrameTypeCode, parts: Buffer[], timeoutMs: number): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => this.send(type, parts, timeoutMs, (err, frame) => (err ? reject(err) : resolve(frame!))));
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}
