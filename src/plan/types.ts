/**
 * A Plan says how a model is cut into services and how many replicas each gets. Every
 * strategy emits this one shape, so the runtime, the simulator and the Kubernetes generator
 * take any of them. Row ranges are in *hotness order* (sorted position 0 is a table's most
 * accessed row); with no hotness profile the order is the identity.
 */
export const PLAN_FORMAT = 'shardwise-plan';
export const PLAN_VERSION = 1;
/** Queries over which memory utility is planned and measured (ElasticRec's window). */
export const UTILITY_WINDOW_QUERIES = 1000;

/** Rows [rowStart, rowEnd) of one table, in hotness order. */
export interface ShardPiece {
  table: number;
  rowStart: number;
  rowEnd: number;
}

export interface ShardSpec {
  /** Service name, unique in the plan (e.g. "shard-0"). */
  name: string;
  replicas: number;
  pieces: ShardPiece[];
}

export interface Plan {
  format: typeof PLAN_FORMAT;
  version: number;
  /** The model the plan was made for; checked against the served model. */
  model: { name: string; tableRows: number[] };
  strategy: string;
  router: {
    replicas: number;
    /** Rows per table, hottest first, pooled inside the router instead of on a shard. */
    cacheRows: number;
  };
  /** Where the dense half runs: inside the router process, or as its own service. */
  dense: { placement: 'router' | 'service'; replicas: number };
  shards: ShardSpec[];
  /**
   * The profile whose permutations define hotness order: the router maps each id to its sorted
   * position and shards load their rows through the inverse. In the JSON file the path is
   * relative to the plan's directory; absent, rows are in identity order. `checksum` (sha256
   * of the profile, hex) pins the profile the ranges were cut from and keys the tables'
   * hotness-ordered copies; plans without one have it computed when needed.
   */
  hotness?: { profile: string; checksum?: string };
  /** The load the plan was sized for; shards measure memory utility over 1000 such queries. */
  workload?: PlanWorkload;
}

export interface PlanWorkload {
  targetQps: number;
  samplesPerQuery: number;
  slaP99Ms?: number;
}
