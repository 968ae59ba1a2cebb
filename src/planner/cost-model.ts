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
  shard: { curves: ShardCurve[]; replica: ReplicaRequest };
  /** The dense half (MLPs + interaction) of the model, per replica, at the served query size. */
  dense: { qps: number; replica: ReplicaRequest };
  /** Whole-model replicas (model-wise): the embedding layer alone, per replica; dense as above. */
  modelWise: { sparseQps: number; replica: ReplicaRequest };
  router: { qps: number; replica: ReplicaRequest };
}

/** Per-replica QPS of a shard of embedding dim `dim` serving `x` lookups per query. */
export function shardQps(cost: CostModel, dim: number, x: number): number {
  const curves = [...cost.shard.curves].sort((a, b) => a.dim - b.dim);
  const at = (c: ShardCurve) => 1 / ((c.alphaMs + c.betaMs * x) / 1000);
  const exact = curves.find((c) => c.dim === dim);
  if (exact) return at(exact);
  // Between two calibrated dims interpolate 1/QPS linearly in dim; outside, take the nearest.
  const above = curves.findIndex((c) => c.dim > dim);
  if (above <= 0) return at(curves[above === 0 ? 0 : curves.length - 1]);
  const [lo, hi] = [curves[above - 1], curves[above]];
  const w = (dim - lo.dim) / (hi.dim - lo.dim);
  const ms = (1 - w) * (lo.alphaMs + lo.betaMs * x) + w * (hi.alphaMs + hi.betaMs * x);
  return 1000 / ms;
}

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
