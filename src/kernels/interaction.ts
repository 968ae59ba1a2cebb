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
      let k = 0;
      // Four dot products at once: four independent chains of adds (a single chain waits out
      // every add's latency; it made this a third of the dense half's CPU at RM1's batch 8) and
      // each value of row i loaded once for the four.
      for (; k + 4 <= i; k += 4) {
        const v0 = base + k * dim;
        const v1 = v0 + dim;
        const v2 = v1 + dim;
        const v3 = v2 + dim;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        for (let j = 0; j < dim; j++) {
          const x = vectors[vi + j];
          a0 += x * vectors[v0 + j];
          a1 += x * vectors[v1 + j];
          a2 += x * vectors[v2 + j];
          a3 += x * vectors[v3 + j];
        }
        out[o++] = a0;
        out[o++] = a1;
        out[o++] = a2;
        out[o++] = a3;
      }
      for (; k < i; k++) {
        const vk = base + k * dim;
        let acc = 0;
        for (let j = 0; j < dim; j++) acc += vectors[vi + j] * vectors[vk + j];
        out[o++] = acc;
      }
    }
  }
}
