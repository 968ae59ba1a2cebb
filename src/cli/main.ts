import { Command, CommanderError } from 'commander';
import { ShardwiseError, fileSystemError } from '../util/errors.ts';
import { guardStdio } from '../util/log.ts';
import { registerGenerate } from './commands/generate.ts';
import { registerImport } from './commands/import.ts';
import { registerPredict } from './commands/predict.ts';
import { registerTrace } from './commands/trace.ts';
import { registerDemo } from './commands/demo.ts';
import { registerPlan } from './commands/plan.ts';
import { registerServe } from './commands/serve.ts';
import { registerBench } from './commands/bench.ts';
import { registerProfile } from './commands/profile.ts';
import { registerCalibrate } from './commands/calibrate.ts';
import { registerAdmin } from './commands/admin.ts';
import { registerReplicas } from './commands/replica.ts';
import { registerManifests } from './commands/manifests.ts';
import { registerOrder } from './commands/order.ts';

// `shardwise serve … | head` must not die with the pipe.
guardStdio();
const program = new Command();
program
  .name('shardwise')
  .description('Elastic, disaggregated serving for DLRM-style recommendation models')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

registerDemo(program);
registerGenerate(program);
registerImport(program);
registerTrace(program);
registerPredict(program);
registerProfile(program);
registerCalibrate(program);
registerPlan(program);
registerServe(program);
registerBench(program);
registerAdmin(program);
registerReplicas(program);
registerManifests(program);
registerOrder(program);

try {
  await program.parseAsync(process.argv);
} catch (thrown) {
  const e = fileSystemError(thrown);
  if (e instanceof ShardwiseError) {
    process.stderr.write(`shardwise: error [${e.code}]: ${e.describe()}\n`);
    process.exitCode = 2;
  } else if (e instanceof CommanderError) {
    process.exitCode = e.exitCode;
  } else {
    throw e;
  }
}
