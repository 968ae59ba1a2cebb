import * as fs from 'node:fs';
import { badArgument } from '../util/errors.ts';

/** Offered load over time, for open-loop runs that follow it (the elastic experiments). */
export type TrafficShape =
  | { kind: 'constant'; qps: number; durationS: number }
  /** Steps of (seconds, qps), in order (ElasticRec Fig 19's staircase). */
  | { kind: 'staircase'; steps: { durationS: number; qps: number }[] }
  /** A sine between min and max with the given period, starting at min. */
  | { kind: 'diurnal'; min: number; max: number; periodS: number; durationS: number }
  /** base, then peak from atS for lengthS, then base again. */
  | { kind: 'spike'; base: number; peak: number; atS: number; lengthS: number; durationS: number }
  /** One rate per second (from a CSV column). */
  | { kind: 'series'; rates: number[] };

export const SHAPE_SYNTAX = [
  'constant:QPS:SECONDS',
  'staircase:SECONDS:QPS,SECONDS:QPS,…',
  'diurnal:MIN:MAX:PERIOD_S:SECONDS',
  'spike:BASE:PEAK:AT_S:LENGTH_S:SECONDS',
  'csv:FILE (one rate a line, or the last column of each line; a header line is skipped)',
].join(' | ');

function numbers(spec: string, parts: string[], count: number): number[] {
  const xs = parts.map(Number);
  if (parts.length !== count || xs.some((x) => !Number.isFinite(x) || x < 0)) {
    throw badArgument(`--shape ${JSON.stringify(spec)}: expected ${count} non-negative numbers after the kind`, `shapes: ${SHAPE_SYNTAX}`);
  }
  return xs;
}

/** A shape from its command-line form (SHAPE_SYNTAX); errors name what was wrong. */
export function parseShape(spec: string): TrafficShape {
  const [kind, ...rest] = spec.split(':');
  const body = rest.join(':');
  switch (kind) {
    case 'constant': {
      const [qps, durationS] = numbers(spec, rest, 2);
      return { kind, qps, durationS };
    }
    case 'staircase': {
      const steps = body.split(',').map((step) => {
        const [durationS, qps] = numbers(spec, step.split(':'), 2);
        return { durationS, qps };
      });
      return { kind, steps };
    }
    case 'diurnal': {
      const [min, max, periodS, durationS] = numbers(spec, rest, 4);
      if (max < min || periodS <= 0) throw badArgument(`--shape ${JSON.stringify(spec)}: need MIN ≤ MAX and a period > 0`);
      return { kind, min, max, periodS, durationS };
    }
    case 'spike': {
      const [base, peak, atS, lengthS, durationS] = numbers(spec, rest, 5);
      return { kind, base, peak, atS, lengthS, durationS };
    }
    case 'csv': {
      let text: string;
      try {
        text = fs.readFileSync(body, 'utf8');
      } catch (e) {
        throw badArgument(`--shape csv: cannot read ${body} (${(e as Error).message})`);
      }
      const rates = text
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .map((l) => Number(l.split(',').pop()));
      if (Number.isNaN(rates[0])) rates.shift(); // a header line
      const bad = rates.findIndex((r) => !Number.isFinite(r) || r < 0);
      if (rates.length === 0 || bad >= 0) throw badArgument(`--shape csv: ${body} line ${bad + 1} is not a rate ≥ 0`, 'one rate (queries/s) per line, a line per second');
      return { kind: 'series', rates };
    }
    default:
      throw badArgument(`--shape ${JSON.stringify(spec)}: unknown kind ${JSON.stringify(kind)}`, `shapes: ${SHAPE_SYNTAX}`);
  }
}

export function shapeDurationS(shape: TrafficShape): number {
  switch (shape.kind) {
    case 'staircase':
      return shape.steps.reduce((s, x) => s + x.durationS, 0);
    case 'series':
      return shape.rates.length;
    default:
      return shape.durationS;
  }
}

/** The offered rate (queries/s) at `tS` seconds into the run. */
export function rateAt(shape: TrafficShape, tS: number): number {
  switch (shape.kind) {
    case 'constant':
      return shape.qps;
    case 'staircase': {
      let end = 0;
      for (const step of shape.steps) if (tS < (end += step.durationS)) return step.qps;
      return 0;
    }
    case 'diurnal':
      return shape.min + ((shape.max - shape.min) * (1 - Math.cos((2 * Math.PI * tS) / shape.periodS))) / 2;
    case 'spike':
      return tS >= shape.atS && tS < shape.atS + shape.lengthS ? shape.peak : shape.base;
    case 'series':
      return shape.rates[Math.floor(tS)] ?? 0;
  }
}
