import type { Batch } from '../model/batch.ts';
import type { ModelConfig } from '../model/types.ts';
import { badRequest } from '../util/errors.ts';

/**
 * Open Inference Protocol v2 (KServe / Triton) JSON bodies for DLRM inference:
 * inputs `dense` FP32 [B, num_dense], `indices` INT64 [N], `offsets` INT64 [B·T + 1],
 * optional `per_sample_weights` FP32 [N]; output `score` FP32 [B, 1].
 */
export interface OipTensor {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  /** Triton's binary tensor extension: the values follow the JSON header as raw bytes. */
  parameters?: { binary_data_size?: number; binary_data?: boolean };
}

export interface OipRequest {
  id?: string;
  inputs: OipTensor[];
  outputs?: { name: string; parameters?: { binary_data?: boolean } }[];
  parameters?: { binary_data_output?: boolean };
}

export interface OipResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  outputs: OipTensor[];
}

const INTEGER_TYPES = new Set(['INT64', 'INT32']);
const FLOAT_TYPES = new Set(['FP32']);
const BYTES_PER: Record<string, number> = { FP32: 4, INT32: 4, INT64: 8 };

function flatten(data: unknown[]): unknown[] {
  return data.some(Array.isArray) ? (data.flat(Infinity) as unknown[]) : data;
}

/** Where each tensor's values come from: its JSON `data`, or its slice of the binary section. */
type Source = { json: unknown[] } | { bytes: Buffer };

/**
 * Bounds a request may not exceed, checked against the declared shapes before any tensor is
 * allocated (a shape of [4294967295] must not reserve 16 GB).
 */
export interface RequestLimits {
  /** Samples in one request. */
  maxBatch: number;
  /** Lookups (ids) in one request. */
  maxIds: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { maxBatch: 4096, maxIds: 1 << 22 };

/** The tensor's element count from its declared shape, refusing a malformed shape or one over `maxElements`. */
function checkShape(t: OipTensor, maxElements: number, limit: string): number {
  const shape: unknown = t.shape;
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 4 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw badRequest(`tensor '${t.name}' has shape ${JSON.stringify(shape) ?? String(shape)}; expected an array of 1 to 4 non-negative integers`);
  }
  let count = 1;
  for (const d of shape as number[]) {
    count *= d;
    if (count > maxElements) throw badRequest(`tensor '${t.name}' has shape ${JSON.stringify(shape)}, over the server's limit of ${limit}`, 'send smaller batches');
  }
  return count;
}

function checkType(t: OipTensor, kinds: Set<string>, expectedType: string): void {
  if (!kinds.has(t.datatype)) throw badRequest(`tensor '${t.name}' has datatype ${JSON.stringify(t.datatype) ?? String(t.datatype)}, expected ${expectedType}`);
}

function jsonValues(t: OipTensor, src: { json: unknown[] }, count: number): unknown[] {
  const values = flatten(src.json);
  if (values.length !== count) throw badRequest(`tensor '${t.name}' has ${values.length} values but shape ${JSON.stringify(t.shape)} holds ${count}`);
  return values;
}

function binaryBytes(t: OipTensor, src: { bytes: Buffer }, count: number): Buffer {
  const want = count * BYTES_PER[t.datatype];
  if (src.bytes.length !== want) throw badRequest(`tensor '${t.name}' has ${src.bytes.length} binary bytes but ${t.datatype} ${JSON.stringify(t.shape)} needs ${want}`);
  return src.bytes;
}

/** The bytes as a typed array: a view when 4-byte aligned (the HTTP server places bodies so), else a copy. */
function view<T extends Float32Array | Int32Array>(b: Buffer, Type: { new (buffer: ArrayBuffer, offset: number, length: number): T; new (length: number): T }): T {
  if (b.byteOffset % 4 === 0) return new Type(b.buffer as ArrayBuffer, b.byteOffset, b.length / 4);
  const out = new Type(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

function toFloat32(t: OipTensor, src: Source, count: number): Float32Array {
  checkType(t, FLOAT_TYPES, 'FP32');
  let out: Float32Array;
  if ('bytes' in src) {
    out = view(binaryBytes(t, src, count), Float32Array);
  } else {
    const values = jsonValues(t, src, count);
    out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const v = values[i];
      if (typeof v !== 'number') throw badRequest(`tensor '${t.name}' has a non-numeric value ${JSON.stringify(v)} at position ${i}`);
      out[i] = v;
    }
  }
  for (let i = 0; i < count; i++) {
    if (!Number.isFinite(out[i])) throw badRequest(`tensor '${t.name}' has a non-finite value ${out[i]} at position ${i}`);
  }
  return out;
}

const badId = (t: OipTensor, v: unknown, i: number) =>
  badRequest(`tensor '${t.name}' has ${typeof v === 'bigint' ? v.toString() : JSON.stringify(v)} at position ${i}; expected an integer in 0..2147483647`);

function toInt32(t: OipTensor, src: Source, count: number): Int32Array {
  checkType(t, INTEGER_TYPES, 'INT64');
  if ('bytes' in src) {
    const b = binaryBytes(t, src, count);
    if (t.datatype === 'INT32') {
      const out = view(b, Int32Array);
      for (let i = 0; i < count; i++) if (out[i] < 0) throw badId(t, out[i], i);
      return out;
    }
    // INT64 little-endian: the high word must be 0 and the low word a non-negative int32. Read
    // as 32-bit words of a typed array: Buffer.readInt32LE's bounds checks cost more than the loop.
    const words = view(b, Int32Array);
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const lo = words[2 * i];
      if (words[2 * i + 1] !== 0 || lo < 0) throw badId(t, b.readBigInt64LE(8 * i), i);
      out[i] = lo;
    }
    return out;
  }
  const out = new Int32Array(count);
  const values = jsonValues(t, src, count);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw badId(t, v, i);
    out[i] = v;
  }
  return out;
}

