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
  data: unknown[];
}

export interface OipRequest {
  id?: string;
  inputs: OipTensor[];
}

export interface OipResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  outputs: OipTensor[];
}

const INTEGER_TYPES = new Set(['INT64', 'INT32', 'UINT32', 'UINT64']);
const FLOAT_TYPES = new Set(['FP32', 'FP64']);

function flatten(data: unknown[]): unknown[] {
  return data.some(Array.isArray) ? (data.flat(Infinity) as unknown[]) : data;
}

function tensorValues(t: OipTensor, kinds: Set<string>, expectedType: string): unknown[] {
  if (!kinds.has(t.datatype)) throw badRequest(`tensor '${t.name}' has datatype ${JSON.stringify(t.datatype)}, expected ${expectedType}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw badRequest(`tensor '${t.name}' has shape ${JSON.stringify(t.shape)}; expected an array of non-negative integers`);
  }
  if (!Array.isArray(t.data)) throw badRequest(`tensor '${t.name}' has no 'data' array`);
  const values = flatten(t.data);
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw badRequest(`tensor '${t.name}' has ${values.length} values but shape ${JSON.stringify(t.shape)} holds ${count}`);
  return values;
}

function toFloat32(t: OipTensor): Float32Array {
  const values = tensorValues(t, FLOAT_TYPES, 'FP32');
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`tensor '${t.name}' has a non-finite or non-numeric value ${JSON.stringify(v)} at position ${i}`);
    out[i] = v;
  }
  return out;
}

function toInt32(t: OipTensor): Int32Array {
  const values = tensorValues(t, INTEGER_TYPES, 'INT64');
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw badRequest(`tensor '${t.name}' has ${JSON.stringify(v)} at position ${i}; expected an integer in 0..2147483647`);
    }
    out[i] = v;
  }
  return out;
}

/** Decodes an OIP request body into a Batch (shapes checked here; ranges by validateBatch). */
export function decodeRequest(body: unknown, config: ModelConfig): Batch {
  const req = body as OipRequest;
  if (typeof req !== 'object' || req === null || !Array.isArray(req.inputs)) {
    throw badRequest("request body must be a JSON object with an 'inputs' array", 'see the Open Inference Protocol v2 infer request');
  }
  const byName = new Map<string, OipTensor>();
  for (const t of req.inputs) {
    if (typeof t?.name !== 'string') throw badRequest("every input needs a 'name'");
    byName.set(t.name, t);
  }
  for (const name of byName.keys()) {
    if (!['dense', 'indices', 'offsets', 'per_sample_weights'].includes(name)) {
      throw badRequest(`unknown input tensor '${name}'`, "inputs are 'dense', 'indices', 'offsets' and optionally 'per_sample_weights'");
    }
  }
  const need = (name: string) => {
    const t = byName.get(name);
    if (!t) throw badRequest(`input tensor '${name}' is missing`, "inputs are 'dense' FP32 [B, num_dense], 'indices' INT64 [N], 'offsets' INT64 [B·T+1]");
    return t;
  };
  const denseT = need('dense');
  const dense = toFloat32(denseT);
  if (denseT.shape.length !== 2 || denseT.shape[1] !== config.numDense) {
    throw badRequest(`tensor 'dense' has shape ${JSON.stringify(denseT.shape)}, expected [B, ${config.numDense}]`);
  }
  const size = denseT.shape[0];
  const indicesT = need('indices');
  const offsetsT = need('offsets');
  if (indicesT.shape.length !== 1) throw badRequest(`tensor 'indices' has shape ${JSON.stringify(indicesT.shape)}, expected [N]`);
  if (offsetsT.shape.length !== 1) throw badRequest(`tensor 'offsets' has shape ${JSON.stringify(offsetsT.shape)}, expected [${size * config.tables.length + 1}]`);
  const weightsT = byName.get('per_sample_weights');
  return {
    size,
    dense,
    indices: toInt32(indicesT),
    offsets: toInt32(offsetsT),
    weights: weightsT ? toFloat32(weightsT) : null,
  };
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

/** Scores out of an OIP response body. */
export function decodeScores(body: unknown): Float32Array {
  const res = body as OipResponse;
  const out = res?.outputs?.find((o) => o.name === 'score');
  if (!out) throw badRequest("response has no 'score' output");
  return Float32Array.from(flatten(out.data) as number[]);
}
