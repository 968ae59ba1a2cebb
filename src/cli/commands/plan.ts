import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { readManifest } from '../../model/store.ts';
import { configOf, validateConfig } from '../../model/manifest.ts';
import type { ModelConfig } from '../../model/types.ts';
import { planHotness, readProfile } from '../../profile/format.ts';
import { syntheticProfile } from '../../profile/build.ts';
import { rowWisePlan } from '../../planner/row-wise.ts';
import { readCostModel } from '../../planner/cost-model.ts';
import { allStrategies, strategyNamed } from '../../planner/strategies.ts';
import { STRATEGY_NAMES } from '../../planner/types.ts';
import { runPlanner } from '../../planner/planner.ts';
import { renderComparison, renderEstimate } from '../../planner/report.ts';
import { validatePlan, writePlan } from '../../plan/validate.ts';
import type { Plan } from '../../plan/types.ts';
import { badArgument, modelManifestError } from '../../util/errors.ts';
import { formatBytes, formatCount, renderTable } from '../../util/format.ts';
import { accessDistribution, fraction, nonNegativeInt, oneOf, positiveInt, positiveNumber, progress } from '../options.ts';

export function renderPlan(plan: Plan, embeddingDim: number): string {
  const rows = plan.shards.map((s) => {
    const count = s.pieces.reduce((n, p) => n + p.rowEnd - p.rowStart, 0);
    const ranges = s.pieces.map((p) => `t${p.table}[${p.rowStart},${p.rowEnd})`);
    return [s.name, s.replicas, s.pieces.length, formatCount(count), formatBytes(count * embeddingDim * 4), ranges.length > 4 ? `${ranges.slice(0, 4).join(' ')} …` : ranges.join(' ')];
  });
  return [
    `plan '${plan.strategy}' for model ${plan.model.name}: ${plan.shards.length} shards, dense ${plan.dense.placement === 'router' ? 'in the router' : `service × ${plan.dense.replicas}`}, router × ${plan.router.replicas}, cache ${formatCount(plan.router.cacheRows)} rows/table, rows in ${plan.hotness ? `the hotness order of ${plan.hotness.profile}` : 'identity order'}`,
    renderTable(['shard', 'replicas', 'pieces', 'rows', 'bytes', 'ranges (hotness order)'], rows),
  ].join('\n');
}

/** Shapes from a model directory, or from a JSON file holding a model config (model.json works too). */
function loadShapes(opts: { model?: string; modelConfig?: string }): ModelConfig {
  if (!!opts.model === !!opts.modelConfig) throw badArgument('give exactly one of --model <dir> or --model-config <shapes.json>');
  if (opts.model) return configOf(readManifest(opts.model));
  const file = opts.modelConfig!;
  if (!fs.existsSync(file)) throw modelManifestError(file, 'does not exist');
  let config: ModelConfig;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw modelManifestError(file, `is not valid JSON: ${(e as Error).message}`);
  }
  validateConfig(config, file);
  return config;
}

interface PlanOptions {
  model?: string;
  modelConfig?: string;
  out?: string;
  strategy: string;
  profile?: string;
  locality?: number;
  zipf?: number;
  cost?: string;
  targetQps?: number;
  slaP99Ms?: number;
  batch: number;
  shards: number;
  maxShards: number;
  replicas: number;
  cacheRows: number;
  dense: 'router' | 'service';
  denseReplicas: number;
  nodeCpus?: number;
  nodeMemGb?: number;
  pricePerNodeHour?: number;
  json?: boolean;
}

