import * as net from 'node:net';
import { type Frame, FrameDecoder, FrameType, type FrameTypeCode } from './frame.ts';
import { writeFrame } from './frame-server.ts';
import { decodeError } from './messages.ts';
import { ErrorCodes, ShardwiseError } from '../util/errors.ts';

/** A replica's address: TCP host and port, or a Unix domain socket path (processes on one machine). */
export type Address = { host: string; port: number; path?: undefined } | { path: string; host?: undefined; port?: undefined };

export const addressKey = (a: Address) => a.path ?? `${a.host}:${a.port}`;

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
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

  constructor(readonly address: Address) {}

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
      socket.once('connect', () => {
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
        const err = new TransportError(ErrorCodes.SERVICE, `connection to ${addressKey(this.address)} lost${e ? ` (${e.message})` : ''}`);
        if (this.connecting) {
          this.connecting = null;
          reject(err);
        }
        this.socket = null;
        for (const [, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(err);
        }
        this.pending.clear();
      };
      socket.once('error', fail);
      socket.once('close', () => fail());
    });
    return this.connecting;
  }

  private settle(f: Frame): void {
    const p = this.pending.get(f.requestId);
    if (!p) return; // answered after its deadline
    this.pending.delete(f.requestId);
    clearTimeout(p.timer);
    if (f.type === FrameType.ERROR) {
      const { code, message } = decodeError(f.payload);
      p.reject(new RemoteError(code as ShardwiseError['code'], message));
    } else p.resolve(f);
  }

  async request(type: FrameTypeCode, parts: Buffer[], timeoutMs: number): Promise<Frame> {
    const socket = await this.connect();
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TransportError(ErrorCodes.TIMEOUT, `no answer from ${addressKey(this.address)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      writeFrame(socket, type, id, parts);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}

/**
 * The replicas of one service. Each request goes to the replica with the fewest outstanding
 * requests; a connection failure or timeout is retried once on another replica within the
 * same deadline. ERROR frames are the request's fault and are not retried.
 */
export class ReplicaPool {
  private clients: FrameClient[] = [];

  constructor(readonly service: string, addresses: Address[] = []) {
    this.setAddresses(addresses);
  }

  get size(): number {
    return this.clients.length;
  }

  /** Replaces the replica set (after a restart or a scale step); dropped replicas' connections close. */
  setAddresses(addresses: Address[]): void {
    const keep = new Map(this.clients.map((c) => [addressKey(c.address), c]));
    this.clients = addresses.map((a) => keep.get(addressKey(a)) ?? new FrameClient(a));
    const live = new Set(addresses.map(addressKey));
    for (const [k, c] of keep) if (!live.has(k)) c.close();
  }

  private pick(exclude?: FrameClient): FrameClient | undefined {
    let best: FrameClient | undefined;
    for (const c of this.clients) {
      if (c === exclude) continue;
      if (!best || c.outstanding < best.outstanding) best = c;
    }
    return best;
  }

  async request(type: FrameTypeCode, parts: Buffer[], deadline: number): Promise<Frame> {
    const first = this.pick();
    if (!first) throw new TransportError(ErrorCodes.SERVICE, `service ${this.service} has no replicas`);
    try {
      return await first.request(type, parts, Math.max(1, deadline - Date.now()));
    } catch (e) {
      const second = this.pick(first);
      if (!(e instanceof TransportError) || !second || Date.now() >= deadline) throw e;
      return second.request(type, parts, Math.max(1, deadline - Date.now()));
    }
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
