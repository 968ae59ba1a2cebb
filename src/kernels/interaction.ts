import type { InteractionKind } from '../model/types.ts';

/**
 * DLRM's feature interaction for a batch. `vectors` is [batch, n, dim]: per sample the
 * bottom-MLP output followed by the n−1 pooled table vectors. `dot` emits the bottom-MLP
 * output then the strictly-lower triangle of the n×n Gram matrix in DLRM's order
 * (i = 1..n−1, j = 0..i−1); `cat` emits all n vectors. Output is [batch, width].
 */
export function interact(kind: InteractionKind, vectors: Float32Array, batch: number, n: number, dim: number, out: Float32Array): void {
  const inRow = n * dim;
  if (kind === 'cat') {
    out.set(vectors.subarray(0, batch * inRow));
    return;
  }
  const width = dim + (n * (n - 1)) / 2;
  for (let s = 0; s < batch; s++) {
    const base = s * inRow;
    let o = s * width;
    for (let j = 0; j < dim; j++) out[o++] = vectors[base + j];
    for (let i = 1; i < n; i++) {
      const vi = base + i * dim;
      for (let k = 0; k < i; k++) {
        const vk = base + k * dim;
        let acc = 0;
        for (let j = 0; j < dim; j++) acc += vectors[vi + j] * vectors[vk + j];
        out[o++] = acc;
      }
    }
  }
}
