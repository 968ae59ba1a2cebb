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
