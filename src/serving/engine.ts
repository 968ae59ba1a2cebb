import type { Batch } from '../model/batch.ts';
import type { ModelConfig } from '../model/types.ts';
import { ReferenceModel } from '../reference/reference-model.ts';

/** What the public API runs a validated batch on: the whole model in process, or the disaggregated fan-out. */
export interface InferenceEngine {
  readonly config: ModelConfig;
  infer(batch: Batch): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Model-wise serving: every replica holds the whole model (the baseline). */
export class MonolithicEngine implements InferenceEngine {
  constructor(private readonly reference: ReferenceModel) {}

  get config(): ModelConfig {
    return this.reference.model.config;
  }

  infer(batch: Batch): Promise<Float32Array> {
    return this.reference.predictValidated(batch);
  }

  close(): Promise<void> {
    return this.reference.close();
  }
}
