// First: it must run before onnxruntime-node initializes.
import './onnxruntime-env.ts';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { activationOf, type Mlp, type MlpSpec } from './mlp.ts';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

function initializer(name: string, dims: number[], data: Float32Array) {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function valueInfo(name: string, width: number) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: width }] } } },
  });
}

/** The MLP as an ONNX graph: Gemm(transB=1) + Relu per layer, Sigmoid or Relu at the end. */
export function mlpToOnnx(spec: MlpSpec): Uint8Array {
  const nodes = [];
  const inits = [];
  let x = 'x';
  for (let i = 0; i < spec.layers.length; i++) {
    const l = spec.layers[i];
    inits.push(initializer(`w${i}`, [l.out, l.in], l.weight), initializer(`b${i}`, [l.out], l.bias));
    nodes.push(
      onnx.NodeProto.create({
        opType: 'Gemm',
        input: [x, `w${i}`, `b${i}`],
        output: [`g${i}`],
        attribute: [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
      }),
    );
    const out = i === spec.layers.length - 1 ? 'y' : `h${i}`;
    nodes.push(onnx.NodeProto.create({ opType: activationOf(spec, i) === 'relu' ? 'Relu' : 'Sigmoid', input: [`g${i}`], output: [out] }));
    x = out;
  }
  const graph = onnx.GraphProto.create({
    name: 'mlp',
    node: nodes,
    initializer: inits,
    input: [valueInfo('x', spec.layers[0].in)],
    output: [valueInfo('y', spec.layers[spec.layers.length - 1].out)],
  });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], producerName: 'shardwise', graph });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * An MLP run by onnxruntime's CPU provider (MLAS GEMMs) on one intra-op thread: shardwise
 * scales by processes, one core each, so every backend is measured single-threaded.
 */
export class OnnxMlp implements Mlp {
  readonly backend = 'onnxruntime' as const;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inWidth: number,
    readonly outWidth: number,
  ) {}

  static async create(spec: MlpSpec, threads = 1): Promise<OnnxMlp> {
    const session = await ort.InferenceSession.create(mlpToOnnx(spec), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new OnnxMlp(session, spec.layers[0].in, spec.layers[spec.layers.length - 1].out);
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    const x = new ort.Tensor('float32', input.length === batch * this.inWidth ? input : input.subarray(0, batch * this.inWidth), [batch, this.inWidth]);
    const result = await this.session.run({ x });
    return result.y.data as Float32Array;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
