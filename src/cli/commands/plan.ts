import type { Command } from 'commander';
import { readManifest } from '../../model/store.ts';
import { configOf } from '../../model/manifest.ts';
import { rowWisePlan } from '../../planner/row-wise.ts';
import { validatePlan, writePlan } from '../../plan/validate.ts';
import type { Plan } from '../../plan/types.ts';
import { formatBytes, formatCount, renderTable } from '../../util/format.ts';
import { nonNegativeInt, oneOf, positiveInt } from '../options.ts';

export function renderPlan(plan: Plan, embeddingDim: number): string {
  const rows = plan.shards.map((s) => {
    const count = s.pieces.reduce((n, p) => n + p.rowEnd - p.rowStart, 0);
    return [s.name, s.replicas, s.pieces.length, formatCount(count), formatBytes(count * embeddingDim * 4), s.pieces.map((p) => `t${p.table}[${p.rowStart},${p.rowEnd})`).join(' ')];
  });
  return [
    `plan '${plan.strategy}' for model ${plan.model.name}: ${plan.shards.length} shards, dense ${plan.dense.placement === 'router' ? 'in the router' : `service × ${plan.dense.replicas}`}, router cache ${formatCount(plan.router.cacheRows)} rows/table`,
    renderTable(['shard', 'replicas', 'pieces', 'rows', 'bytes', 'ranges (hotness order)'], rows),
  ].join('\n');
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('cut a model into services: which rows each embedding shard holds, and replica counts')
    .requiredOption('--model <dir>', 'model directory (only model.json is read)')
    .requiredOption('--out <file>', 'plan JSON to write')
    .option('--strategy <name>', 'sharding strategy: row-wise (even row split of every table)', oneOf(['row-wise'] as const), 'row-wise')
    .option('--shards <k>', 'number of embedding shards', positiveInt, 4)
    .option('--replicas <r>', 'replicas per shard', positiveInt, 1)
    .option('--cache-rows <n>', "rows per table pooled by the router's hot-row cache", nonNegativeInt, 0)
    .option('--dense <where>', "run the dense half in the router or as its own service", oneOf(['router', 'service'] as const), 'router')
    .option('--dense-replicas <n>', 'replicas of the dense service', positiveInt, 1)
    .action((opts: { model: string; out: string; shards: number; replicas: number; cacheRows: number; dense: 'router' | 'service'; denseReplicas: number }) => {
      const config = configOf(readManifest(opts.model));
      const plan = rowWisePlan(config, opts);
      validatePlan(plan, config, opts.out);
      writePlan(opts.out, plan);
      console.log(renderPlan(plan, config.embeddingDim));
      console.log(`wrote ${opts.out}`);
    });
}