const INPUT_NAMES = new Set(['dense', 'indices', 'offsets', 'per_sample_weights']);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The request's own fields besides its inputs: `id` a string, `outputs` an array naming `score`, `parameters` an object. */
function checkEnvelope(req: Record<string, unknown>): void {
  if (req.id !== undefined && typeof req.id !== 'string') throw badRequest(`request 'id' must be a string, got ${typeof req.id}`);
  if (req.parameters !== undefined && !isObject(req.parameters)) throw badRequest("request 'parameters' must be a JSON object");
  if (req.outputs === undefined) return;
  if (!Array.isArray(req.outputs)) throw badRequest("request 'outputs' must be an array of {name: 'score'}");
  for (const o of req.outputs) {
    if (!isObject(o) || o.name !== 'score') throw badRequest(`request 'outputs' names ${JSON.stringify(isObject(o) ? o.name : o) ?? 'nothing'}; this model's only output is 'score'`);
    if (o.parameters !== undefined && !isObject(o.parameters)) throw badRequest("an output's 'parameters' must be a JSON object");
  }
}

/**
 * Decodes an OIP request into a Batch (shapes checked here; id ranges by validateBatch).
 * `binary` is the section after the JSON header under Triton's binary tensor extension:
 * inputs with parameters.binary_data_size take their bytes from it, in input order.
 * Every declared shape is checked against `limits` and against the values actually sent
 * before a tensor is allocated.
 */
export function decodeRequest(body: unknown, config: ModelConfig, binary?: Buffer, limits: RequestLimits = DEFAULT_REQUEST_LIMITS): Batch {
  if (!isObject(body) || !Array.isArray(body.inputs)) {
    throw badRequest("request body must be a JSON object with an 'inputs' array", 'see the Open Inference Protocol v2 infer request');
  }
  checkEnvelope(body);
  const byName = new Map<string, { t: OipTensor; src: Source }>();
  let at = 0;
  for (const t of body.inputs as OipTensor[]) {
    if (!isObject(t) || typeof t.name !== 'string') throw badRequest("every input must be an object with a 'name'");
    if (!INPUT_NAMES.has(t.name)) {
      throw badRequest(`unknown input tensor '${t.name}'`, "inputs are 'dense', 'indices', 'offsets' and optionally 'per_sample_weights'");
    }
    if (byName.has(t.name)) throw badRequest(`input tensor '${t.name}' is given twice`);
    if (t.parameters !== undefined && !isObject(t.parameters)) throw badRequest(`tensor '${t.name}' has 'parameters' that is not a JSON object`);
    const size = t.parameters?.binary_data_size;
    let src: Source;
    if (size !== undefined) {
      if (!binary) throw badRequest(`tensor '${t.name}' has binary_data_size but the request has no binary section`, 'send the Inference-Header-Content-Length header');
      if (!Number.isSafeInteger(size) || size < 0 || at + size > binary.length) {
        throw badRequest(`tensor '${t.name}' claims ${JSON.stringify(size)} binary bytes at offset ${at}; the binary section has ${binary.length}`);
      }
      src = { bytes: binary.subarray(at, at + size) };
      at += size;
    } else {
      if (!Array.isArray(t.data)) throw badRequest(`tensor '${t.name}' has no 'data' array`);
      src = { json: t.data };
    }
    byName.set(t.name, { t, src });
  }
  if (binary && at !== binary.length) throw badRequest(`the binary section has ${binary.length} bytes but the inputs claim ${at}`);
  const need = (name: string) => {
    const e = byName.get(name);
    if (!e) throw badRequest(`input tensor '${name}' is missing`, "inputs are 'dense' FP32 [B, num_dense], 'indices' INT64 [N], 'offsets' INT64 [B·T+1]");
    return e;
  };
  const T = config.tables.length;
  const denseE = need('dense');
  const denseCount = checkShape(denseE.t, limits.maxBatch * config.numDense, `${limits.maxBatch} samples`);
  if (denseE.t.shape.length !== 2 || denseE.t.shape[1] !== config.numDense) {
    throw badRequest(`tensor 'dense' has shape ${JSON.stringify(denseE.t.shape)}, expected [B, ${config.numDense}]`);
  }
  const size = denseE.t.shape[0];
  const indicesE = need('indices');
  const offsetsE = need('offsets');
  const weightsE = byName.get('per_sample_weights');
  const idCount = checkShape(indicesE.t, limits.maxIds, `${limits.maxIds} ids`);
  const offsetCount = checkShape(offsetsE.t, limits.maxBatch * T + 1, `${limits.maxBatch} samples`);
  const weightCount = weightsE ? checkShape(weightsE.t, limits.maxIds, `${limits.maxIds} ids`) : 0;
  if (indicesE.t.shape.length !== 1) throw badRequest(`tensor 'indices' has shape ${JSON.stringify(indicesE.t.shape)}, expected [N]`);
  if (offsetsE.t.shape.length !== 1) throw badRequest(`tensor 'offsets' has shape ${JSON.stringify(offsetsE.t.shape)}, expected [${size * T + 1}]`);
  return {
    size,
    dense: toFloat32(denseE.t, denseE.src, denseCount),
    indices: toInt32(indicesE.t, indicesE.src, idCount),
    offsets: toInt32(offsetsE.t, offsetsE.src, offsetCount),
    weights: weightsE ? toFloat32(weightsE.t, weightsE.src, weightCount) : null,
  };
}

