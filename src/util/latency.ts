import * as hdr from 'hdr-histogram-js';

/** A latency recorder in microseconds (HdrHistogram, 3 significant digits, up to 10 minutes). */
export class LatencyRecorder {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

  recordMs(ms: number): void {
    this.h.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** Latency at a percentile (0–100), in milliseconds. */
  percentileMs(p: number): number {
    return this.h.getValueAtPercentile(p) / 1000;
  }

  get meanMs(): number {
    return this.h.mean / 1000;
  }

  summary(): { count: number; meanMs: number; p50Ms: number; p95Ms: number; p99Ms: number; p999Ms: number; maxMs: number } {
    return {
      count: this.count,
      meanMs: this.meanMs,
      p50Ms: this.percentileMs(50),
      p95Ms: this.percentileMs(95),
      p99Ms: this.percentileMs(99),
      p999Ms: this.percentileMs(99.9),
      maxMs: this.h.maxValue / 1000,
    };
  }
}
