/**
 * npm run bench:network — the disaggregated model across network hosts: 4 shards and the
 * router each on a host of its own (network namespaces with their own addresses on a bridge,
 * so every lookup crosses a real veth link and the kernel's TCP stack), the load generator on
 * the bridge. Per link delay (0, 1 and 5 ms of `tc netem` on every shard's link, where the
 * kernel has netem) and per pooling (on the shards: one partial per bag on the wire, the
 * default; on the router: one raw row per lookup, FlexEMR's baseline), side by side: max QPS at
 * p99 ≤ SLA_MS (searches interleaved step by step), p99 at a common load, and internal bytes
 * per query both ways from the router's own counters. Every process runs the compiled build.
 *
 * First, the bare network path: round trips of 10 KB between two hosts with a plain TCP echo,
 * so the table can be read against what the links themselves cost on this machine.
 *
 * Needs root and iproute2. Env: ROWS per table (100000), STEP_S (3), SLA_MS (50),
 * DELAYS_MS (0,1,5), MIN_SAMPLES per search step (300). The common load for p99 is half the lower max QPS of the two poolings.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { MaxQpsSearch, runInterleaved, runOpenLoop, type LoadTarget, type RunResult } from '../src/bench/load-generator.ts';
import { TestNetwork, netemAvailable, netnsMissing } from '../src/bench/network-hosts.ts';
import { scrapeMetric } from '../src/protocol/oip-client.ts';
import { formatBytes, renderTable } from '../src/util/format.ts';
import { compiledPods } from './compiled.ts';
import { BATCH, LOCALITY, hotnessRowWisePlan, rm1Workload } from './rm1-workload.ts';

const ROWS = Number(process.env.ROWS ?? 100_000);
const STEP_S = Number(process.env.STEP_S ?? 3);
const SLA_MS = Number(process.env.SLA_MS ?? 50);
/** Queries per search step at least: fewer than bench:serving's 1000, as raw rows over these links serve only tens of qps. */
const MIN_SAMPLES = Number(process.env.MIN_SAMPLES ?? 300);
const log = (s: string) => process.stderr.write(`${s}\n`);
if (netnsMissing) {
  log(`bench:network ${netnsMissing}`);
  process.exit(2);
}
const netem = netemAvailable();
const DELAYS = (process.env.DELAYS_MS ?? '0,1,5').split(',').map(Number);
const { startPod, waitReady } = await compiledPods();

log(`model: RM1 shape, ${ROWS} rows × 10 tables; trace: 2000 queries of batch ${BATCH} at locality ${LOCALITY}; SLA p99 ≤ ${SLA_MS} ms`);
const { config, modelDir, profileFile, encoded, remove } = rm1Workload('network', ROWS, 2000, 2);
const plan = hotnessRowWisePlan(config, 4, profileFile);
const planFile = path.join(path.dirname(modelDir), 'plan.json');
fs.writeFileSync(planFile, JSON.stringify(plan));

interface Contender {
  delayMs: number;
  pooling: 'shard' | 'router';
  target: LoadTarget;
  metricsUrl: string;
  search: MaxQpsSearch;
  commonQps?: number;
  common?: RunResult;
  bytesSent?: number;
  bytesReceived?: number;
}

/** Round trips of `bytes` each way between this host and an echo server on `host`: sorted ms. */
async function echoRoundTrips(network: TestNetwork, host: string, address: string, bytes: number, n = 300, gapMs = 5): Promise<number[]> {
  const [cmd, ...args] = network.exec(host);
  const server = `require('net').createServer((s) => { s.setNoDelay(true); let got = 0; s.on('data', (d) => { got += d.length; if (got >= ${bytes}) { got = 0; s.write(Buffer.alloc(${bytes})); } }); }).listen(7100, '0.0.0.0', () => console.log('up'))`;
  const child = spawn(cmd, [...args, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((r) => child.stdout!.once('data', r));
    const socket = net.connect(7100, address);
    socket.setNoDelay(true);
    await new Promise((r) => socket.once('connect', r));
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        let got = 0;
        const onData = (d: Buffer) => {
          got += d.length;
          if (got < bytes) return;
          socket.off('data', onData);
          resolve();
        };
        socket.on('data', onData);
        socket.write(Buffer.alloc(bytes));
      });
      times.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, gapMs));
    }
    socket.destroy();
    return times.sort((a, b) => a - b);
  } finally {
    child.kill('SIGKILL');
  }
}

