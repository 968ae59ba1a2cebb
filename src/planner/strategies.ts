import { PLAN_FORMAT, PLAN_VERSION, type Plan, type ShardPiece } from '../plan/types.ts';
import { badArgument } from '../util/errors.ts';
import { modelWiseQps } from './cost-model.ts';
import { elasticPieces } from './elastic.ts';
import { disaggregatedPlan, workloadOf } from './plan-builder.ts';
import { rowWisePieces } from './row-wise.ts';
import { pieceLookups, replicasFor, rowBytes } from './sizing.ts';
import { STRATEGY_NAMES, type PlanningInput, type Strategy, type StrategyName } from './types.ts';

const wholeTable = (input: PlanningInput, table: number): ShardPiece => ({ table, rowStart: 0, rowEnd: input.config.tables[table].rows });

/**
 * Greedy bin packing of whole tables into `k` shards by a weight (largest first onto the
 * lightest shard, the LPT rule Lui et al.'s balanced strategies use).
 */
function packTables(input: PlanningInput, k: number, weight: (table: number) => number): ShardPiece[][] {
  const bins: ShardPiece[][] = Array.from({ length: Math.min(k, input.config.tables.length) }, () => []);
  const load = new Float64Array(bins.length);
  const order = input.config.tables.map((_, t) => t).sort((a, b) => weight(b) - weight(a) || a - b);
  for (const t of order) {
    let lightest = 0;
    for (let i = 1; i < bins.length; i++) if (load[i] < load[lightest]) lightest = i;
    bins[lightest].push(wholeTable(input, t));
    load[lightest] += weight(t);
  }
  return bins;
}

const modelWise: Strategy = {
  name: 'model-wise',
  describe: 'whole-model replicas (the baseline)',
  propose(input) {
    const { config, cost, targetQps } = input;
    const replicas = replicasFor(targetQps, modelWiseQps(cost));
    return {
      format: PLAN_FORMAT,
      version: PLAN_VERSION,
      model: { name: config.name, tableRows: config.tables.map((t) => t.rows) },
      strategy: 'model-wise',
      router: { replicas, cacheRows: 0 },
      dense: { placement: 'router', replicas },
      // Whole tables need no hotness order: without a cache every row is on the one shard anyway.
      shards: [{ name: 'model', replicas, pieces: config.tables.map((_, t) => wholeTable(input, t)) }],
      workload: workloadOf(input),
    } satisfies Plan;
  },
};

const strategies: Record<StrategyName, Strategy> = {
  'model-wise': modelWise,
  'table-wise': {
    name: 'table-wise',
    describe: 'one shard per table',
    propose: (input) => disaggregatedPlan(input, 'table-wise', input.config.tables.map((_, t) => [wholeTable(input, t)])),
  },
  'capacity-balanced': {
    name: 'capacity-balanced',
    describe: 'whole tables bin-packed by bytes',
    propose: (input) => disaggregatedPlan(input, 'capacity-balanced', packTables(input, input.shards, (t) => input.config.tables[t].rows * rowBytes(input))),
  },
  'load-balanced': {
    name: 'load-balanced',
    describe: 'whole tables bin-packed by expected lookups',
    propose: (input) => disaggregatedPlan(input, 'load-balanced', packTables(input, input.shards, (t) => pieceLookups(input, wholeTable(input, t)))),
  },
  'row-wise': {
    name: 'row-wise',
    describe: 'every table cut into even row ranges',
    propose: (input) => disaggregatedPlan(input, 'row-wise', rowWisePieces(input.config, input.shards)),
  },
  elastic: {
    name: 'elastic',
    describe: 'hotness-ordered row ranges cut by a DP for least memory (ElasticRec)',
    propose: (input) => disaggregatedPlan(input, 'elastic', elasticPieces(input)),
  },
};

export function strategyNamed(name: string): Strategy {
  if (!(STRATEGY_NAMES as readonly string[]).includes(name)) throw badArgument(`unknown strategy '${name}'`, `use one of ${STRATEGY_NAMES.join(', ')}, or all`);
  return strategies[name as StrategyName];
}

export const allStrategies = (): Strategy[] => STRATEGY_NAMES.map((n) => strategies[n]);
