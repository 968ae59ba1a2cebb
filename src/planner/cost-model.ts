import * as fs from 'node:fs';
import { costModelError } from '../util/errors.ts';

export const COST_FORMAT = 'shardwise-cost';
export const COST_VERSION = 1;

/** 1/QPS(x) = α + β·x for an embedding shard serving x pooled lookups per query (ElasticRec Fig 9). */
export interface ShardCurve {
  dim: number;
  alphaMs: number;
  betaMs: number;
}

/** What one replica of a service asks of a node. */
export interface ReplicaRequest {
  cpus: number;
  /** Memory besides the embedding rows it holds (runtime, buffers, MLP weights). */
  memBytes: number;
}

/**
 * The cost model a planner sizes replicas with: measured by `shardwise calibrate` on this
 * machine, or written by hand for hardware we do not have (e.g. a paper's figures).
 */
export interface CostModel {
  format: typeof COST_FORMAT;
  version: number;
  /** Where the numbers come from, shown in reports. */
  source: string;
  /** The p99 SLA the capacities were measured under, if any. */
  slaP99Ms?: number;
  shard: {
    curves: ShardCurve[];
    replica: ReplicaRequest;
    /**
     * True when a shard replica gathers its tables in parallel (threads, as ElasticRec's
     * shards do), so its capacity follows the largest per-table lookup count; false (this
     * runtime's single event loop) when lookups of all its tables add up.
     */
    tablesInParallel?: boolean;
  };
  /** The dense half (MLPs + interaction) of the model, per replica, at the served query size. */
  dense: { qps: number; replica: ReplicaRequest };
  /** Whole-model replicas (model-wise): the embedding layer alone, per replica; dense as above. */
  modelWise: { sparseQps: number; replica: ReplicaRequest };
  router: { qps: number; replica: ReplicaRequest };
}

/**
 * Per-replica QPS of a shard of embedding dim `dim` as a function of lookups per query x.
 * Between two calibrated dims 1/QPS is interpolated linearly in dim; outside, the nearest.
 */
export function shardQpsCurve(cost: CostModel, dim: number): (x: number) => number {
  const curves = [...cost.shard.curves].sort((a, b) => a.dim - b.dim);
  const above = curves.findIndex((c) => c.dim >= dim);
  const [lo, hi] = above < 0 ? [curves[curves.length - 1], curves[curves.length - 1]] : above === 0 || curves[above].dim === dim ? [curves[above], curves[above]] : [curves[above - 1], curves[above]];
  const w = hi.dim === lo.dim ? 0 : (dim - lo.dim) / (hi.dim - lo.dim);
  const alpha = (1 - w) * lo.alphaMs + w * hi.alphaMs;
  const beta = (1 - w) * lo.betaMs + w * hi.betaMs;
  return (x) => 1000 / (alpha + beta * x);
}

export const shardQps = (cost: CostModel, dim: number, x: number) => shardQpsCurve(cost, dim)(x);

/** Whole-model replica QPS: each query runs the embedding layer then the dense half on the same cores. */
export function modelWiseQps(cost: CostModel): number {
  return 1 / (1 / cost.modelWise.sparseQps + 1 / cost.dense.qps);
}

function positive(source: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw costModelError(source, `${what} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function checkReplica(source: string, what: string, r: ReplicaRequest | undefined): void {
  if (!r || typeof r !== 'object') throw costModelError(source, `${what}.replica is missing`, 'give { "cpus": C, "memBytes": M }');
  positive(source, `${what}.replica.cpus`, r.cpus);
  if (!(r.memBytes >= 0)) throw costModelError(source, `${what}.replica.memBytes must be ≥ 0, got ${JSON.stringify(r.memBytes)}`);
}

export function validateCostModel(c: CostModel, source: string): CostModel {
  if (c?.format !== COST_FORMAT) throw costModelError(source, `is not a shardwise cost model (format '${c?.format}')`, 'make one with `shardwise calibrate` or see README "Cost model"');
  if (c.version !== COST_VERSION) throw costModelError(source, `has version ${c.version}; this build reads version ${COST_VERSION}`);
  if (!Array.isArray(c.shard?.curves) || c.shard.curves.length === 0) throw costModelError(source, 'shard.curves must list at least one { dim, alphaMs, betaMs }');
  c.shard.curves.forEach((k, i) => {
    positive(source, `shard.curves[${i}].dim`, k.dim);
    positive(source, `shard.curves[${i}].alphaMs`, k.alphaMs);
    if (!(k.betaMs >= 0)) throw costModelError(source, `shard.curves[${i}].betaMs must be ≥ 0, got ${JSON.stringify(k.betaMs)}`);
  });
  positive(source, 'dense.qps', c.dense?.qps);
  positive(source, 'modelWise.sparseQps', c.modelWise?.sparseQps);
  positive(source, 'router.qps', c.router?.qps);
  checkReplica(source, 'shard', c.shard.replica);
  checkReplica(source, 'dense', c.dense.replica);
  checkReplica(source, 'modelWise', c.modelWise.replica);
  checkReplica(source, 'router', c.router.replica);
  return c;
}

export function readCostModel(file: string): CostModel {
  if (!fs.existsSync(file)) throw costModelError(file, 'does not exist', 'make one with `shardwise calibrate --model DIR --out cost.json`, or write one by hand');
  let c: CostModel;
  try {
    c = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw costModelError(file, `is not valid JSON: ${(e as Error).message}`);
  }
  return validateCostModel(c, file);
}

export function writeCostModel(file: string, c: CostModel): void {
  fs.writeFileSync(file, `${JSON.stringify(c, null, 2)}\n`);
}
