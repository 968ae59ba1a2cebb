import { UTILITY_WINDOW_QUERIES, type Plan, type ShardPiece } from '../plan/types.ts';
import type { TableProfile } from '../profile/types.ts';
import { modelWiseQps, shardQps, type ReplicaRequest } from './cost-model.ts';
import { placeReplicas, type NodeShape, type Placement, type PlacementItem } from './placement.ts';
import { rowBytes, shardLookups, shardWork } from './sizing.ts';
import type { PlanningInput } from './types.ts';

export interface ServiceEstimate {
  service: string;
  kind: 'model' | 'router' | 'dense' | 'shard';
  replicas: number;
  /** Embedding rows one replica holds. */
  rows: number;
  /** Memory one replica allocates: its rows plus the fixed cost of a replica. */
  memPerReplica: number;
  cpusPerReplica: number;
  lookupsPerQuery: number;
  qpsPerReplica: number;
  /** Expected share of its rows touched by the first 1000 queries; null for services without rows. */
  utility: number | null;
}

export interface PlanEstimate {
  strategy: string;
  services: ServiceEstimate[];
  memBytes: number;
  /** Mean memory utility of the replicas that hold rows (ElasticRec's replica-weighted mean). */
  utility: number;
  placement: Placement | null;
}

/**
 * Expected distinct rows among positions [a, b) touched by `lookups` draws from the table's
 * lookup distribution: within a CDF knot interval rows are equally likely, so a row with
 * per-draw probability q is touched with probability 1 − e^(−lookups·q).
 */
function expectedTouched(t: TableProfile, a: number, b: number, lookups: number): number {
  let touched = 0;
  for (let k = 1; k < t.knotPos.length; k++) {
    const lo = Math.max(a, t.knotPos[k - 1]);
    const hi = Math.min(b, t.knotPos[k]);
    if (hi <= lo) continue;
    const q = (t.knotCdf[k] - t.knotCdf[k - 1]) / (t.knotPos[k] - t.knotPos[k - 1]);
    touched += (hi - lo) * -Math.expm1(-lookups * q);
  }
  return touched;
}

/** Rows touched over the rows held; rows below `cacheRows` are held but served by the router's cache. */
function utilityOf(input: PlanningInput, pieces: ShardPiece[], cacheRows: number): number {
  let rows = 0;
  let touched = 0;
  for (const p of pieces) {
    rows += p.rowEnd - p.rowStart;
    const lookups = UTILITY_WINDOW_QUERIES * input.batch * input.config.tables[p.table].poolingFactor;
    touched += expectedTouched(input.profile.tables[p.table], Math.max(p.rowStart, cacheRows), p.rowEnd, lookups);
  }
  return rows > 0 ? touched / rows : 0;
}

function service(name: string, kind: ServiceEstimate['kind'], replicas: number, req: ReplicaRequest, qps: number, extra: Partial<ServiceEstimate> = {}): ServiceEstimate {
  return { service: name, kind, replicas, rows: 0, memPerReplica: req.memBytes, cpusPerReplica: req.cpus, lookupsPerQuery: 0, qpsPerReplica: qps, utility: null, ...extra };
}

/** The estimate stage: per-service rows, bytes, replicas, capacity and utility; totals; placement. */
export function estimatePlan(input: PlanningInput, plan: Plan, node: NodeShape | null): PlanEstimate {
  const { cost, config } = input;
  const services: ServiceEstimate[] = [];
  const shardService = (s: Plan['shards'][number], kind: 'model' | 'shard', req: ReplicaRequest, qps: number) => {
    const rows = s.pieces.reduce((n, p) => n + p.rowEnd - p.rowStart, 0);
    return service(s.name, kind, s.replicas, req, qps, {
      rows,
      memPerReplica: rows * rowBytes(input) + req.memBytes,
      lookupsPerQuery: shardLookups(input, s.pieces, plan.router.cacheRows),
      utility: utilityOf(input, s.pieces, plan.router.cacheRows),
    });
  };
  if (plan.strategy === 'model-wise') {
    services.push(shardService(plan.shards[0], 'model', cost.modelWise.replica, modelWiseQps(cost)));
  } else {
    // The router also holds its hot-row cache and a route code per row of every table (src/serving/bucketize.ts).
    const cached = config.tables.reduce((n, t) => n + Math.min(plan.router.cacheRows, t.rows), 0) * rowBytes(input);
    const routeCodes = config.tables.reduce((n, t) => n + t.rows, 0) * Int32Array.BYTES_PER_ELEMENT;
    services.push(service('router', 'router', plan.router.replicas, cost.router.replica, cost.router.qps, { memPerReplica: cost.router.replica.memBytes + cached + routeCodes }));
    if (plan.dense.placement === 'service') services.push(service('dense', 'dense', plan.dense.replicas, cost.dense.replica, cost.dense.qps));
    for (const s of plan.shards) {
      const est = shardService(s, 'shard', cost.shard.replica, 0);
      est.qpsPerReplica = shardQps(cost, config.embeddingDim, shardWork(input, s.pieces));
      services.push(est);
    }
  }
  const memBytes = services.reduce((m, s) => m + s.replicas * s.memPerReplica, 0);
  const holders = services.filter((s) => s.utility !== null);
  const replicas = holders.reduce((w, s) => w + s.replicas, 0);
  const utility = holders.reduce((u, s) => u + s.replicas * s.utility!, 0) / Math.max(1, replicas);
  let placement: Placement | null = null;
  if (node) {
    const items: PlacementItem[] = services.flatMap((s) => Array.from({ length: s.replicas }, () => ({ service: s.service, cpus: s.cpusPerReplica, memBytes: s.memPerReplica })));
    placement = placeReplicas(items, node);
  }
  return { strategy: plan.strategy, services, memBytes, utility, placement };
}
