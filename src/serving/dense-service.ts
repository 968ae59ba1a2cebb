import type { ModelConfig } from '../model/types.ts';
import { DenseModel } from '../reference/dense-model.ts';
import { FrameError, FrameType, type Frame } from './frame.ts';
import type { Reply } from './frame-server.ts';
import { decodeDenseRequest, encodeScores } from './messages.ts';
import type { ServiceMetrics } from './metrics.ts';

/** The dense half as a service: dense features + pooled vectors [B, T, dim] in, scores out. */
export class DenseService {
  constructor(private readonly config: ModelConfig, private readonly model: DenseModel, private readonly metrics: ServiceMetrics) {}

  handle = async (frame: Frame): Promise<Reply> => {
    if (frame.type !== FrameType.DENSE_REQUEST) throw new FrameError(`the dense service takes dense requests, got frame type ${frame.type}`);
    const t0 = performance.now();
    const { numDense, embeddingDim: d, tables } = this.config;
    const T = tables.length;
    const req = decodeDenseRequest(frame.payload, numDense, T, d);
    const vectors = new Float32Array(req.batch * (T + 1) * d);
    for (let b = 0; b < req.batch; b++) vectors.set(req.pooled.subarray(b * T * d, (b + 1) * T * d), (b * (T + 1) + 1) * d);
    const scores = await this.model.forward(req.dense, vectors, req.batch);
    this.metrics.observe('dense', t0);
    return { type: FrameType.DENSE_RESPONSE, parts: encodeScores(scores) };
  };
}
