import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { PRESET_NAMES, presetConfig } from '../../model/presets.ts';
import { generateModel } from '../../model/generate.ts';
import { MANIFEST_FILE } from '../../model/manifest.ts';
import { denseBytes, embeddingBytes, type ModelConfig } from '../../model/types.ts';
import { badArgument } from '../../util/errors.ts';
import { formatBytes, formatCount } from '../../util/format.ts';
import { oneOf, positiveInt, nonNegativeInt, progress } from '../options.ts';

export function describeModel(config: ModelConfig): string {
  const rows = config.tables.reduce((s, t) => s + t.rows, 0);
  return [
    `model ${config.name}: ${config.tables.length} tables, ${formatCount(rows)} rows × dim ${config.embeddingDim} (${formatBytes(embeddingBytes(config))})`,
    `  dense ${config.numDense} → bottom ${config.bottomMlp.join('-')} → ${config.interaction} → top ${config.topMlp.join('-')} (${formatBytes(denseBytes(config))}), ${config.poolingMode} pooling`,
  ].join('\n');
}

/** Refuses to write over an existing model unless asked to. */
export function prepareOutDir(out: string, force: boolean | undefined): void {
  if (fs.existsSync(path.join(out, MANIFEST_FILE)) && !force) {
    throw badArgument(`${out} already holds a model`, 'pass --force to overwrite it, or choose another --out');
  }
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('write a model with deterministic weights in a preset shape')
    .requiredOption('--preset <name>', `model shape: ${PRESET_NAMES.join(', ')}`, oneOf(PRESET_NAMES))
    .requiredOption('--out <dir>', 'model directory to write')
    .option('--rows <n>', 'cap every table at n rows, so paper-scale shapes fit this machine', positiveInt)
    .option('--seed <s>', 'random seed', nonNegativeInt, 1)
    .option('--force', 'overwrite an existing model directory')
    .action((opts: { preset: string; out: string; rows?: number; seed: number; force?: boolean }) => {
      const config = presetConfig(opts.preset, opts.rows);
      prepareOutDir(opts.out, opts.force);
      const started = Date.now();
      const bytes = embeddingBytes(config) + denseBytes(config);
      const verbose = bytes > 64 << 20;
      generateModel(opts.out, config, opts.seed, verbose ? (name) => progress(`  wrote ${name}`) : undefined);
      console.log(describeModel(config));
      console.log(`wrote ${opts.out} (${formatBytes(bytes)}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
}
