import * as fs from 'node:fs';
import type { Batch } from '../model/batch.ts';
import { traceError } from '../util/errors.ts';

/**
 * The shardwise trace format (version 1), little-endian, streamed: a header, then one record
 * per query, each self-delimiting so a reader never needs the whole file in memory.
 *
 *   header  : magic "SWTRACE1" (8 bytes) | u32 version | u32 numDense | u32 numTables
 *             | u32 flags (bit 0: per-lookup weights) | u32 rows[numTables]
 *   record  : u32 bodyBytes | u32 batch B | u32 lookups N | f32 dense[B·numDense]
 *             | u32 lengths[B·numTables] (sample-major bag sizes) | u32 ids[N] | f32 weights[N] if flagged
 */
export const TRACE_MAGIC = 'SWTRACE1';
export const TRACE_VERSION = 1;
const FLAG_WEIGHTS = 1;

export interface TraceHeader {
  numDense: number;
  rows: number[];
  hasWeights: boolean;
}

export class TraceWriter {
  private readonly fd: number;
  private queries = 0;

  constructor(readonly file: string, readonly header: TraceHeader) {
    this.fd = fs.openSync(file, 'w');
    const T = header.rows.length;
    const buf = Buffer.alloc(8 + 16 + 4 * T);
    buf.write(TRACE_MAGIC, 0, 'latin1');
    buf.writeUInt32LE(TRACE_VERSION, 8);
    buf.writeUInt32LE(header.numDense, 12);
    buf.writeUInt32LE(T, 16);
    buf.writeUInt32LE(header.hasWeights ? FLAG_WEIGHTS : 0, 20);
    header.rows.forEach((r, i) => buf.writeUInt32LE(r, 24 + 4 * i));
    fs.writeSync(this.fd, buf);
  }

  write(batch: Batch): void {
    const T = this.header.rows.length;
    const B = batch.size;
    const N = batch.indices.length;
    const floatsW = this.header.hasWeights ? N : 0;
    const body = 8 + 4 * (B * this.header.numDense + B * T + N + floatsW);
    const buf = Buffer.alloc(4 + body);
    buf.writeUInt32LE(body, 0);
    buf.writeUInt32LE(B, 4);
    buf.writeUInt32LE(N, 8);
    let at = 12;
    const put = (arr: Float32Array | Int32Array | Uint32Array) => {
      buf.set(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), at);
      at += arr.byteLength;
    };
    put(batch.dense);
    const lengths = new Uint32Array(B * T);
    for (let i = 0; i < B * T; i++) lengths[i] = batch.offsets[i + 1] - batch.offsets[i];
    put(lengths);
    put(batch.indices);
    if (this.header.hasWeights) put(batch.weights!);
    fs.writeSync(this.fd, buf);
    this.queries++;
  }

  close(): number {
    fs.closeSync(this.fd);
    return this.queries;
  }
}

const READ_CHUNK = 4 << 20;

/** Streams a trace's queries. Reads 4 MiB at a time; memory stays bounded for any file size. */
export class TraceReader {
  readonly header: TraceHeader;
  private readonly fd: number;
  private readonly size: number;
  private pos: number;
  private buf = Buffer.alloc(READ_CHUNK);
  private bufStart = 0;
  private bufLen = 0;

  constructor(readonly file: string) {
    try {
      this.fd = fs.openSync(file, 'r');
    } catch (e) {
      throw traceError(file, `cannot be opened (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'make one with `shardwise trace`');
    }
    this.size = fs.fstatSync(this.fd).size;
    const head = this.bytes(0, Math.min(24, this.size));
    if (head.length < 24 || head.toString('latin1', 0, 8) !== TRACE_MAGIC) {
      throw traceError(file, 'is not a shardwise trace (bad magic)', 'make one with `shardwise trace`');
    }
    const version = head.readUInt32LE(8);
    if (version !== TRACE_VERSION) throw traceError(file, `has trace version ${version}; this build reads version ${TRACE_VERSION}`);
    const numDense = head.readUInt32LE(12);
    const T = head.readUInt32LE(16);
    const flags = head.readUInt32LE(20);
    if (24 + 4 * T > this.size) throw traceError(file, `header names ${T} tables but the file ends at byte ${this.size}`);
    const rowsBuf = this.bytes(24, 4 * T);
    const rows = Array.from({ length: T }, (_, i) => rowsBuf.readUInt32LE(4 * i));
    this.header = { numDense, rows, hasWeights: (flags & FLAG_WEIGHTS) !== 0 };
    this.pos = 24 + 4 * T;
  }

  /** Bytes [at, at+n) of the file; a view into the read buffer, valid until the next call. */
  private bytes(at: number, n: number): Buffer {
    if (at < this.bufStart || at + n > this.bufStart + this.bufLen) {
      if (n > this.buf.length) this.buf = Buffer.alloc(n);
      this.bufStart = at;
      this.bufLen = fs.readSync(this.fd, this.buf, 0, this.buf.length, at);
      if (this.bufLen < n) throw traceError(this.file, `is truncated: needed ${n} bytes at offset ${at}, the file ends at ${this.size}`);
    }
    return this.buf.subarray(at - this.bufStart, at - this.bufStart + n);
  }

  /** The next query, or null at the end of the file. */
  next(): Batch | null {
    if (this.pos >= this.size) return null;
    const at = this.pos;
    const body = this.bytes(at, 4).readUInt32LE(0);
    const rec = this.bytes(at + 4, body);
    const B = rec.readUInt32LE(0);
    const N = rec.readUInt32LE(4);
    const T = this.header.rows.length;
    const D = this.header.numDense;
    const expect = 8 + 4 * (B * D + B * T + N + (this.header.hasWeights ? N : 0));
    if (body !== expect) throw traceError(this.file, `record at offset ${at} is ${body} bytes, but batch ${B} with ${N} lookups needs ${expect}`);
    // Copy out of the shared read buffer: a Batch outlives the next read.
    const copy = new Uint8Array(body - 8);
    copy.set(rec.subarray(8));
    let o = 0;
    const dense = new Float32Array(copy.buffer, o, B * D);
    o += B * D * 4;
    const lengths = new Uint32Array(copy.buffer, o, B * T);
    o += B * T * 4;
    const indices = new Int32Array(copy.buffer, o, N);
    o += N * 4;
    const weights = this.header.hasWeights ? new Float32Array(copy.buffer, o, N) : null;
    const offsets = new Int32Array(B * T + 1);
    for (let i = 0; i < B * T; i++) offsets[i + 1] = offsets[i] + lengths[i];
    if (offsets[B * T] !== N) throw traceError(this.file, `record at offset ${at}: bag sizes add up to ${offsets[B * T]}, not ${N}`);
    this.pos = at + 4 + body;
    return { size: B, dense, indices, offsets, weights };
  }

  *[Symbol.iterator](): Generator<Batch> {
    for (let b = this.next(); b; b = this.next()) yield b;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Up to `limit` queries of a trace, in memory (the load generator replays them). */
export function readQueries(file: string, limit = Infinity): { header: TraceHeader; queries: Batch[] } {
  const reader = new TraceReader(file);
  const queries: Batch[] = [];
  try {
    for (const q of reader) {
      queries.push(q);
      if (queries.length >= limit) break;
    }
  } finally {
    reader.close();
  }
  return { header: reader.header, queries };
}
