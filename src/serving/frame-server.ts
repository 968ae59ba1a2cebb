import * as net from 'node:net';
import { type Frame, FrameDecoder, FrameError, FrameType, type FrameTypeCode, frameHeader } from './frame.ts';
import { encodeError } from './messages.ts';
import { ShardwiseError, listenError } from '../util/errors.ts';

export interface Reply {
  type: FrameTypeCode;
  parts: Buffer[];
}

export type FrameHandler = (frame: Frame) => Reply | Promise<Reply>;

/** Writes one frame as header + parts without concatenating them (writev through cork). */
export function writeFrame(socket: net.Socket, type: FrameTypeCode, requestId: number, parts: Buffer[]): void {
  const bytes = parts.reduce((s, p) => s + p.length, 0);
  socket.cork();
  socket.write(frameHeader(type, requestId, bytes));
  for (const p of parts) socket.write(p);
  socket.uncork();
}

/**
 * A TCP server for internal frames. A malformed frame closes that connection with a logged
 * reason; a handler error becomes an ERROR frame; neither stops the server. close() stops
 * accepting, lets in-flight requests finish (drain), then closes the connections.
 */
export class FrameServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private inflight = 0;
  private draining = false;
  private drained: (() => void) | null = null;

  constructor(
    private readonly name: string,
    private readonly handler: FrameHandler,
    private readonly log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`),
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  get inFlight(): number {
    return this.inflight;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (e) => reject(listenError(e, `${host}:${port}`)));
      this.server.listen(port, host, () => resolve((this.server.address() as net.AddressInfo).port));
    });
  }

  /** Listens on a Unix domain socket: same frames, cheaper than loopback TCP for processes on one machine. */
  listenPath(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (e) => reject(listenError(e, path)));
      this.server.listen(path, () => resolve());
    });
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    const decoder = new FrameDecoder();
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('data', (chunk) => {
      try {
        decoder.push(chunk, (frame) => this.handle(socket, frame));
      } catch (e) {
        if (!(e instanceof FrameError)) throw e;
        this.log(`${this.name}: closing connection from ${peer}: malformed frame (${e.message})`);
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private handle(socket: net.Socket, frame: Frame): void {
    this.inflight++;
    const respond = (reply: Reply) => {
      if (!socket.destroyed) writeFrame(socket, reply.type, frame.requestId, reply.parts);
    };
    const fail = (e: unknown) => {
      const code = e instanceof ShardwiseError ? e.code : e instanceof FrameError ? 'SW_BAD_FRAME' : 'SW_SERVICE';
      if (code === 'SW_SERVICE') this.log(`${this.name}: request ${frame.requestId} failed: ${(e as Error).stack ?? e}`);
      respond({ type: FrameType.ERROR, parts: encodeError(code, (e as Error).message) });
    };
    const done = () => {
      this.inflight--;
      if (this.draining && this.inflight === 0) this.drained?.();
    };
    try {
      const out = this.handler(frame);
      if (out instanceof Promise) out.then(respond, fail).finally(done);
      else {
        respond(out);
        done();
      }
    } catch (e) {
      fail(e);
      done();
    }
  }

  async close(): Promise<void> {
    this.draining = true;
    const stopped = new Promise<void>((r) => this.server.close(() => r()));
    if (this.inflight > 0) await new Promise<void>((r) => (this.drained = r));
    for (const s of this.sockets) s.end();
    for (const s of this.sockets) s.destroy();
    await stopped;
  }
}
