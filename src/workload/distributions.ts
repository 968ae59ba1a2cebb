import { Rng, subSeed } from '../util/rng.ts';
import { badArgument } from '../util/errors.ts';

/** Share of a table's rows that ElasticRec's locality P refers to ("the hottest 10%"). */
export const HOT_FRACTION = 0.1;

export type AccessDistribution =
  | { kind: 'uniform' }
  | { kind: 'locality'; p: number }
  | { kind: 'zipf'; s: number };

/** Draws hotness ranks: 0 is the hottest row of the table. */
export interface RankSampler {
  next(rng: Rng): number;
}

/** A share p of draws goes uniformly to the hottest 10% of ranks, the rest uniformly to the others. */
class LocalitySampler implements RankSampler {
  private readonly hot: number;
  constructor(private readonly rows: number, private readonly p: number) {
    this.hot = Math.max(1, Math.min(rows, Math.round(rows * HOT_FRACTION)));
  }
  next(rng: Rng): number {
    if (this.hot === this.rows || rng.next() < this.p) return rng.below(this.hot);
    return this.hot + rng.below(this.rows - this.hot);
  }
}

class UniformSampler implements RankSampler {
  constructor(private readonly rows: number) {}
  next(rng: Rng): number {
    return rng.below(this.rows);
  }
}

/**
 * Zipf(s) over ranks 0..n−1 by rejection-inversion (Hörmann & Derflinger 1996), O(1) per draw
 * and no table, so a 20M-row table costs nothing to set up.
 */
class ZipfSampler implements RankSampler {
  private readonly hIntegralX1: number;
  private readonly hIntegralN: number;
  private readonly sConst: number;

  constructor(private readonly n: number, private readonly s: number) {
    this.hIntegralX1 = this.hIntegral(1.5) - 1;
    this.hIntegralN = this.hIntegral(n + 0.5);
    this.sConst = 2 - this.hIntegralInverse(this.hIntegral(2.5) - this.h(2));
  }
  private h(x: number): number {
    return Math.exp(-this.s * Math.log(x));
  }
  private hIntegral(x: number): number {
    const logX = Math.log(x);
    return helper2((1 - this.s) * logX) * logX;
  }
  private hIntegralInverse(x: number): number {
    let t = x * (1 - this.s);
    if (t < -1) t = -1;
    return Math.exp(helper1(t) * x);
  }
  next(rng: Rng): number {
    for (;;) {
      const u = this.hIntegralN + rng.next() * (this.hIntegralX1 - this.hIntegralN);
      const x = this.hIntegralInverse(u);
      let k = Math.floor(x + 0.5);
      if (k < 1) k = 1;
      else if (k > this.n) k = this.n;
      if (k - x <= this.sConst || u >= this.hIntegral(k + 0.5) - this.h(k)) return k - 1;
    }
  }
}

/** log1p(x)/x, stable near 0. */
function helper1(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.log1p(x) / x : 1 - x * (0.5 - x * (1 / 3 - 0.25 * x));
}
/** expm1(x)/x, stable near 0. */
function helper2(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.expm1(x) / x : 1 + x * 0.5 * (1 + x * (1 / 3) * (1 + 0.25 * x));
}

export function rankSampler(dist: AccessDistribution, rows: number): RankSampler {
  switch (dist.kind) {
    case 'uniform':
      return new UniformSampler(rows);
    case 'locality':
      if (!(dist.p >= 0 && dist.p <= 1)) throw badArgument(`--locality must be in [0, 1], got ${dist.p}`);
      return new LocalitySampler(rows, dist.p);
    case 'zipf':
      if (!(dist.s > 0) || dist.s === 1) throw badArgument(`--zipf must be > 0 and ≠ 1, got ${dist.s}`, 'try 0.99 or 1.01');
      return new ZipfSampler(rows, dist.s);
  }
}

/**
 * Maps hotness rank → row id with a seeded affine bijection id = (a·rank + c) mod n, gcd(a, n) = 1:
 * hot rows land scattered over the id space (real ids are not sorted by hotness) and the map
 * needs no memory, whatever the table size.
 */
export class ScatterPermutation {
  private readonly a: number;
  private readonly c: number;

  constructor(private readonly n: number, seed: number) {
    const rng = new Rng(seed);
    if (n <= 2) {
      this.a = 1;
      this.c = n === 2 ? rng.below(2) : 0;
      return;
    }
    let a = Math.floor(n / 3) + rng.below(Math.max(1, Math.floor(n / 3)));
    while (gcd(a, n) !== 1) a++;
    this.a = a;
    this.c = rng.below(n);
  }

  apply(rank: number): number {
    // a·rank < n² ≤ 2^53 for n up to ~9.5·10^7 rows; use BigInt-free split product beyond that.
    return this.n < 94_906_265 ? (this.a * rank + this.c) % this.n : Number((BigInt(this.a) * BigInt(rank) + BigInt(this.c)) % BigInt(this.n));
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Per-table id generator: a rank sampler, a scatter permutation and its own random stream. */
export class TableAccessGenerator {
  private readonly sampler: RankSampler;
  private readonly perm: ScatterPermutation;
  private readonly rng: Rng;

  constructor(rows: number, dist: AccessDistribution, seed: number, table: number) {
    this.sampler = rankSampler(dist, rows);
    this.perm = new ScatterPermutation(rows, subSeed(seed, 1000 + table));
    this.rng = new Rng(subSeed(seed, 2000 + table));
  }

  next(): number {
    return this.perm.apply(this.sampler.next(this.rng));
  }
}
