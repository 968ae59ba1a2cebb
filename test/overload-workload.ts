import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import type { ModelConfig } from '../src/model/types.ts';
import type { LocalSupervisor } from '../src/cluster/supervisor.ts';
import { QueryGenerator, writeTrace, type TraceOptions } from '../src/workload/generate-trace.ts';
import { encodeQueries, runOpenLoop, type RunResult } from '../src/bench/load-generator.ts';
import { probeHealth, type HealthProbeResult } from '../src/bench/health-probe.ts';
import { processCpuSeconds } from '../src/util/process-stats.ts';
import { cliAsync } from './helpers.ts';

/**
 * How much cheaper a query is to a saturated front end than at light load, where its batcher
 * merges little: bench:overload's serving CPU per answer at a low limit against under overload,
 * 1.5-2.4x on one VM and ~2.5x on one twice as fast. Too low, and "2x" is an overload the front
 * end without admission control keeps up with (1.5 on the faster VM: 1,028/s within the SLA at
 * "2x", the test failing with no overload tested); at 1.8 it collapses there (2-8/s) while a
 * slower VM is offered ~1.75x of its capacity, under the 3x at which these tests failed.
 */
const BATCHING_GAIN = 1.8;

export interface OverloadRun {
  r: RunResult;
  health: HealthProbeResult;
}

/**
 * The overload tests' workload, written under `dir`: RM1's shape (batch 8, 1,280 lookups a
 * query) on small tables, and how they drive a deployment with it.
 */
export function overloadWorkload(dir: string) {
  const config: ModelConfig = { ...presetConfig('rm1', 5000), name: 'rm1-small' };
  const modelDir = path.join(dir, 'rm1');
  generateModel(modelDir, config, 3);
  const traceOptions: TraceOptions = { queries: 200, batch: 8, access: { kind: 'locality', p: 0.9 }, pooling: 'fixed', seed: 4 };
  const gen = new QueryGenerator(config, traceOptions);
  const queries = encodeQueries(Array.from({ length: 200 }, () => gen.next()), config.numDense);
  // The same queries as a trace file, for a load generator in a process of its own.
  const traceFile = path.join(dir, 'rm1-queries.bin');
  writeTrace(traceFile, config, traceOptions);
  const target = (sup: LocalSupervisor) => ({ url: `http://127.0.0.1:${sup.routerPort}`, modelName: config.name });
  /** Open loop after half a second of warm-up, answers within 50 ms counted. */
  const run = (sup: LocalSupervisor, qps: number, durationS: number) => runOpenLoop(target(sup), queries, { qps, durationS, timeoutMs: 5000, warmupS: 0.5, slaMs: 50 });
  /** `qps` for 4 s with a health probe on a fresh connection every 50 ms meanwhile. */
  const overload = async (sup: LocalSupervisor, qps: number): Promise<OverloadRun> => {
    const probe = probeHealth(`${target(sup).url}/v2/health/ready`, 50);
    const r = await run(sup, qps, 4);
    return { r, health: await probe.stop() };
  };
  /**
   * `qps` for 4 s from `shardwise bench` in a process of its own, the health probe in this one
   * from when it starts sending: the sender's event loop (48 KB bodies at thousands a second)
   * then delays neither the probe nor the latencies it measures.
   */
  const overloadFromChild = async (sup: LocalSupervisor, qps: number): Promise<OverloadRun> => {
    const args = ['bench', '--url', target(sup).url, '--model-name', config.name, '--trace', traceFile, '--qps', String(qps), '--duration', '4', '--warmup', '0.5', '--timeout-ms', '5000', '--sla-p99-ms', '50', '--json'];
    let probe: ReturnType<typeof probeHealth> | undefined;
    const bench = await cliAsync(args, { onStderr: (text) => void (text.includes('offering') && (probe ??= probeHealth(`${target(sup).url}/v2/health/ready`, 50))) });
    const health = await probe?.stop();
    if (bench.code !== 0 || !health) throw new Error(`shardwise bench exited ${bench.code}: ${bench.stderr}`);
    return { r: JSON.parse(bench.stdout) as RunResult, health };
  };
  /** Answers within the SLA per second. */
  const goodput = (x: OverloadRun) => x.r.okWithinSla / x.r.durationS;
  /**
   * About what a monolithic front end at `cpus` meets the 50 ms SLA at on this machine, from its
   * CPU per query at a light 200 qps (measured here, so the overload tests offer the same
   * multiples on a slower VM: a fixed 750, right on the VM it was found on, was 3x on one that
   * answered ~520). A max search inside a test proved too noisy: one slow step halves it.
   */
  const capacity = async (sup: LocalSupervisor, cpus: number): Promise<number> => {
    const QPS = 200;
    const pid = sup.replicas()[0].pid;
    const cpu0 = processCpuSeconds(pid);
    const t0 = performance.now();
    await run(sup, QPS, 2);
    const cpuPerQuery = (processCpuSeconds(pid) - cpu0) / (((performance.now() - t0) / 1000) * QPS);
    return Math.round((BATCHING_GAIN * cpus) / cpuPerQuery);
  };
  return { config, modelDir, target, run, overload, overloadFromChild, goodput, capacity };
}
