import { native } from '../util/native.ts';

/**
 * Gathers and pools bags of rows. Bag b (0 ≤ b < numBags) is lookup range
 * offsets[bag]..offsets[bag+1] with bag = bagStart + b·bagStride; its pooled vector is written
 * to out[outStart + b·outStride ..+dim]. Strides let one call pool one table's bags out of a
 * sample-major (sample, table) CSR batch straight into the interaction's input rows.
 * An empty bag pools to zeros. `weights` (per lookup) is for sum pooling only, as in PyTorch.
 */
export type EmbeddingBagKernel = (
  table: Float32Array, dim: number, indices: Int32Array, offsets: Int32Array, weights: Float32Array | null,
  mean: boolean, numBags: number, bagStart: number, bagStride: number, out: Float32Array, outStart: number, outStride: number,
) => void;

/** Plain typed-array loops: the fallback where the addon is not built, and the test oracle. */
export const embeddingBagTs: EmbeddingBagKernel = (table, dim, indices, offsets, weights, mean, numBags, bagStart, bagStride, out, outStart, outStride) => {
  const rows = table.length / dim;
  for (let b = 0; b < numBags; b++) {
    const bag = bagStart + b * bagStride;
    const s = offsets[bag];
    const e = offsets[bag + 1];
    const o = outStart + b * outStride;
    out.fill(0, o, o + dim);
    for (let k = s; k < e; k++) {
      const id = indices[k];
      if (!(id >= 0 && id < rows)) throw new RangeError(`embeddingBag: id ${id} outside the table of ${rows} rows`);
      const r = id * dim;
      if (weights) {
        const w = weights[k];
        for (let j = 0; j < dim; j++) out[o + j] += w * table[r + j];
      } else {
        for (let j = 0; j < dim; j++) out[o + j] += table[r + j];
      }
    }
    if (mean && e > s) {
      const inv = Math.fround(1 / (e - s));
      for (let j = 0; j < dim; j++) out[o + j] *= inv;
    }
  }
};

export const embeddingBagNative: EmbeddingBagKernel | null = native ? native.embeddingBag : null;

/** The fastest kernel available here. */
export const embeddingBag: EmbeddingBagKernel = embeddingBagNative ?? embeddingBagTs;
export const embeddingBagBackend: 'native' | 'typescript' = embeddingBagNative ? 'native' : 'typescript';
