import type { Linear, ModelConfig } from '../model/types.ts';
import { interact } from '../kernels/interaction.ts';
import { createMlp } from '../kernels/mlp-factory.ts';
import type { Mlp, MlpBackend } from '../kernels/mlp.ts';

/**
 * The dense half of a DLRM: bottom MLP, interaction, top MLP. It takes the pooled table
 * vectors in the interaction's own layout, [B, 1 + T, dim] with slot 0 left free for the
 * bottom-MLP output, so whoever pools (in process or a router summing shard partials)
 * writes straight into it and nothing is copied.
 */
export class DenseModel {
  private constructor(
    readonly config: ModelConfig,
    private readonly bottom: Mlp,
    private readonly top: Mlp,
  ) {}

  static async create(config: ModelConfig, mlps: { bottom: Linear[]; top: Linear[] }, backend?: MlpBackend): Promise<DenseModel> {
    const bottom = await createMlp({ layers: mlps.bottom, finalActivation: 'relu' }, backend);
    const top = await createMlp({ layers: mlps.top, finalActivation: 'sigmoid' }, backend);
    return new DenseModel(config, bottom, top);
  }

  get backend(): MlpBackend {
    return this.bottom.backend;
  }

  /** Floats per sample of the interaction input: (1 + T) · dim. */
  get vectorsPerSample(): number {
    return (this.config.tables.length + 1) * this.config.embeddingDim;
  }

  /** Scores [B] from dense features [B, numDense] and pooled vectors [B, 1 + T, dim] (slot 0 is overwritten). */
  async forward(dense: Float32Array, vectors: Float32Array, batch: number): Promise<Float32Array> {
    const d = this.config.embeddingDim;
    const n = this.config.tables.length + 1;
    const x = await this.bottom.run(dense, batch);
    for (let s = 0; s < batch; s++) vectors.set(x.subarray(s * d, (s + 1) * d), s * n * d);
    const width = this.top.inWidth;
    const z = new Float32Array(batch * width);
    interact(this.config.interaction, vectors, batch, n, d, z);
    return this.top.run(z, batch);
  }

  async close(): Promise<void> {
    await Promise.all([this.bottom.close(), this.top.close()]);
  }
}
