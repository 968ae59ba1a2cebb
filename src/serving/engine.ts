import type { Batch } from '../model/batch.ts';
import type { ModelConfig } from '../model/types.ts';
import { ReferenceModel } from '../reference/reference-model.ts';

/** What the public API runs a validated batch on: the whole model in process, or the disaggregated fan-out. */
export interface InferenceEngine {
  readonly config: ModelConfig;
  infer(batch: Batch): Promise<Float32Array>;
  /** How long the oldest query has waited to be served (admission control reads it); 0 when nothing waits. */
  queueAgeMs(): number;
  /** Why the engine cannot serve now (a service with no healthy replica), or null when it can. */
  unready(): string | null;
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

  queueAgeMs(): number {
    return 0;
  }

  unready(): string | null {
    return null;
  }

  close(): Promise<void> {
    return this.reference.close();
  }
}
