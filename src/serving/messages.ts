import { FrameError } from './frame.ts';

/**
 * Payloads of the internal frames. Every section is a run of 4-byte little-endian values;
 * decoding views each section in place when it is 4-byte aligned (the usual case) and copies
 * it into its own aligned array otherwise.
 *
 *   LOOKUP_REQUEST  u32 batch B | u32 pieces P | u32 lookups N | u32 flags (bit 0: weights; bit 1: raw rows)
 *                   | u32 idleSamples | i32 offsets[B·P + 1] (CSR over (sample, piece)) | i32 localIds[N] | f32 weights[N]?
 *   LOOKUP_RESPONSE u32 B | u32 P | u32 dim | f32 sums[B·P·dim]   (sum-pooled partials, per bag)
 *                   or, for raw rows, u32 N | u32 1 | u32 dim | f32 rows[N·dim] (one row per lookup, unweighted)
 *   DENSE_REQUEST   u32 B | f32 dense[B·numDense] | f32 pooled[B·T·dim]
 *   DENSE_RESPONSE  u32 B | f32 scores[B]
 *   ERROR           utf-8 JSON {code, message}
 */
export interface LookupRequest {
  batch: number;
  pieces: number;
  offsets: Int32Array;
  ids: Int32Array;
  weights: Float32Array | null;
  /**
   * Samples the router sent since its previous request to this shard that had no lookups
   * here (it skips such requests), so the shard counts every query in its utility window.
   */
  idleSamples: number;
  /**
   * Ask for one row per lookup instead of pooled partials (the router pools): the baseline of
   * FlexEMR's argument for pooling where the rows are, which `bench:network` measures.
   */
  raw?: boolean;
}

export interface LookupResponse {
  batch: number;
  pieces: number;
  dim: number;
  sums: Float32Array;
}

export interface DenseRequest {
  batch: number;
  dense: Float32Array;
  pooled: Float32Array;
}

const view = (a: Int32Array | Float32Array | Uint32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function u32s(...values: number[]): Buffer {
  const b = Buffer.allocUnsafe(4 * values.length);
  values.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
  return b;
}

/** Reads consecutive sections out of a payload, checking that each fits. */
class PayloadReader {
  private at = 0;
  constructor(private readonly p: Buffer, private readonly what: string) {}
  u32(): number {
    this.need(4);
    const v = this.p.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  private need(bytes: number) {
    if (this.at + bytes > this.p.length) throw new FrameError(`${this.what}: payload of ${this.p.length} bytes ends before byte ${this.at + bytes}`);
  }
  /** The next n 4-byte values as a view of the payload when aligned, else as a copy. */
  private section<A extends Int32Array | Float32Array>(n: number, Type: { new (b: ArrayBufferLike, offset?: number, length?: number): A }): A {
    this.need(4 * n);
    const offset = this.p.byteOffset + this.at;
    this.at += 4 * n;
    if (offset % 4 === 0) return new Type(this.p.buffer, offset, n);
    const copy = new Type(new ArrayBuffer(4 * n));
    new Uint8Array(copy.buffer).set(this.p.subarray(this.at - 4 * n, this.at));
    return copy;
  }
  i32(n: number): Int32Array {
    return this.section(n, Int32Array);
  }
  f32(n: number): Float32Array {
    return this.section(n, Float32Array);
  }
  end(): void {
    if (this.at !== this.p.length) throw new FrameError(`${this.what}: ${this.p.length - this.at} bytes left over after the payload`);
  }
}

export function encodeLookupRequest(r: LookupRequest): Buffer[] {
  const parts = [u32s(r.batch, r.pieces, r.ids.length, (r.weights ? 1 : 0) | (r.raw ? 2 : 0), r.idleSamples), view(r.offsets), view(r.ids)];
  if (r.weights) parts.push(view(r.weights));
  return parts;
}

export function decodeLookupRequest(p: Buffer): LookupRequest {
  const r = new PayloadReader(p, 'lookup request');
  const batch = r.u32();
  const pieces = r.u32();
  const n = r.u32();
  const flags = r.u32();
  const idleSamples = r.u32();
  const offsets = r.i32(batch * pieces + 1);
  const ids = r.i32(n);
  const weights = flags & 1 ? r.f32(n) : null;
  r.end();
  return { batch, pieces, offsets, ids, weights, idleSamples, raw: (flags & 2) !== 0 };
}

export function encodeLookupResponse(r: LookupResponse): Buffer[] {
  return [u32s(r.batch, r.pieces, r.dim), view(r.sums)];
}

export function decodeLookupResponse(p: Buffer): LookupResponse {
  const r = new PayloadReader(p, 'lookup response');
  const batch = r.u32();
  const pieces = r.u32();
  const dim = r.u32();
  const sums = r.f32(batch * pieces * dim);
  r.end();
  return { batch, pieces, dim, sums };
}

export function encodeDenseRequest(r: DenseRequest): Buffer[] {
  return [u32s(r.batch), view(r.dense), view(r.pooled)];
}

export function decodeDenseRequest(p: Buffer, numDense: number, tables: number, dim: number): DenseRequest {
  const r = new PayloadReader(p, 'dense request');
  const batch = r.u32();
  const dense = r.f32(batch * numDense);
  const pooled = r.f32(batch * tables * dim);
  r.end();
  return { batch, dense, pooled };
}

export function encodeScores(scores: Float32Array): Buffer[] {
  return [u32s(scores.length), view(scores)];
}

export function decodeScores(p: Buffer): Float32Array {
  const r = new PayloadReader(p, 'dense response');
  const scores = r.f32(r.u32());
  r.end();
  return scores;
}

export function encodeError(code: string, message: string): Buffer[] {
  return [Buffer.from(JSON.stringify({ code, message }))];
}

export function decodeError(p: Buffer): { code: string; message: string } {
  try {
    return JSON.parse(p.toString('utf8'));
  } catch {
    return { code: 'SW_SERVICE', message: 'unreadable error frame' };
  }
}
