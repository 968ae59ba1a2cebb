import * as net from 'node:net';
import { type Outcome, type Sender, outcomeOf } from './sender.ts';

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const CLOSE = /\r\nconnection:[ \t]*close/i;
const CHUNKED = /\r\ntransfer-encoding:[^\r]*chunked/i;
/** Connections open at once, as undici's pool: queries past it wait for a free one. */
const MAX_CONNECTIONS = 512;

type Finish = (outcome: Outcome, detail?: string) => void;
type Send = (head: Buffer, body: Buffer, finish: Finish, deadline: number) => void;

/** Where a chunked body ends in `buf` (past its last chunk and trailers), -1 while it is incomplete, -2 if it is malformed. */
function chunkedBodyEnd(buf: Buffer): number {
  let i = 0;
  for (;;) {
    const line = buf.indexOf('\r\n', i);
    if (line < 0) return -1;
    const size = parseInt(buf.toString('latin1', i, line), 16);
    if (!Number.isFinite(size) || size < 0) return -2;
    if (size === 0) {
      // Trailers, if any, then an empty line.
      const end = buf.indexOf('\r\n\r\n', line);
      return end < 0 ? -1 : end + 4;
    }
    i = line + 2 + size + 2;
    if (i > buf.length) return -1;
  }
}

/** One keep-alive connection with at most one query on it (no pipelining: a slow answer holds up no other). */
class Connection {
  finish: Finish | null = null;
  deadline = 0;
  /** The query on it, kept to send again (see fail). */
  private head: Buffer | null = null;
  private body: Buffer | null = null;
  /** It answered a query before: the query now on it reuses a keep-alive connection. */
  private reused = false;
  /** A byte of the current answer arrived. */
  private answering = false;
  /** What arrived of the answer so far while its end is unknown: its head, or a chunked body (small, for the answers this reads). */
  private pending: Buffer | null = null;
  private reading: 'head' | 'length' | 'chunked' = 'head';
  /** Content-Length body bytes still to skip. */
  private bodyLeft = 0;
  private status = 0;
  private closeAfter = false;
  /** Out of the pool (failed or closed): it leaves once, though an error is followed by a close. */
  private closed = false;
  readonly socket: net.Socket;

  constructor(host: string, port: number, private readonly idle: (c: Connection) => void, private readonly removed: (c: Connection) => void, private readonly resend: Send) {
    this.socket = net.connect(port, host);
    this.socket.setNoDelay(true);
    this.socket.on('data', (d) => this.onData(d));
    this.socket.on('error', (e) => this.fail(e.message));
    this.socket.on('close', () => this.fail('the server closed the connection'));
  }

  send(head: Buffer, body: Buffer, finish: Finish, deadline: number): void {
    this.finish = finish;
    this.deadline = deadline;
    this.head = head;
    this.body = body;
    this.socket.cork();
    this.socket.write(head);
    this.socket.write(body);
    this.socket.uncork();
  }

  /** Ends the query on it (a timeout) and drops the connection: its answer may still come. */
  abort(outcome: Outcome): void {
    const finish = this.finish;
    this.finish = null;
    this.socket.destroy();
    finish?.(outcome);
  }

