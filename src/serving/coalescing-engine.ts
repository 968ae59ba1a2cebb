import { type Batch, concatBatches } from '../model/batch.ts';
import type { ModelConfig } from '../model/types.ts';
import type { InferenceEngine } from './engine.ts';

export interface CoalescingOptions {
  /** Batches served at once; more arrivals wait and go out together. */
  maxConcurrent: number;
  /** Upper bound on samples in one merged batch. */
  maxSamples: number;
}

/** What `serve` runs by default: two batches in service, merged batches up to 512 samples. */
export const DEFAULT_COALESCING: CoalescingOptions = { maxConcurrent: 2, maxSamples: 512 };

interface Waiting {
  batch: Batch;
  resolve: (scores: Float32Array) => void;
  reject: (e: unknown) => void;
}

/**
 * Dynamic batching without a timer: a query goes out at once while fewer than maxConcurrent
 * batches are being served, so an idle server adds no latency; under load, queries that
 * arrive meanwhile are merged into the next batch, which divides the per-batch costs (RPCs,
 * syscalls, framing, GEMM calls) among them. The latency budget is one batch's service time.
 */
export class CoalescingEngine implements InferenceEngine {
  private readonly waiting: Waiting[] = [];
  private running = 0;
  readonly config: ModelConfig;

  constructor(private readonly inner: InferenceEngine, private readonly opts: CoalescingOptions) {
    this.config = inner.config;
  }

  infer(batch: Batch): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ batch, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.opts.maxConcurrent && this.waiting.length > 0) {
      const group: Waiting[] = [this.waiting.shift()!];
      let samples = group[0].batch.size;
      while (this.waiting.length > 0 && samples + this.waiting[0].batch.size <= this.opts.maxSamples) {
        samples += this.waiting[0].batch.size;
        group.push(this.waiting.shift()!);
      }
      this.running++;
      const { numDense, tables } = this.config;
      const merged = group.length === 1 ? group[0].batch : concatBatches(group.map((w) => w.batch), numDense, tables.length);
      this.inner
        .infer(merged)
        .then(
          (scores) => {
            let at = 0;
            for (const w of group) {
              w.resolve(scores.subarray(at, at + w.batch.size));
              at += w.batch.size;
            }
          },
          (e) => group.forEach((w) => w.reject(e)),
        )
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
