import { InvalidArgumentError } from 'commander';
import type { AccessDistribution } from '../workload/distributions.ts';
import { badArgument } from '../util/errors.ts';

/** Commander parsers that reject bad values with the option's name and what was expected. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got '${value}'`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number ≥ 0, got '${value}'`);
  return n;
}

export function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a number in [0, 1], got '${value}'`);
  return n;
}

export function oneOf<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got '${value}'`);
    return value as T;
  };
}

/** --locality P or --zipf S (not both); uniform when neither is given. */
export function accessDistribution(opts: { locality?: number; zipf?: number }): AccessDistribution {
  if (opts.locality !== undefined && opts.zipf !== undefined) throw badArgument('give either --locality or --zipf, not both');
  if (opts.locality !== undefined) return { kind: 'locality', p: opts.locality };
  if (opts.zipf !== undefined) return { kind: 'zipf', s: opts.zipf };
  return { kind: 'uniform' };
}

/** Progress lines go to stderr so stdout stays clean for --json and pipes. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}
