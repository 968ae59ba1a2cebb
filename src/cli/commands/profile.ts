import type { Command } from 'commander';
import { readManifest } from '../../model/store.ts';
import { configOf } from '../../model/manifest.ts';
import { profileFromTrace, syntheticProfile } from '../../profile/build.ts';
import { writeProfile } from '../../profile/format.ts';
import { cdfAt, type HotnessProfile } from '../../profile/types.ts';
import { TraceReader } from '../../workload/trace-format.ts';
import { badArgument, profileError } from '../../util/errors.ts';
import { formatCount, renderTable } from '../../util/format.ts';
import { accessDistribution, fraction, positiveNumber, progress } from '../options.ts';

export function renderProfile(p: HotnessProfile): string {
  const share = (t: HotnessProfile['tables'][number], f: number) => `${(100 * cdfAt(t, Math.ceil(t.rows * f))).toFixed(1)}%`;
  return [
    `hotness profile from ${p.source}`,
    renderTable(
      ['table', 'rows', 'lookups', 'hottest 0.1%', 'hottest 1%', 'hottest 10%', 'hottest 50%', 'permutation'],
      p.tables.map((t, i) => [i, formatCount(t.rows), t.lookups ? formatCount(t.lookups) : '-', share(t, 0.001), share(t, 0.01), share(t, 0.1), share(t, 0.5), t.permutation ? 'yes' : 'identity']),
    ),
  ].join('\n');
}

export function registerProfile(program: Command): void {
  program
    .command('profile')
    .description('per-table row hotness: the hotness permutation and the lookup CDF, from a trace or a distribution')
    .requiredOption('--model <dir>', 'model directory (only model.json is read)')
    .requiredOption('--out <file>', 'profile file to write')
    .option('--trace <file>', 'trace to count lookups in (from `shardwise trace` or real traffic)')
    .option('--locality <p>', 'synthetic: share of lookups on the hottest 10% of rows', fraction)
    .option('--zipf <s>', 'synthetic: Zipf exponent', positiveNumber)
    .action((opts: { model: string; out: string; trace?: string; locality?: number; zipf?: number }) => {
      const config = configOf(readManifest(opts.model));
      const synthetic = opts.locality !== undefined || opts.zipf !== undefined;
      if (!!opts.trace === synthetic) throw badArgument('give either --trace <file> or a synthetic distribution (--locality P or --zipf S)');
      let profile: HotnessProfile;
      if (opts.trace) {
        const reader = new TraceReader(opts.trace);
        const rows = reader.header.rows;
        reader.close();
        if (rows.length !== config.tables.length || rows.some((r, i) => r !== config.tables[i].rows)) {
          throw profileError(opts.trace, `was recorded for tables of ${rows.length} sizes [${rows.slice(0, 4).join(', ')}…] that do not match model '${config.name}'`, 'trace this model');
        }
        profile = profileFromTrace(opts.trace, (q) => progress(`  ${formatCount(q)} queries counted`));
      } else {
        profile = syntheticProfile(config, accessDistribution(opts));
      }
      writeProfile(opts.out, profile);
      console.log(renderProfile(profile));
      console.log(`wrote ${opts.out}`);
    });
}
