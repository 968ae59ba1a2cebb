/**
 * The internal transport's frame (version 1), little-endian, on a TCP stream:
 *
 *   u32 bodyBytes | u8 version | u8 type | u16 reserved (0) | u32 requestId | payload
 *
 * bodyBytes counts everything after itself (8 + payload). Request ids let one connection
 * carry many requests at once (pipelining); a response carries its request's id. Chosen over
 * gRPC and HTTP by measurement (`npm run bench:transport`).
 */
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 12;
/** Frames above this are refused as malformed; a batch of 4096 × 128 lookups × 26 tables is ~55 MiB. */
export const MAX_FRAME_BYTES = 256 << 20;

export const FrameType = {
  LOOKUP_REQUEST: 1,
  LOOKUP_RESPONSE: 2,
  DENSE_REQUEST: 3,
  DENSE_RESPONSE: 4,
  ERROR: 5,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];
const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export interface Frame {
  type: FrameTypeCode;
  requestId: number;
  payload: Buffer;
}

/** The header of a frame whose payload is `payloadBytes` long. */
export function frameHeader(type: FrameTypeCode, requestId: number, payloadBytes: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32LE(8 + payloadBytes, 0);
  h.writeUInt8(FRAME_VERSION, 4);
  h.writeUInt8(type, 5);
  h.writeUInt16LE(0, 6);
  h.writeUInt32LE(requestId >>> 0, 8);
  return h;
}

export class FrameError extends Error {}

/**
 * Cuts a byte stream into frames. Throws FrameError on a malformed header; the caller then
 * closes that connection (the stream can no longer be trusted) and logs the reason.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer, onFrame: (f: Frame) => void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const body = head.readUInt32LE(0);
      if (body < 8 || body > MAX_FRAME_BYTES) throw new FrameError(`frame of ${body} bytes is outside 8..${MAX_FRAME_BYTES}`);
      if (this.buffered < 4 + body) return;
      const frame = this.take(4 + body);
      const version = frame.readUInt8(4);
      if (version !== FRAME_VERSION) throw new FrameError(`frame version ${version}, expected ${FRAME_VERSION}`);
      const type = frame.readUInt8(5);
      if (!KNOWN_TYPES.has(type)) throw new FrameError(`unknown frame type ${type}`);
      onFrame({ type: type as FrameTypeCode, requestId: frame.readUInt32LE(8), payload: frame.subarray(FRAME_HEADER_BYTES) });
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}
