import { TypeScriptMlp, type Mlp, type MlpBackend, type MlpSpec } from './mlp.ts';
import { OnnxMlp } from './mlp-onnx.ts';

/** onnxruntime by default (measured fastest: `npm run bench:kernels`); SHARDWISE_MLP=typescript overrides. */
export function defaultMlpBackend(): MlpBackend {
  return process.env.SHARDWISE_MLP === 'typescript' ? 'typescript' : 'onnxruntime';
}

export async function createMlp(spec: MlpSpec, backend: MlpBackend = defaultMlpBackend()): Promise<Mlp> {
  return backend === 'onnxruntime' ? OnnxMlp.create(spec) : new TypeScriptMlp(spec);
}
