import type { ModelConfig } from './types.ts';
import { expectedTensors } from './manifest.ts';
import { writeModel, type TensorProducer } from './store.ts';
import { Rng, subSeed } from '../util/rng.ts';
import type { Manifest } from './manifest.ts';

/**
 * Uniform init with DLRM's variances for the MLPs: weights Glorot (std √(2/(in+out))), biases
 * std √(1/out). Embedding rows are U(±0.5/√pooling) instead of DLRM's U(±√(1/rows)): a pooled
 * vector's entries then have std ≈ 0.3 whatever the pooling factor, so dot interactions are
 * O(1) (scores neither saturate nor ignore the tables) and a wrong row changes the score
 * visibly, which parity tests rely on.
 */
function initScale(name: string, shape: number[], config: ModelConfig): number {
  if (name.startsWith('emb.')) return 0.5 / Math.sqrt(config.tables[+name.split('.')[1]].poolingFactor);
  if (name.endsWith('.weight')) return Math.sqrt(6 / (shape[0] + shape[1]));
  return Math.sqrt(3 / shape[0]);
}

/**
 * Writes a model with deterministic weights: each tensor has its own stream seeded from
 * (seed, tensor index), so the same seed and shapes give identical files anywhere.
 */
export function generateModel(dir: string, config: ModelConfig, seed: number, onTensor?: (name: string) => void): Manifest {
  const tensors = expectedTensors(config);
  const streams = new Map<string, { rng: Rng; scale: number }>();
  tensors.forEach((t, i) => streams.set(t.name, { rng: new Rng(subSeed(seed, i)), scale: initScale(t.name, t.shape, config) }));
  // The writer asks for each tensor's chunks in order, so one stream per tensor stays in step.
  const produce: TensorProducer = (name, out) => {
    const s = streams.get(name)!;
    s.rng.fillUniform(out, s.scale);
  };
  return writeModel(dir, config, produce, onTensor);
}
