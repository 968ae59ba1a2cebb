import type { Command } from 'commander';
import { readQueries } from '../../workload/trace-format.ts';
import type { EncodedQuery, LoadTarget, RunResult, SecondStats } from '../../bench/load-generator.ts';
import { SHAPE_SYNTAX, parseShape, rateAt, shapeDurationS } from '../../workload/traffic-shape.ts';
import { type DeploymentSample, sampleEverySecond } from '../../bench/deployment-sample.ts';
import { ErrorCodes, ShardwiseError, badArgument } from '../../util/errors.ts';
import { formatBytes, renderTable } from '../../util/format.ts';
import { httpUrl, nonNegativeNumber, positiveInt, positiveNumber, progress } from '../options.ts';

/** Queries replayed from a trace: enough variety, bounded memory. */
const MAX_REPLAY_QUERIES = 20_000;

/** A run's table; given the SLA it was measured against, also its answers within it (goodput). */
export function renderRun(r: RunResult, slaMs?: number): string {
  const l = r.latency;
  // Latency of answers: none answered, none to show (not 0.00).
  const ms = (x: number) => (r.ok > 0 ? x.toFixed(2) : '-');
  const sla = slaMs === undefined ? null : { head: [`within ${slaMs} ms /s`], cell: [(r.okWithinSla / r.durationS).toFixed(1)] };
  return renderTable(
    ['offered qps', 'achieved qps', ...(sla?.head ?? []), 'sent', 'ok', 'refused (429)', 'errors', 'timeouts', 'p50 ms', 'p95 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'sent late p99 ms'],
    [[r.targetQps.toFixed(1), r.achievedQps.toFixed(1), ...(sla?.cell ?? []), r.sent, r.ok, r.rejected, r.errors, r.timeouts, ms(l.p50Ms), ms(l.p95Ms), ms(l.p99Ms), ms(l.p999Ms), ms(l.maxMs), r.sendLag.p99Ms.toFixed(2)]],
  );
}

/** A run in which nothing was answered measured nothing: after its table, an error (exit 2) saying why. */
function failIfNothingAnswered(r: RunResult, url: string): void {
  if (r.sent > 0 && r.ok === 0 && r.rejected < r.sent) {
    throw new ShardwiseError(ErrorCodes.SERVICE, `none of ${r.sent} queries was answered by ${url} (first failure: ${r.firstFailure ?? 'none recorded'})`, 'is the server up there, and serving --model-name? `shardwise serve` prints its URL');
  }
}

interface BenchOptions {
  url: string;
  modelName: string;
  trace: string;
  qps?: number;
  duration: number;
  findMax?: boolean;
  slaP99Ms?: number;
  stepSeconds: number;
  warmup: number;
  timeoutMs: number;
  shape?: string;
  admin?: string;
  json?: boolean;
}

/** An open-loop run that follows a traffic shape, with a per-second timeline (and the deployment's replicas and memory, given --admin). */
async function shapedRun(opts: BenchOptions, target: LoadTarget, encoded: EncodedQuery[]): Promise<void> {
  const { runOpenLoop } = await import('../../bench/load-generator.ts');
  const shape = parseShape(opts.shape!);
  const durationS = shapeDurationS(shape);
  const timeline: (SecondStats & Partial<DeploymentSample>)[] = [];
  const sampler = opts.admin ? sampleEverySecond(opts.admin, performance.now() + opts.warmup * 1000) : null;
  progress(`following ${opts.shape} for ${durationS} s…`);
  const result = await runOpenLoop(target, encoded, { qps: 0, rate: (t) => rateAt(shape, t), durationS, warmupS: opts.warmup, timeoutMs: opts.timeoutMs, onSecond: (s) => timeline.push(s), onProgress: opts.json ? undefined : progress });
  const samples = sampler?.stop() ?? [];
  for (const s of timeline) Object.assign(s, samples[s.t] ?? {});
  if (opts.json) return void console.log(JSON.stringify({ shape, result, timeline }, null, 2));
  console.log(
    renderTable(
      ['t s', 'offered', 'sent', 'ok', 'refused', 'errors', 'p50 ms', 'p99 ms', 'sent late ms', ...(opts.admin ? ['replicas', 'rss', 'pss'] : [])],
      timeline.map((s) => [s.t, s.offered.toFixed(0), s.sent, s.ok, s.rejected, s.errors, s.p50Ms.toFixed(1), s.p99Ms.toFixed(1), s.sendLagMaxMs.toFixed(1), ...(opts.admin ? [Object.entries(s.replicas ?? {}).map(([k, v]) => `${k}:${v}`).join(' '), formatBytes(s.rssBytes ?? 0), formatBytes(s.pssBytes ?? 0)] : [])]),
    ),
  );
  console.log(renderRun(result));
  failIfNothingAnswered(result, opts.url);
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('open-loop load (Poisson arrivals) against a serving endpoint, replaying a trace')
    .requiredOption('--url <url>', 'server base URL, e.g. http://127.0.0.1:8080', httpUrl)
    .requiredOption('--model-name <name>', 'model name in the URL path')
    .requiredOption('--trace <file>', 'trace to replay (from `shardwise trace`)')
    .option('--qps <q>', 'offered load (queries per second)', positiveNumber)
    .option('--duration <s>', 'seconds to run at --qps', positiveNumber, 10)
    .option('--find-max', 'search the highest QPS whose p99 meets --sla-p99-ms')
    .option('--sla-p99-ms <ms>', 'latency SLA: what --find-max holds p99 to; with --qps, answers within it are counted (goodput: okWithinSla)', positiveNumber)
    .option('--step-seconds <s>', 'seconds per step of --find-max', positiveNumber, 5)
    .option('--warmup <s>', 'seconds of load before each measurement, not counted', nonNegativeNumber, 2)
    .option('--timeout-ms <ms>', 'a request slower than this counts as a timeout', positiveInt, 10_000)
    .option('--shape <spec>', `offered load that changes over time, instead of --qps: ${SHAPE_SYNTAX}`)
    .option('--admin <url>', "with --shape: the deployment's admin API, to record replicas per service and memory (RSS and PSS sums) every second", httpUrl)
    .option('--json', 'print JSON (with --shape: the per-second timeline)')
    .action(async (opts: BenchOptions) => {
      if ([opts.findMax, opts.qps !== undefined, opts.shape !== undefined].filter(Boolean).length !== 1) throw badArgument('give one of --qps Q (with --duration), --shape SPEC, or --find-max --sla-p99-ms L');
      if (opts.findMax && opts.slaP99Ms === undefined) throw badArgument('--find-max needs --sla-p99-ms');
      const { header, queries } = readQueries(opts.trace, MAX_REPLAY_QUERIES);
      if (queries.length === 0) throw badArgument(`${opts.trace} holds no queries`);
      // Loaded on use: its HDR histograms are ~16 MiB of RSS that `serve`'s supervisor does without.
      const { encodeQueries, findMaxQps, runOpenLoop } = await import('../../bench/load-generator.ts');
      const encoded = encodeQueries(queries, header.numDense);
      const target = { url: opts.url, modelName: opts.modelName };
      const log = opts.json ? undefined : progress;
      if (opts.findMax) {
        progress(`searching the max QPS with p99 ≤ ${opts.slaP99Ms} ms (${opts.stepSeconds} s per step)…`);
        const found = await findMaxQps(target, encoded, { slaP99Ms: opts.slaP99Ms!, stepS: opts.stepSeconds, timeoutMs: opts.timeoutMs, warmupS: opts.warmup, onProgress: progress });
        if (opts.json) console.log(JSON.stringify(found, null, 2));
        else {
          console.log(`max QPS meeting p99 ≤ ${opts.slaP99Ms} ms: ${found.maxQps.toFixed(1)}`);
          if (found.best) console.log(renderRun(found.best));
        }
        return;
      }
      if (opts.shape !== undefined) return shapedRun(opts, target, encoded);
      progress(`offering ${opts.qps} qps for ${opts.duration} s…`);
      const r = await runOpenLoop(target, encoded, { qps: opts.qps!, durationS: opts.duration, warmupS: opts.warmup, timeoutMs: opts.timeoutMs, slaMs: opts.slaP99Ms, onProgress: log });
      console.log(opts.json ? JSON.stringify(r, null, 2) : renderRun(r, opts.slaP99Ms));
      failIfNothingAnswered(r, opts.url);
    });
}
