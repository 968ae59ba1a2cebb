/** Reading a p95 off Prometheus histograms scraped twice, as histogram_quantile does: the autoscaler's and the balancer's latency signal. */

/** A histogram's cumulative bucket counts, by upper bound (`le`, Infinity last), ascending. */
export type Buckets = { le: number[]; counts: number[] };

/** The `<name>_bucket` series of a Prometheus text page whose labels include `stage`, or undefined. */
export function bucketsOf(text: string, name: string, stage?: string): Buckets | undefined {
  const pairs: [number, number][] = [];
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix) || (stage && !line.includes(`stage="${stage}"`))) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    pairs.push([le === '+Inf' ? Infinity : Number(le), Number(line.slice(line.lastIndexOf(' ') + 1))]);
  }
  if (!pairs.length) return undefined;
  pairs.sort((a, b) => a[0] - b[0]);
  return { le: pairs.map((p) => p[0]), counts: pairs.map((p) => p[1]) };
}

/**
 * The p95 of the observations between two readings of one histogram, as Prometheus'
 * histogram_quantile reads a bucket increase: linear inside the bucket the rank falls in, the
 * highest finite bound when it falls in +Inf. 0 when nothing was observed: an idle replica has
 * no latency to defend (so idle front ends can scale in).
 */
export function p95Between(before: Buckets | undefined, after: Buckets): number {
  const inc = after.counts.map((c, i) => c - (before && before.le[i] === after.le[i] ? before.counts[i] : 0));
  const total = inc[inc.length - 1];
  if (!(total > 0)) return 0;
  const rank = 0.95 * total;
  // The last bucket (+Inf) holds the total, so some bucket reaches the rank.
  const i = inc.findIndex((c) => c >= rank);
  if (after.le[i] === Infinity) return after.le[i - 1] ?? 0;
  const lower = i === 0 ? 0 : after.le[i - 1];
  const below = i === 0 ? 0 : inc[i - 1];
  return lower + ((after.le[i] - lower) * (rank - below)) / (inc[i] - below);
}

/**
 * Each key's (a replica's) histogram between its successive readings: the p95 (in the
 * histogram's unit) and how many observations fell in the window. The first reading of a key
 * has no window and gives undefined.
 */
export class HistogramWindows {
  private readonly previous = new Map<number, Buckets>();

  next(key: number, buckets: Buckets): { p95: number; count: number } | undefined {
    const before = this.previous.get(key);
    this.previous.set(key, buckets);
    if (!before) return undefined;
    const total = (b: Buckets) => b.counts[b.counts.length - 1];
    return { p95: p95Between(before, buckets), count: total(buckets) - total(before) };
  }
}
