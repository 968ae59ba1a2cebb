import type { ModelConfig } from './types.ts';
import { badRequest } from '../util/errors.ts';

/**
 * One inference batch in the layout of the public API: `offsets` is CSR over (sample, table)
 * in sample-major order, so bag (s, t) is indices[offsets[s·T + t] .. offsets[s·T + t + 1]].
 */
export interface Batch {
  size: number;
  /** [size, numDense] */
  dense: Float32Array;
  /** Row ids, flat, [N] */
  indices: Int32Array;
  /** [size · T + 1] */
  offsets: Int32Array;
  /** Optional per-lookup weights [N] (sum pooling only). */
  weights: Float32Array | null;
}

/**
 * Checks a batch against the model's shapes; the error names the tensor and the position.
 * Everything downstream (kernels, shards) trusts a batch that passed.
 */
export function validateBatch(config: ModelConfig, batch: Batch): void {
  const T = config.tables.length;
  const { size, dense, indices, offsets, weights } = batch;
  if (!Number.isInteger(size) || size < 1) throw badRequest(`batch size must be a positive integer, got ${size}`);
  if (dense.length !== size * config.numDense) {
    throw badRequest(`tensor 'dense' has ${dense.length} values, expected [${size}, ${config.numDense}] = ${size * config.numDense}`);
  }
  for (let i = 0; i < dense.length; i++) {
    if (!Number.isFinite(dense[i])) {
      throw badRequest(`tensor 'dense' has a non-finite value ${dense[i]} at [${Math.floor(i / config.numDense)}, ${i % config.numDense}]`);
    }
  }
  if (offsets.length !== size * T + 1) {
    throw badRequest(`tensor 'offsets' has ${offsets.length} values, expected batch·tables + 1 = ${size}·${T} + 1 = ${size * T + 1}`);
  }
  if (offsets[0] !== 0) throw badRequest(`tensor 'offsets' must start at 0, got ${offsets[0]}`);
  if (offsets[size * T] !== indices.length) {
    throw badRequest(`tensor 'offsets' ends at ${offsets[size * T]} but 'indices' has ${indices.length} values; the last offset must equal the number of indices`);
  }
  // Offsets first: a bad offset is the cause, and checking ids under it would blame an id.
  for (let bag = 0; bag < size * T; bag++) {
    if (offsets[bag + 1] < offsets[bag]) {
      throw badRequest(`tensor 'offsets' decreases at position ${bag + 1} (${offsets[bag]} → ${offsets[bag + 1]}); offsets must be non-decreasing`);
    }
  }
  for (let bag = 0; bag < size * T; bag++) {
    const s = offsets[bag];
    const e = offsets[bag + 1];
    const t = bag % T;
    const rows = config.tables[t].rows;
    for (let k = s; k < e; k++) {
      const id = indices[k];
      if (!(id >= 0 && id < rows)) {
        throw badRequest(`tensor 'indices' has id ${id} at position ${k} (sample ${Math.floor(bag / T)}, table ${t}); table ${t} has rows 0..${rows - 1}`);
      }
    }
  }
  if (weights) {
    if (config.poolingMode !== 'sum') throw badRequest(`tensor 'per_sample_weights' needs sum pooling; this model pools by ${config.poolingMode}`);
    if (weights.length !== indices.length) {
      throw badRequest(`tensor 'per_sample_weights' has ${weights.length} values, expected one per index (${indices.length})`);
    }
    for (let i = 0; i < weights.length; i++) {
      if (!Number.isFinite(weights[i])) throw badRequest(`tensor 'per_sample_weights' has a non-finite value at position ${i}`);
    }
  }
}

/** Several batches as one (samples in order); offsets are shifted, missing weights become 1. */
export function concatBatches(batches: Batch[], numDense: number, tables: number): Batch {
  const size = batches.reduce((s, b) => s + b.size, 0);
  const n = batches.reduce((s, b) => s + b.indices.length, 0);
  const dense = new Float32Array(size * numDense);
  const indices = new Int32Array(n);
  const offsets = new Int32Array(size * tables + 1);
  const weights = batches.some((b) => b.weights) ? new Float32Array(n).fill(1) : null;
  let samples = 0;
  let lookups = 0;
  for (const b of batches) {
    dense.set(b.dense, samples * numDense);
    indices.set(b.indices, lookups);
    if (b.weights) weights!.set(b.weights, lookups);
    const base = samples * tables;
    for (let i = 1; i <= b.size * tables; i++) offsets[base + i] = b.offsets[i] + lookups;
    samples += b.size;
    lookups += b.indices.length;
  }
  return { size, dense, indices, offsets, weights };
}
