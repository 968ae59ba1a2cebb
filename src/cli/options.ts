import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { AccessDistribution } from '../workload/distributions.ts';
import { badArgument } from '../util/errors.ts';
import { DEFAULT_ROW_LOADING } from '../model/store.ts';
import { DEFAULT_TARGETS, LATENCY_TARGET_SHARE } from '../cluster/scaling-config.ts';
import { DEFAULT_SLA_P99_MS } from '../serving/admission.ts';

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

/** An http:// base URL, e.g. http://127.0.0.1:8080 (the load generator speaks plain HTTP/1.1; the admin API is on loopback). */
export function httpUrl(value: string): string {
  let protocol = '';
  try {
    protocol = new URL(value).protocol;
  } catch {
    // not a URL at all: the same message
  }
  if (protocol !== 'http:') throw new InvalidArgumentError(`expected an http:// URL such as http://127.0.0.1:8080, got '${value}'`);
  return value;
}

/** A TCP port, 0 (any free one) to 65535. */
export function tcpPort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a TCP port from 0 (any free one) to 65535, got '${value}'`);
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

/** --rows: how replicas load embedding rows (serve and the shard and router pod commands). */
export function rowsOption(cmd: Command): Command {
  return cmd.option(
    '--rows <how>',
    'how replicas load embedding rows: map (a read-only mapping of the file: replicas on one machine share the page cache and start without copying; needs the native addon) or read (copied into each replica)',
    oneOf(['map', 'read'] as const),
    DEFAULT_ROW_LOADING,
  );
}

/** Progress lines go to stderr so stdout stays clean for --json and pipes. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * The autoscaling settings (ScalingSettings), as flags: `serve --autoscale` runs them locally,
 * `manifests` writes them into HorizontalPodAutoscalers; one definition for both.
 */
export function scalingOptions(cmd: Command): Command {
  return cmd
    .option('--shard-target-lookups <n>', `autoscale: embedding lookups per second per shard replica (default: --target-utilization of its calibrated capacity with a cost model, else ${DEFAULT_TARGETS.shardLookups})`, positiveNumber)
    .option('--dense-target-rps <r>', `autoscale: requests per second per dense replica (default: --target-utilization of its calibrated capacity with a cost model, else ${DEFAULT_TARGETS.denseRps})`, positiveNumber)
    .option('--target-utilization <u>', "autoscale with a cost model: hold each shard and dense replica at this share of its calibrated capacity", fraction, 0.7)
    .option('--front-end-metric <m>', 'autoscale: what routers (or a monolith) scale on: inflight (queries per replica) or latency (p95 per replica, ElasticRec\'s rule)', oneOf(['inflight', 'latency'] as const), 'inflight')
    .option('--front-end-target-inflight <n>', 'autoscale: in-flight queries per router (or monolith) replica', positiveNumber, 16)
    .option('--front-end-target-p95-ms <ms>', `autoscale on latency: the p95 each router (or monolith) replica is held under (default ${LATENCY_TARGET_SHARE * 100}% of the p99 SLA: serve's --sla-p99-ms, else ${DEFAULT_SLA_P99_MS} ms)`, positiveNumber)
    .option('--max-replicas <n>', 'the most replicas of any one service (scale and autoscale)', positiveInt, 16)
    .option('--sync-period-s <s>', 'autoscale: seconds between decisions (HPA default 15)', positiveNumber, 15)
    .option('--scale-down-window-s <s>', 'autoscale: scale-down stabilization window (HPA default 300)', nonNegativeNumber, 300)
    .option('--scale-up-window-s <s>', 'autoscale: scale-up stabilization window (HPA default 0)', nonNegativeNumber, 0);
}
