import type { Model } from '../model/types.ts';
import { type Batch, validateBatch } from '../model/batch.ts';
import { embeddingBag } from '../kernels/embedding-bag.ts';
import type { MlpBackend } from '../kernels/mlp.ts';
import { DenseModel } from './dense-model.ts';

/**
 * The whole model in one process: the correctness oracle for every disaggregated path and
 * the model-wise baseline. Pools every table straight into the dense half's input.
 */
export class ReferenceModel {
  private constructor(
    readonly model: Model,
    readonly dense: DenseModel,
  ) {}

  static async create(model: Model, backend?: MlpBackend): Promise<ReferenceModel> {
    return new ReferenceModel(model, await DenseModel.create(model.config, model, backend));
  }

  /** Scores for a batch that has already passed validateBatch. */
  async predictValidated(batch: Batch): Promise<Float32Array> {
    const { config, tables } = this.model;
    const T = config.tables.length;
    const d = config.embeddingDim;
    const rowFloats = (T + 1) * d;
    const vectors = new Float32Array(batch.size * rowFloats);
    const mean = config.poolingMode === 'mean';
    for (let t = 0; t < T; t++) {
      embeddingBag(tables[t].data, d, batch.indices, batch.offsets, batch.weights, mean, batch.size, t, T, vectors, (t + 1) * d, rowFloats);
    }
    return this.dense.forward(batch.dense, vectors, batch.size);
  }

  async predict(batch: Batch): Promise<Float32Array> {
    validateBatch(this.model.config, batch);
    return this.predictValidated(batch);
  }

  async close(): Promise<void> {
    await this.dense.close();
  }
}