  private onData(d: Buffer): void {
    this.answering = true;
    if (this.reading === 'head') {
      const buf = this.pending ? Buffer.concat([this.pending, d]) : d;
      const end = buf.indexOf(HEADER_END);
      if (end < 0) {
        this.pending = buf;
        return;
      }
      this.pending = null;
      const text = buf.toString('latin1', 0, end + 2);
      this.status = Number(text.slice(9, 12));
      this.closeAfter = CLOSE.test(text);
      d = buf.subarray(end + 4);
      if (CHUNKED.test(text)) this.reading = 'chunked';
      else {
        this.reading = 'length';
        this.bodyLeft = Number(CONTENT_LENGTH.exec(text)?.[1] ?? 0);
      }
    }
    if (this.reading === 'chunked') {
      const body = this.pending ? Buffer.concat([this.pending, d]) : d;
      const end = chunkedBodyEnd(body);
      if (end === -2) return this.fail('a malformed chunked body');
      if (end === -1) return void (this.pending = body);
      this.pending = null;
      if (end < body.length) return this.fail('more bytes than the response announced');
    } else {
      this.bodyLeft -= d.length;
      if (this.bodyLeft > 0) return;
      if (this.bodyLeft < 0) return this.fail('more bytes than the response announced');
    }
    this.reading = 'head';
    const finish = this.finish;
    this.finish = null;
    this.reused = true;
    this.answering = false;
    if (this.closeAfter) this.socket.destroy();
    else this.idle(this);
    finish?.(outcomeOf(this.status), `HTTP ${this.status}`);
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.removed(this);
    if (!this.socket.destroyed) this.socket.destroy();
    const finish = this.finish;
    this.finish = null;
    if (!finish) return;
    // A server may close an idle keep-alive connection (its timeout, a replica leaving) as a
    // query goes out on it: closed with no byte of an answer, the query was not served, and
    // as a browser does (RFC 9112 9.3.1; inference has no side effects) it goes again, once,
    // on a new connection. On a new connection the same close is the server's failure.
    if (this.reused && !this.answering) this.resend(this.head!, this.body!, finish, this.deadline);
    else finish('errors', reason);
  }
}

/**
 * The load generator's cheapest sender: HTTP/1.1 written straight to keep-alive sockets, each
 * query's request head encoded once before the run, the answer's status and Content-Length read
 * from its head and the body skipped. On a 2-core machine the sender's CPU is taken from the
 * servers it measures (`npm run bench:cpu` compares it with undici and node:http). It reads
 * Content-Length and chunked answers, no pipelining, no redirects, no TLS: what a load
 * generator pointed at shardwise, HAProxy or the benchmarks' peers needs.
 */
export function rawHttpSender(url: URL, timeoutMs: number): Sender {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 80);
  const heads = new Map<string, Buffer>();
  const headOf = (q: { body: Buffer; headerLength: string }) => {
    const key = `${q.headerLength}/${q.body.length}`;
    let head = heads.get(key);
    if (!head) {
      head = Buffer.from(`POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/octet-stream\r\ninference-header-content-length: ${q.headerLength}\r\ncontent-length: ${q.body.length}\r\n\r\n`, 'latin1');
      heads.set(key, head);
    }
    return head;
  };
  const idle: Connection[] = [];
  let stopped = false;
  const all = new Set<Connection>();
  const waiting: { head: Buffer; body: Buffer; finish: Finish; deadline: number }[] = [];
  const onIdle = (c: Connection) => {
    const next = waiting.shift();
    if (next) c.send(next.head, next.body, next.finish, next.deadline);
    else idle.push(c);
  };
  const onGone = (c: Connection) => {
    all.delete(c);
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    const next = waiting.shift();
    if (next) dispatch(next.head, next.body, next.finish, next.deadline);
  };
  const connect = () => new Connection(host, port, onIdle, onGone, resend);
  const dispatch: Send = (head, body, finish, deadline) => {
    const c = idle.pop() ?? (all.size < MAX_CONNECTIONS ? connect() : null);
    if (!c) return void waiting.push({ head, body, finish, deadline });
    all.add(c);
    c.send(head, body, finish, deadline);
  };
  // On a new connection, so that a failure there is not retried again.
  const resend: Send = (head, body, finish, deadline) => {
    if (stopped) return finish('errors', 'the load generator closed');
    const c = connect();
    all.add(c);
    c.send(head, body, finish, deadline);
  };
  // One sweep for every deadline instead of a timer per query.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of all) if (c.finish && c.deadline <= now) c.abort('timeouts');
    while (waiting.length > 0 && waiting[0].deadline <= now) waiting.shift()!.finish('timeouts');
  }, Math.min(50, timeoutMs / 4));
  return {
    send(query, finish) {
      dispatch(headOf(query), query.body, finish, performance.now() + timeoutMs);
    },
    async close() {
      stopped = true;
      clearInterval(sweep);
      for (const c of all) c.socket.destroy();
      all.clear();
      idle.length = 0;
    },
  };
}