function planCommand(opts: PlanOptions): void {
  const config = loadShapes(opts);
  if (!opts.cost) {
    // Without a cost model only the hand-sized row-wise plan can be made (the quick start).
    if (opts.strategy !== 'row-wise') throw badArgument(`--strategy ${opts.strategy} sizes replicas with a cost model: give --cost cost.json --target-qps Q`, 'make cost.json with `shardwise calibrate`');
    if (!opts.out) throw badArgument('give --out plan.json');
    // With a trace profile its rows are served in that hotness order, as the cost-sized plans are.
    if (opts.profile && !readProfile(opts.profile, config).tables.every((t) => t.permutation)) throw badArgument(`${opts.profile} has no permutations (a synthetic profile): it cannot order the rows`, 'profile a trace with `shardwise profile --trace`');
    const plan = { ...rowWisePlan(config, opts), ...(opts.profile && { hotness: planHotness(opts.profile) }) };
    validatePlan(plan, config, opts.out);
    writePlan(opts.out, plan);
    console.log(renderPlan(plan, config.embeddingDim));
    console.log(`wrote ${opts.out}`);
    return;
  }
  if (!opts.targetQps) throw badArgument('give --target-qps: the load every service is sized for');
  if (opts.profile && (opts.locality !== undefined || opts.zipf !== undefined)) throw badArgument('give either --profile or --locality/--zipf, not both');
  const cost = readCostModel(opts.cost);
  if (opts.slaP99Ms !== undefined && cost.slaP99Ms !== undefined && opts.slaP99Ms < cost.slaP99Ms) {
    progress(`warning: ${opts.cost} measured capacities under a ${cost.slaP99Ms} ms p99 SLA, looser than --sla-p99-ms ${opts.slaP99Ms}; replicas may be too few`);
  }
  const profile = opts.profile ? readProfile(opts.profile, config) : syntheticProfile(config, accessDistribution(opts));
  const node = opts.nodeCpus || opts.nodeMemGb ? { cpus: opts.nodeCpus ?? 0, memBytes: (opts.nodeMemGb ?? 0) * 2 ** 30 } : null;
  if (node && !(node.cpus > 0 && node.memBytes > 0)) throw badArgument('give both --node-cpus and --node-mem-gb to place replicas on nodes');
  const strategies = opts.strategy === 'all' ? allStrategies() : [strategyNamed(opts.strategy)];
  if (opts.strategy === 'all' && opts.out) throw badArgument('--out writes one plan: pick a --strategy, or leave --out off with all');
  const hotness = opts.profile && profile.tables.every((t) => t.permutation) ? planHotness(opts.profile) : null;
  const input = { config, profile, hotness, cost, targetQps: opts.targetQps, slaP99Ms: opts.slaP99Ms, batch: opts.batch, shards: opts.shards, maxShards: opts.maxShards, cacheRows: opts.cacheRows };
  const planned = runPlanner(input, strategies, node);
  if (opts.json) {
    console.log(JSON.stringify(planned.map(({ plan, estimate }) => ({ plan, estimate: { ...estimate, placement: estimate.placement && { node: estimate.placement.node, nodes: estimate.placement.nodes.length } } })), null, 2));
  } else {
    console.log(`planning ${config.name} for ${opts.targetQps} queries/s of batch ${opts.batch}${opts.slaP99Ms ? ` under a ${opts.slaP99Ms} ms p99 SLA` : ''}; hotness: ${profile.source}; costs: ${cost.source}\n`);
    for (const p of planned) console.log(`${renderEstimate(p.estimate, opts.pricePerNodeHour)}\n`);
    if (planned.length > 1) console.log(renderComparison(planned.map((p) => p.estimate), opts.pricePerNodeHour));
  }
  if (opts.out) {
    writePlan(opts.out, planned[0].plan);
    progress(`wrote ${opts.out}`);
  }
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('cut a model into services and size their replicas: any strategy, or all of them compared')
    .option('--model <dir>', 'model directory (only model.json is read)')
    .option('--model-config <file>', 'model shapes as JSON (a model.json works): plan without weights')
    .option('--strategy <name>', `${STRATEGY_NAMES.join(' | ')} | all`, oneOf([...STRATEGY_NAMES, 'all'] as const), 'row-wise')
    .option('--profile <file>', 'hotness profile from `shardwise profile`')
    .option('--locality <p>', 'synthetic hotness: share of lookups on the hottest 10% of rows', fraction)
    .option('--zipf <s>', 'synthetic hotness: Zipf exponent', positiveNumber)
    .option('--cost <file>', 'cost model from `shardwise calibrate` (or written by hand)')
    .option('--target-qps <q>', 'queries per second every service is sized for', positiveNumber)
    .option('--sla-p99-ms <ms>', 'latency SLA the plan must hold (checked against the cost model)', positiveNumber)
    .option('--batch <b>', 'samples per query', positiveInt, 1)
    .option('--shards <k>', 'shards for row-wise and the table-packing strategies', positiveInt, 4)
    .option('--max-shards <k>', 'most shards per table group for elastic', positiveInt, 16)
    .option('--replicas <r>', 'replicas per shard (row-wise without --cost)', positiveInt, 1)
    .option('--cache-rows <n>', "rows per table pooled by the router's hot-row cache", nonNegativeInt, 0)
    .option('--dense <where>', 'row-wise without --cost: dense half in the router or as a service', oneOf(['router', 'service'] as const), 'router')
    .option('--dense-replicas <n>', 'row-wise without --cost: replicas of the dense service', positiveInt, 1)
    .option('--node-cpus <c>', 'CPUs per node, to place replicas and count nodes', positiveNumber)
    .option('--node-mem-gb <m>', 'memory per node in GiB', positiveNumber)
    .option('--price-per-node-hour <usd>', 'node price, for the cost column', positiveNumber)
    .option('--out <file>', 'write the plan (one strategy) as JSON')
    .option('--json', 'print plans and estimates as JSON')
    .action(planCommand);
}
