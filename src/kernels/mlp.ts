import type { Linear } from '../model/types.ts';

export type Activation = 'relu' | 'sigmoid';

/** A chain of Linear layers, ReLU after each but the last, which gets `finalActivation`. */
export interface MlpSpec {
  layers: Linear[];
  finalActivation: Activation;
}

/** Runs an MLP on a row-major [batch, in] input and returns [batch, out]. */
export interface Mlp {
  readonly backend: MlpBackend;
  readonly inWidth: number;
  readonly outWidth: number;
  run(input: Float32Array, batch: number): Promise<Float32Array>;
  close(): Promise<void>;
}

export type MlpBackend = 'onnxruntime' | 'typescript';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * y = act(x · Wᵀ + b) with typed-array loops. Four samples share each weight row load,
 * which is what V8 can vectorize least badly; the fallback and the oracle for onnxruntime.
 */
export function linearForward(x: Float32Array, batch: number, layer: Linear, act: Activation | 'none', y: Float32Array): void {
  const { in: n, out: m, weight: w, bias } = layer;
  let s = 0;
  for (; s + 4 <= batch; s += 4) {
    const x0 = s * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n;
    for (let o = 0; o < m; o++) {
      const wo = o * n;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let k = 0; k < n; k++) {
        const wk = w[wo + k];
        a0 += x[x0 + k] * wk;
        a1 += x[x1 + k] * wk;
        a2 += x[x2 + k] * wk;
        a3 += x[x3 + k] * wk;
      }
      const b = bias[o];
      y[s * m + o] = a0 + b;
      y[(s + 1) * m + o] = a1 + b;
      y[(s + 2) * m + o] = a2 + b;
      y[(s + 3) * m + o] = a3 + b;
    }
  }
  for (; s < batch; s++) {
    const xs = s * n;
    for (let o = 0; o < m; o++) {
      const wo = o * n;
      let a = 0;
      for (let k = 0; k < n; k++) a += x[xs + k] * w[wo + k];
      y[s * m + o] = a + bias[o];
    }
  }
  if (act === 'relu') {
    for (let i = 0; i < batch * m; i++) if (y[i] < 0) y[i] = 0;
  } else if (act === 'sigmoid') {
    for (let i = 0; i < batch * m; i++) y[i] = sigmoid(y[i]);
  }
}

export function activationOf(spec: MlpSpec, i: number): Activation {
  return i === spec.layers.length - 1 ? spec.finalActivation : 'relu';
}

export class TypeScriptMlp implements Mlp {
  readonly backend = 'typescript' as const;
  readonly inWidth: number;
  readonly outWidth: number;

  constructor(private readonly spec: MlpSpec) {
    this.inWidth = spec.layers[0].in;
    this.outWidth = spec.layers[spec.layers.length - 1].out;
  }

  runSync(input: Float32Array, batch: number): Float32Array {
    let x = input;
    this.spec.layers.forEach((layer, i) => {
      const y = new Float32Array(batch * layer.out);
      linearForward(x, batch, layer, activationOf(this.spec, i), y);
      x = y;
    });
    return x;
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    return this.runSync(input, batch);
  }

  async close(): Promise<void> {}
}