/** Whether the client asked for the score as binary (Triton's binary_data_output / binary_data); the envelope is checked by decodeRequest. */
export function wantsBinaryOutput(body: unknown): boolean {
  const req = body as OipRequest;
  return req.parameters?.binary_data_output === true || (req.outputs?.some((o) => o.parameters?.binary_data === true) ?? false);
}

/** Encodes a Batch as an OIP request body (the load generator and tests send these). */
export function encodeRequest(batch: Batch, numDense: number, id?: string): OipRequest {
  const inputs: OipTensor[] = [
    { name: 'dense', datatype: 'FP32', shape: [batch.size, numDense], data: Array.from(batch.dense) },
    { name: 'indices', datatype: 'INT64', shape: [batch.indices.length], data: Array.from(batch.indices) },
    { name: 'offsets', datatype: 'INT64', shape: [batch.offsets.length], data: Array.from(batch.offsets) },
  ];
  if (batch.weights) inputs.push({ name: 'per_sample_weights', datatype: 'FP32', shape: [batch.weights.length], data: Array.from(batch.weights) });
  return id === undefined ? { inputs } : { id, inputs };
}

export function encodeResponse(modelName: string, scores: Float32Array, id?: string): OipResponse {
  const res: OipResponse = {
    model_name: modelName,
    outputs: [{ name: 'score', datatype: 'FP32', shape: [scores.length, 1], data: Array.from(scores) }],
  };
  if (id !== undefined) res.id = id;
  return res;
}

/**
 * A request under Triton's binary tensor extension: the JSON header (its length goes in the
 * Inference-Header-Content-Length HTTP header) followed by the raw tensors. INT32 ids keep it
 * small; the load generator sends these.
 */
export function encodeBinaryRequest(batch: Batch, numDense: number): { body: Buffer; headerLength: number } {
  const tensors: [string, string, number[], Float32Array | Int32Array][] = [
    ['dense', 'FP32', [batch.size, numDense], batch.dense],
    ['indices', 'INT32', [batch.indices.length], batch.indices],
    ['offsets', 'INT32', [batch.offsets.length], batch.offsets],
  ];
  if (batch.weights) tensors.push(['per_sample_weights', 'FP32', [batch.weights.length], batch.weights]);
  const header = Buffer.from(
    JSON.stringify({
      inputs: tensors.map(([name, datatype, shape, a]) => ({ name, datatype, shape, parameters: { binary_data_size: a.byteLength } })),
      parameters: { binary_data_output: true },
    }),
  );
  const parts = [header, ...tensors.map(([, , , a]) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))];
  return { body: Buffer.concat(parts), headerLength: header.length };
}

/** A binary-extension response: the JSON header then the score bytes. */
export function encodeBinaryResponse(modelName: string, scores: Float32Array, id?: string): { body: Buffer; headerLength: number } {
  const res: OipResponse = {
    model_name: modelName,
    outputs: [{ name: 'score', datatype: 'FP32', shape: [scores.length, 1], parameters: { binary_data_size: scores.byteLength } }],
  };
  if (id !== undefined) res.id = id;
  const header = Buffer.from(JSON.stringify(res));
  return { body: Buffer.concat([header, Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength)]), headerLength: header.length };
}

/** Scores out of an OIP response body (JSON, or binary with its header length). */
export function decodeBinaryScores(body: Buffer, headerLength: number): Float32Array {
  const out = new Float32Array((body.length - headerLength) / 4);
  new Uint8Array(out.buffer).set(body.subarray(headerLength));
  return out;
}

/** Scores out of an OIP response body. */
export function decodeScores(body: unknown): Float32Array {
  const res = body as OipResponse;
  const out = res?.outputs?.find((o) => o.name === 'score');
  if (!out) throw badRequest("response has no 'score' output");
  return Float32Array.from(flatten(out.data ?? []) as number[]);
}
