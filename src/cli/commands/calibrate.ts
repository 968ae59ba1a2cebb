import type { Command } from 'commander';
import { writeCostModel } from '../../planner/cost-model.ts';
import { positiveInt, positiveNumber, progress } from '../options.ts';

export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description('measure this machine for the cost model: shard QPS vs lookups per query, dense QPS, idle replica memory')
    .requiredOption('--model <dir>', 'model directory whose services are measured')
    .requiredOption('--out <file>', 'cost model JSON to write')
    .option('--batch <b>', 'samples per query', positiveInt, 8)
    .option('--sweep <xs>', 'lookups per query to measure the shard at, comma-separated', (v) => v.split(',').map(Number), [64, 256, 1024, 4096])
    .option('--holdout <x>', 'lookups per query kept out of the fit, to check the prediction', positiveInt, 2048)
    .option('--seconds <s>', 'seconds per measured point', positiveNumber, 2)
    .option('--replica-cpus <cpus>', 'measure every service under this CPU limit (as `serve --replica-cpus`, cgroups); recorded as each replica\'s CPUs', positiveNumber)
    .action(async (opts: { model: string; out: string; batch: number; sweep: number[]; holdout: number; seconds: number; replicaCpus?: number }) => {
      progress('starting a shard server and a dense server, then measuring…');
      const { calibrate } = await import('../../bench/calibrate.ts'); // on use: it loads onnxruntime
      const c = await calibrate({ modelDir: opts.model, batch: opts.batch, sweep: opts.sweep, holdout: opts.holdout, secondsPerPoint: opts.seconds, replicaCpus: opts.replicaCpus, log: progress });
      writeCostModel(opts.out, c.cost);
      const curve = c.cost.shard.curves[0];
      console.log(`shard: 1/QPS = ${curve.alphaMs.toFixed(3)} ms + ${(curve.betaMs * 1000).toFixed(2)} µs × lookups (dim ${curve.dim})`);
      const err = (c.holdout.predicted - c.holdout.measured) / c.holdout.measured;
      console.log(`check on held-out x = ${c.holdout.x}: predicted ${c.holdout.predicted.toFixed(0)} qps, measured ${c.holdout.measured.toFixed(0)} qps (${(100 * err).toFixed(1)}%${Math.abs(err) <= 0.2 ? ', within ±20%' : ', OUTSIDE ±20%'})`);
      console.log(`dense: ${c.denseByBatch.map((d) => `batch ${d.batch} → ${d.qps.toFixed(0)} qps`).join(', ')}`);
      console.log(`router: ${c.cost.router.qps.toFixed(0)} qps; idle replica memory: shard ${(c.cost.shard.replica.memBytes / 2 ** 20).toFixed(0)} MiB, dense ${(c.cost.dense.replica.memBytes / 2 ** 20).toFixed(0)} MiB`);
      console.log(`wrote ${opts.out}`);
    });
}
