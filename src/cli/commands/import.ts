import * as path from 'node:path';
import type { Command } from 'commander';
import { importDlrmSafetensors } from '../../model/import-dlrm.ts';
import { configOf } from '../../model/manifest.ts';
import type { InteractionKind, PoolingMode } from '../../model/types.ts';
import { oneOf, positiveNumber } from '../options.ts';
import { describeModel, prepareOutDir } from './generate.ts';

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('import a trained model (the state_dict of facebookresearch/dlrm DLRM_Net saved as safetensors)')
    .requiredOption('--format <format>', 'checkpoint format: dlrm-safetensors', oneOf(['dlrm-safetensors'] as const))
    .requiredOption('--file <file>', 'the .safetensors file')
    .requiredOption('--out <dir>', 'model directory to write')
    .option('--name <name>', 'model name (default: the file name)')
    .option('--interaction <kind>', 'dot or cat (default: inferred from the top MLP width)', oneOf(['dot', 'cat'] as const))
    .option('--pooling <mode>', 'sum or mean (DLRM uses sum)', oneOf(['sum', 'mean'] as const), 'sum')
    .option('--pooling-factor <n>', 'mean lookups per bag recorded for planning and traces', positiveNumber, 1)
    .option('--force', 'overwrite an existing model directory')
    .action((opts: { file: string; out: string; name?: string; interaction?: InteractionKind; pooling: PoolingMode; poolingFactor: number; force?: boolean }) => {
      prepareOutDir(opts.out, opts.force);
      const name = opts.name ?? path.basename(opts.file).replace(/\.safetensors$/, '').replace(/[^A-Za-z0-9_.-]/g, '_');
      const manifest = importDlrmSafetensors(opts.file, opts.out, {
        name,
        interaction: opts.interaction,
        pooling: opts.pooling,
        poolingFactor: opts.poolingFactor,
      });
      console.log(describeModel(configOf(manifest)));
      console.log(`imported ${opts.file} → ${opts.out}`);
    });
}
