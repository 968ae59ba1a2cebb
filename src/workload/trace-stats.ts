import { TraceReader } from './trace-format.ts';

/** Reuse bins as in Meta's dlrm_datasets locality statistics: (0,1], (1,2], (2,4], (4,8], … */
export function reuseBin(count: number): number {
  return count <= 1 ? 0 : Math.ceil(Math.log2(count));
}

export function reuseBinLabel(bin: number): string {
  return bin === 0 ? '(0,1]' : `(${2 ** (bin - 1)},${2 ** bin}]`;
}

export interface TableStats {
  table: number;
  rows: number;
  lookups: number;
  uniqueRows: number;
  /** Share of lookups that hit the hottest 1% / 10% of the table's rows. */
  hot1: number;
  hot10: number;
  /** Per reuse bin: share of touched rows, and share of lookups, whose access count falls in it. */
  reuse: { bin: string; rowShare: number; lookupShare: number }[];
}

export interface TraceStats {
  queries: number;
  samples: number;
  tables: TableStats[];
}

/** Share of `total` taken by the `k` largest counts. */
function topShare(sortedDesc: Uint32Array, k: number, total: number): number {
  let sum = 0;
  for (let i = 0; i < Math.min(k, sortedDesc.length); i++) sum += sortedDesc[i];
  return total === 0 ? 0 : sum / total;
}

/** One streaming pass over the trace; memory is one counter per table row. */
export function traceStats(file: string): TraceStats {
  const reader = new TraceReader(file);
  const { rows } = reader.header;
  const T = rows.length;
  const counts = rows.map((r) => new Uint32Array(r));
  let queries = 0;
  let samples = 0;
  try {
    for (const q of reader) {
      queries++;
      samples += q.size;
      for (let bag = 0; bag < q.size * T; bag++) {
        const c = counts[bag % T];
        for (let k = q.offsets[bag]; k < q.offsets[bag + 1]; k++) c[q.indices[k]]++;
      }
    }
  } finally {
    reader.close();
  }
  const tables = counts.map((c, t): TableStats => {
    const touched = c.filter((x) => x > 0);
    let lookups = 0;
    const binRows: number[] = [];
    const binLookups: number[] = [];
    for (const x of touched) {
      lookups += x;
      const b = reuseBin(x);
      binRows[b] = (binRows[b] ?? 0) + 1;
      binLookups[b] = (binLookups[b] ?? 0) + x;
    }
    touched.sort().reverse();
    const reuse = Array.from({ length: binRows.length }, (_, b) => ({
      bin: reuseBinLabel(b),
      rowShare: (binRows[b] ?? 0) / Math.max(1, touched.length),
      lookupShare: (binLookups[b] ?? 0) / Math.max(1, lookups),
    }));
    return {
      table: t,
      rows: rows[t],
      lookups,
      uniqueRows: touched.length,
      hot1: topShare(touched, Math.ceil(rows[t] * 0.01), lookups),
      hot10: topShare(touched, Math.ceil(rows[t] * 0.1), lookups),
      reuse,
    };
  });
  return { queries, samples, tables };
}
