import type * as http from 'node:http';
import { badRequest, bodyTooLarge } from '../util/errors.ts';

/** The first buffer for a body; it doubles as bytes arrive, so a declared Content-Length reserves nothing up front. */
const INITIAL_BODY_BYTES = 64 << 10;

/** A length header as a plain decimal integer: "+326", " 326", "3.26e2" and "0x146" are refused, not coerced. */
export function parseLengthHeader(name: string, value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[0-9]{1,15}$/.test(value)) {
    throw badRequest(`header ${name} is ${JSON.stringify(value)}; expected a decimal byte count`);
  }
  return Number(value);
}

/** The 413 for a body over the limit, declared or sent. */
export const bodyOverLimit = (maxBytes: number) => bodyTooLarge(`request body is over ${maxBytes} bytes`, 'send smaller batches');

/**
 * Reads a body into one buffer (chunks copied in, no concat), growing it geometrically up to
 * the declared Content-Length, so a client that declares 64 MiB and sends nothing holds 64 KiB.
 * `pad` bytes go in front so that a binary section after a JSON header of that length starts
 * 4-byte aligned: the tensors then decode as views instead of copies. A body over `maxBytes`
 * (declared or sent) is refused with 413; the caller closes the connection after answering.
 */
export function readBody(req: http.IncomingMessage, maxBytes: number, pad: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooBig = () => {
      req.removeAllListeners('data');
      req.pause();
      reject(bodyOverLimit(maxBytes));
    };
    let declared: number | undefined;
    try {
      declared = parseLengthHeader('Content-Length', req.headers['content-length']);
    } catch (e) {
      return reject(e);
    }
    if (declared !== undefined && declared > maxBytes) return tooBig();
    const limit = declared ?? maxBytes;
    let body = Buffer.allocUnsafe(Math.min(limit, INITIAL_BODY_BYTES) + pad).subarray(pad);
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (size + c.length > maxBytes) return tooBig();
      if (size + c.length > body.length) {
        const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(2 * body.length, size + c.length)) + pad).subarray(pad);
        body.copy(grown, 0, 0, size);
        body = grown;
      }
      c.copy(body, size);
      size += c.length;
    });
    req.on('end', () => resolve(body.subarray(0, size)));
    // The connection closed (client gone, or cut by a drain) before the body ended: nobody is
    // left to answer, and it is no fault of the server's.
    const gone = () => reject(badRequest('the connection closed before the request body ended'));
    req.on('error', gone);
    req.on('close', () => req.complete || gone());
  });
}

/**
 * JSON.parse with a size and a nesting limit enforced before parsing: one pass over the bytes
 * counts bracket depth outside strings, so a 10 MB `[[[[…` body is refused in milliseconds
 * instead of recursing through V8's parser (and JSON.stringify of an echoed `id`).
 */
export function parseJsonBounded(bytes: Buffer, maxBytes: number, maxDepth: number): unknown {
  if (bytes.length > maxBytes) {
    throw bodyTooLarge(`the request's JSON is ${bytes.length} bytes, over the limit of ${maxBytes}`, 'send tensors with the binary tensor extension (Inference-Header-Content-Length), or smaller batches');
  }
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw badRequest(`request JSON nests deeper than ${maxDepth} levels (at byte ${i})`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw badRequest(`request JSON does not parse: ${(e as Error).message}`);
  }
}