const network = new TestNetwork();
const pods: { stop: (s?: NodeJS.Signals) => Promise<void> }[] = [];
// Interrupted (Ctrl-C), the hosts and pods must not outlive the benchmark.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const p of pods) void p.stop('SIGKILL');
    network.remove();
    remove();
    process.exit(130);
  });
}
try {
  const shardHosts = plan.shards.map((s) => ({ service: s.name, host: `s${s.name.slice(-1)}`, address: network.addHost(`s${s.name.slice(-1)}`) }));
  const routerHosts = { shard: network.addHost('rp'), router: network.addHost('rr') };
  log('starting 4 shard hosts…');
  for (const s of shardHosts) pods.push(await startPod(['shard', '--model', modelDir, '--plan', planFile, '--service', s.service, '--listen', '0.0.0.0:7000', '--metrics-listen', '0.0.0.0:9090'], network.exec(s.host)));
  const replicas = shardHosts.flatMap((s) => ['--replicas', `${s.service}=static:${s.address}:7000`]);
  // One router per pooling, each on its own host, both fanning out to the same shards.
  const contenders: Contender[] = [];
  for (const pooling of ['shard', 'router'] as const) {
    const host = pooling === 'shard' ? 'rp' : 'rr';
    pods.push(await startPod(['router', '--model', modelDir, '--plan', planFile, '--listen', '0.0.0.0:8080', '--metrics-listen', '0.0.0.0:9090', '--pooling', pooling, '--no-admission', ...replicas], network.exec(host)));
    await waitReady(`http://${routerHosts[pooling]}:8080/v2/health/ready`);
  }
  const rtt = await echoRoundTrips(network, 's0', shardHosts[0].address, 10_240);
  const pct = (q: number) => rtt[Math.min(rtt.length - 1, Math.floor(q * rtt.length))].toFixed(2);
  const rttLine = `bare TCP round trip of 10 KB each way to a shard host (5 ms apart): p50 ${pct(0.5)} ms, p90 ${pct(0.9)} ms, p99 ${pct(0.99)} ms`;
  log(rttLine);
  const measured: Contender[] = [];
  for (const delayMs of DELAYS) {
    if (delayMs > 0 && !netem) {
      log(`${delayMs} ms link delay: not measured, this kernel has no netem qdisc`);
      continue;
    }
    for (const s of shardHosts) {
      network.netem(s.host, null);
      if (delayMs > 0) network.netem(s.host, ['delay', `${delayMs}ms`]);
    }
    const round = (['shard', 'router'] as const).map((pooling): Contender => {
      const address = routerHosts[pooling];
      return {
        delayMs,
        pooling,
        target: { url: `http://${address}:8080`, modelName: config.name },
        metricsUrl: `http://${address}:9090`,
        search: new MaxQpsSearch({ slaP99Ms: SLA_MS, stepS: STEP_S, timeoutMs: 10_000, warmupS: 1, startQps: 100, minSamples: MIN_SAMPLES, floorQps: 10, onProgress: (l) => log(`[${delayMs} ms, pooled on the ${pooling}] ${l.trim()}`) }),
      };
    });
    await runInterleaved(round, encoded, { timeoutMs: 10_000, warmupS: 1 });
    const common = Math.max(5, 0.5 * Math.min(...round.map((c) => c.search.maxQps)));
    for (const c of round) {
      const wire = (direction: string) => scrapeMetric(c.metricsUrl, 'shardwise_wire_bytes_total', `direction="${direction}"`);
      const served = () => scrapeMetric(c.metricsUrl, 'shardwise_requests_total', 'outcome="ok"');
      const [sent0, received0, served0] = [await wire('sent'), await wire('received'), await served()];
      c.commonQps = common;
      c.common = await runOpenLoop(c.target, encoded, { qps: common, durationS: Math.min(60, Math.max(10, MIN_SAMPLES / common)), timeoutMs: 10_000, warmupS: 1 });
      const queries = (await served()) - served0;
      c.bytesSent = ((await wire('sent')) - sent0) / queries;
      c.bytesReceived = ((await wire('received')) - received0) / queries;
      log(`[${delayMs} ms, pooled on the ${c.pooling}] at ${common.toFixed(0)} qps: p99 ${c.common.latency.p99Ms.toFixed(2)} ms`);
    }
    measured.push(...round);
  }
  for (const s of shardHosts) network.netem(s.host, null);

  console.log(`\nbench:network — RM1 shape, ${ROWS} rows/table, batch ${BATCH}; 4 shards and the router each on a network host of its own (netns + veth + bridge) on this 2-core machine; SLA p99 ≤ ${SLA_MS} ms`);
  console.log(
    renderTable(
      ['link delay', 'pooled on', 'max qps', 'common load qps', 'p99 there ms', 'bytes/query router→shards', 'bytes/query shards→router'],
      measured.map((c) => [`${c.delayMs} ms`, c.pooling, c.search.maxQps > 0 ? c.search.maxQps.toFixed(0) : '< 10', c.commonQps!.toFixed(0), c.common!.latency.p99Ms.toFixed(2), formatBytes(c.bytesSent!), formatBytes(c.bytesReceived!)]),
    ),
  );
  console.log(rttLine);
  if (!netem) console.log('link delays above 0 ms not measured: this kernel has no netem qdisc (tc: "Specified qdisc kind is unknown")');
  const at = (delay: number, pooling: string) => measured.find((c) => c.delayMs === delay && c.pooling === pooling);
  const pooled0 = at(0, 'shard')!;
  const raw0 = at(0, 'router')!;
  const five = at(5, 'shard');
  const bytes = (c: Contender) => c.bytesSent! + c.bytesReceived!;
  console.log(
    `\np99 at 5 ms link delay: ${five ? `${(five.common!.latency.p99Ms / pooled0.common!.latency.p99Ms).toFixed(1)}x of 0 ms` : 'not measured (no netem)'}; ` +
      `pooled/raw bytes per query 1/${(bytes(raw0) / bytes(pooled0)).toFixed(1)}; max QPS pooled ${raw0.search.maxQps > 0 ? `${(pooled0.search.maxQps / raw0.search.maxQps).toFixed(1)}x raw` : `${pooled0.search.maxQps.toFixed(0)} qps, raw under 10`} at 0 ms`,
  );
} finally {
  for (const p of pods) await p.stop('SIGKILL');
  network.remove();
  remove();
}
