import type { ModelConfig } from '../model/types.ts';
import { HOT_FRACTION, type AccessDistribution } from '../workload/distributions.ts';
import { TraceReader } from '../workload/trace-format.ts';
import { badArgument } from '../util/errors.ts';
import type { HotnessProfile, TableProfile } from './types.ts';

/** Evenly spaced knots per table, plus powers of two near the top where the CDF bends most. */
const EVEN_KNOTS = 4096;

function knotPositions(rows: number, extra: number[] = []): Int32Array {
  const set = new Set<number>([0, rows, ...extra.filter((x) => x > 0 && x < rows)]);
  for (let i = 1; i < EVEN_KNOTS; i++) set.add(Math.round((rows * i) / EVEN_KNOTS));
  for (let p = 1; p < rows; p *= 2) set.add(p);
  return Int32Array.from([...set].sort((a, b) => a - b));
}

/**
 * Row ids by descending count, ties by ascending id. A counting sort (stable, O(rows +
 * max count)) when counts are small, as they are for any trace that fits a disk; a comparison
 * sort of the touched rows otherwise.
 */
function hotnessOrder(counts: Uint32Array): Int32Array {
  const rows = counts.length;
  let max = 0;
  for (let i = 0; i < rows; i++) if (counts[i] > max) max = counts[i];
  const order = new Int32Array(rows);
  if (max <= 1 << 24) {
    const start = new Float64Array(max + 2); // start[c]: first position of rows with count c (descending)
    for (let i = 0; i < rows; i++) start[max - counts[i] + 1]++;
    for (let c = 1; c <= max + 1; c++) start[c] += start[c - 1];
    for (let i = 0; i < rows; i++) order[start[max - counts[i]]++] = i;
    return order;
  }
  const touched: number[] = [];
  let n = 0;
  for (let i = 0; i < rows; i++) if (counts[i] > 0) touched.push(i);
  touched.sort((a, b) => counts[b] - counts[a] || a - b);
  for (const id of touched) order[n++] = id;
  for (let i = 0; i < rows; i++) if (counts[i] === 0) order[n++] = i;
  return order;
}

function tableFromCounts(counts: Uint32Array): TableProfile {
  const rows = counts.length;
  const order = hotnessOrder(counts);
  const permutation = new Int32Array(rows);
  for (let pos = 0; pos < rows; pos++) permutation[order[pos]] = pos;
  let lookups = 0;
  for (let i = 0; i < rows; i++) lookups += counts[i];
  const knotPos = knotPositions(rows);
  const knotCdf = new Float64Array(knotPos.length);
  let cum = 0;
  let pos = 0;
  for (let k = 0; k < knotPos.length; k++) {
    for (; pos < knotPos[k]; pos++) cum += counts[order[pos]];
    knotCdf[k] = lookups > 0 ? cum / lookups : knotPos[k] / rows;
  }
  return { rows, lookups, knotPos, knotCdf, permutation };
}

/** One streaming pass over a trace: memory is one counter per row of every table. */
export function profileFromTrace(file: string, onProgress?: (queries: number) => void): HotnessProfile {
  const reader = new TraceReader(file);
  const { rows } = reader.header;
  const T = rows.length;
  const counts = rows.map((r) => new Uint32Array(r));
  let queries = 0;
  try {
    for (const q of reader) {
      for (let bag = 0; bag < q.size * T; bag++) {
        const c = counts[bag % T];
        for (let k = q.offsets[bag]; k < q.offsets[bag + 1]; k++) c[q.indices[k]]++;
      }
      if (++queries % 10_000 === 0) onProgress?.(queries);
    }
  } finally {
    reader.close();
  }
  return { source: `trace ${file} (${queries} queries)`, tables: counts.map(tableFromCounts) };
}

/** Σ_{i=1..x} i^−s: exact up to 1000 terms, then Euler–Maclaurin (error far below a knot's share). */
function harmonic(x: number, s: number): number {
  const exact = Math.min(x, 1000);
  let h = 0;
  for (let i = 1; i <= exact; i++) h += i ** -s;
  if (x <= exact) return h;
  const integral = s === 1 ? Math.log(x / exact) : (x ** (1 - s) - exact ** (1 - s)) / (1 - s);
  return h + integral + (x ** -s - exact ** -s) / 2;
}

/**
 * A profile from a distribution instead of a trace, for planning before traffic exists or at
 * scales no trace here could cover. Ids are taken to be in hotness order already.
 */
export function syntheticProfile(config: ModelConfig, access: AccessDistribution): HotnessProfile {
  const tables = config.tables.map((t): TableProfile => {
    const rows = t.rows;
    let knotPos: Int32Array;
    let cdf: (x: number) => number;
    if (access.kind === 'locality') {
      if (!(access.p >= 0 && access.p <= 1)) throw badArgument(`--locality must be in [0, 1], got ${access.p}`);
      const hot = Math.max(1, Math.min(rows, Math.round(rows * HOT_FRACTION)));
      knotPos = Int32Array.from(new Set([0, hot, rows]));
      cdf = (x) => (hot === rows ? x / rows : x <= hot ? (access.p * x) / hot : access.p + ((1 - access.p) * (x - hot)) / (rows - hot));
    } else if (access.kind === 'zipf') {
      if (!(access.s > 0)) throw badArgument(`--zipf must be a positive exponent, got ${access.s}`);
      knotPos = knotPositions(rows);
      const total = harmonic(rows, access.s);
      cdf = (x) => harmonic(x, access.s) / total;
    } else {
      knotPos = Int32Array.from([0, rows]);
      cdf = (x) => x / rows;
    }
    return { rows, lookups: 0, knotPos, knotCdf: Float64Array.from(knotPos, cdf), permutation: null };
  });
  const what = access.kind === 'locality' ? `locality ${access.p}` : access.kind === 'zipf' ? `zipf ${access.s}` : 'uniform';
  return { source: `synthetic ${what}`, tables };
}
