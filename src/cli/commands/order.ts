import type { Command } from 'commander';
import { readManifest } from '../../model/store.ts';
import { configOf } from '../../model/manifest.ts';
import { readPlan } from '../../plan/validate.ts';
import { ensureOrderedTables } from '../../profile/ordered-tables.ts';
import { badArgument } from '../../util/errors.ts';
import { formatBytes } from '../../util/format.ts';
import { progress } from '../options.ts';

/**
 * `shardwise order`: writes the tables' hotness-ordered copies for a plan's profile into the
 * model folder ahead of serving, e.g. while preparing a read-only model volume for
 * Kubernetes, where pods cannot write them (serve writes them itself at start).
 */
export function registerOrder(program: Command): void {
  program
    .command('order')
    .description("write the tables' hotness-ordered copies for a plan's profile (serve does at start), so shard replicas map their row ranges instead of streaming whole tables")
    .requiredOption('--model <dir>', 'model directory (the copies go under <dir>/ordered/)')
    .requiredOption('--plan <file>', 'plan JSON whose hotness profile orders the rows')
    .action((opts: { model: string; plan: string }) => {
      const manifest = readManifest(opts.model);
      const plan = readPlan(opts.plan, configOf(manifest));
      if (!plan.hotness) throw badArgument(`${opts.plan} has no hotness profile: its rows are served in the model's own order, which needs no copies`);
      const t0 = performance.now();
      const seconds = () => ((performance.now() - t0) / 1000).toFixed(1);
      const { tables, written } = ensureOrderedTables(opts.model, manifest, plan.hotness, (t, bytes) => progress(`table ${t + 1}/${manifest.tables.length}: ${formatBytes(bytes)} in hotness order (${seconds()} s)`));
      console.log(written ? `hotness-ordered copies written in ${seconds()} s: ${tables.dir}` : `hotness-ordered copies already there: ${tables.dir}`);
    });
}
