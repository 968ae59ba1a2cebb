import { type Batch, concatBatches } from '../model/batch.ts';
import type { ModelConfig } from '../model/types.ts';
import type { InferenceEngine } from './engine.ts';

export interface CoalescingOptions {
  /** Batches served at once; more arrivals wait and go out together. */
  maxConcurrent: number;
  /** Upper bound on samples in one merged batch. */
  maxSamples: number;
  /**
   * The latency budget: how long a query may wait for others to merge with while a batch slot
   * is free (Triton's max queue delay). 0 sends at once, merging only what arrives while every
   * slot is busy.
   */
  maxDelayMs: number;
}

/** What `serve` runs by default: two batches in service, merged batches up to 512 samples, no queue delay. */
export const DEFAULT_COALESCING: CoalescingOptions = { maxConcurrent: 2, maxSamples: 512, maxDelayMs: 0 };

interface Waiting {
  batch: Batch;
  /** performance.now() at arrival. */
  arrived: number;
  resolve: (scores: Float32Array) => void;
  reject: (e: unknown) => void;
}

/**
 * Dynamic batching: queries that arrive while every one of maxConcurrent batch slots is busy
 * are merged into the next batch, which divides the per-batch costs (RPCs, syscalls, framing,
 * GEMM calls) among them. With maxDelayMs 0 a query goes out at once when a slot is free, so an
 * idle server adds no latency; with a budget, a free slot still waits until the oldest query
 * has waited maxDelayMs or maxSamples are queued, trading that much latency for larger batches
 * at moderate load.
 */
export class CoalescingEngine implements InferenceEngine {
  private readonly waiting: Waiting[] = [];
  /** Samples in `waiting`. */
  private queued = 0;
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Set by close(): queries still waiting go out at once instead of waiting out their budget. */
  private closing = false;
  readonly config: ModelConfig;

  constructor(private readonly inner: InferenceEngine, private readonly opts: CoalescingOptions) {
    this.config = inner.config;
  }

  infer(batch: Batch): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ batch, arrived: performance.now(), resolve, reject });
      this.queued += batch.size;
      this.pump();
    });
  }

  queueAgeMs(): number {
    return this.waiting.length === 0 ? 0 : performance.now() - this.waiting[0].arrived;
  }

  unready(): string | null {
    return this.inner.unready();
  }

  private pump(): void {
    while (this.running < this.opts.maxConcurrent && this.waiting.length > 0) {
      const wait = this.waiting[0].arrived + this.opts.maxDelayMs - performance.now();
      if (wait > 0 && this.queued < this.opts.maxSamples && !this.closing) {
        this.timer ??= setTimeout(() => {
          this.timer = null;
          this.pump();
        }, wait);
        return;
      }
      const group: Waiting[] = [this.waiting.shift()!];
      let samples = group[0].batch.size;
      while (this.waiting.length > 0 && samples + this.waiting[0].batch.size <= this.opts.maxSamples) {
        samples += this.waiting[0].batch.size;
        group.push(this.waiting.shift()!);
      }
      this.queued -= samples;
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
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pump();
    return this.inner.close();
  }
}
