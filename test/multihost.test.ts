import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/model/store.ts';
import { ReferenceModel } from '../src/reference/reference-model.ts';
import { runOpenLoop, type RunResult } from '../src/bench/load-generator.ts';
import { inferBinary, scrapeMetric } from '../src/protocol/oip-client.ts';
import { maxAbsDiff, failuresOf } from './helpers.ts';
import { TestDns, dnsmasqMissing } from './dns-server.ts';
import { TestNetwork, netemAvailable, netnsMissing } from '../src/bench/network-hosts.ts';
import { podWorkload, startPod, waitReady, type Pod } from './pods.ts';

// Every shard replica and the router on a network host of its own (a namespace with its own
// address on a bridge), the router finding the shards through a real DNS server on that
// network; then the faults of a real cluster, one at a time, each measured. The router runs
// without admission control: shedding under a busy machine is not the loss these faults test.
const { config, modelDir, planFile, queries, encoded } = podWorkload();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const skip = netnsMissing || dnsmasqMissing;

test('shards on separate network hosts found by DNS: parity, and a killed host, a cut link, netem delay and loss, a replica that never answers lose no query; with no replica left, a 503 naming the service', { skip, timeout: 180_000 }, async (t) => {
  const net = new TestNetwork();
  const pods = new Map<string, Pod>();
  let dns: TestDns | null = null;
  const reference = await ReferenceModel.create(loadModel(modelDir));
  try {
    const addr: Record<string, string> = {};
    for (const h of ['a0', 'b0', 'a1', 'b1', 'hole', 'router']) addr[h] = net.addHost(h);
    const records = { 'shard-0.sw.test': [addr.a0, addr.b0], 'shard-1.sw.test': [addr.a1, addr.b1] };
    dns = await TestDns.start(records, net.gateway);
    const shard = (host: string, service: string) =>
      startPod(['shard', '--model', modelDir, '--plan', planFile, '--service', service, '--listen', `0.0.0.0:7000`, '--metrics-listen', '0.0.0.0:9090', '--drain-grace-ms', '1500'], net.exec(host)).then((p) => void pods.set(host, p));
    await Promise.all([shard('a0', 'shard-0'), shard('b0', 'shard-0'), shard('a1', 'shard-1'), shard('b1', 'shard-1')]);
    pods.set('router', await startPod(['router', '--model', modelDir, '--plan', planFile, '--listen', '0.0.0.0:8080', '--metrics-listen', '0.0.0.0:9090', '--discover', 'dns:{service}.sw.test:7000', '--dns-server', dns.server, '--deadline-ms', '2000', '--no-admission'], net.exec('router')));
    const url = `http://${addr.router}:8080`;
    await waitReady(`${url}/v2/health/ready`);
    for (const q of queries.slice(0, 20)) assert.ok(maxAbsDiff(await inferBinary(url, config.name, q, config.numDense), await reference.predict(q)) <= 1e-5);

    const rows = (host: string) => scrapeMetric(`http://${addr[host]}:9090`, 'shardwise_rows_served_total');
    /** Load while `fault` happens 1 s in; then how long until `host` serves again once `heal` ran (ms), if given. */
    const underFault = async (what: string, fault: () => void | Promise<void>, heal?: { host: string; run: () => void | Promise<void> }) => {
      const run: Promise<RunResult> = runOpenLoop({ url, modelName: config.name }, encoded, { qps: 100, durationS: 5, timeoutMs: 5000 });
      await sleep(1000);
      await fault();
      const r = await run;
      let recoverMs = NaN;
      if (heal) {
        await heal.run();
        const before = await rows(heal.host).catch(() => 0);
        const t0 = performance.now();
        for (let i = 0; i < 100; i++) {
          await runOpenLoop({ url, modelName: config.name }, encoded, { qps: 100, durationS: 0.2, timeoutMs: 5000 });
          if ((await rows(heal.host).catch(() => 0)) > before) {
            recoverMs = performance.now() - t0;
            break;
          }
        }
      }
      t.diagnostic(`${what}: ${r.ok} ok, ${r.errors + r.timeouts} failed, p99 ${r.latency.p99Ms.toFixed(1)} ms${heal ? `; serving again ${recoverMs.toFixed(0)} ms after it healed` : ''}`);
      assert.equal(r.errors + r.timeouts + r.rejected, 0, `${what}: no failed query while another replica is up: ${failuresOf(r)}`);
      if (heal) assert.ok(recoverMs < 20_000, `${what}: the replica is back in rotation`);
      return r;
    };

    await underFault('SIGKILL of host b0', () => pods.get('b0')!.stop('SIGKILL'), { host: 'b0', run: () => shard('b0', 'shard-0') });
    await underFault('link of host b0 cut', () => net.link('b0', false), { host: 'b0', run: () => net.link('b0', true) });
    if (netemAvailable()) {
      await underFault('20 ms delay and 1% loss on host a1', () => net.netem('a1', ['delay', '20ms', 'loss', '1%']), { host: 'a1', run: () => net.netem('a1', null) });
    } else t.diagnostic('netem delay and loss: skipped, this kernel has no netem qdisc (tc: "Specified qdisc kind is unknown")');

    // A replica that accepts connections and never answers, added to shard-0's records.
    const blackHole = await startBlackHole(net.exec('hole'));
    try {
      dns.set({ ...records, 'shard-0.sw.test': [addr.a0, addr.b0, addr.hole] });
      await sleep(2500);
      const r = await underFault('a shard-0 replica that never answers', () => {});
      assert.ok(r.latency.p99Ms < 1000, `p99 ${r.latency.p99Ms} ms: hedging, not the 2 s deadline`);
    } finally {
      blackHole.kill('SIGKILL');
    }

    // No shard-1 replica left at all.
    await Promise.all([pods.get('a1')!.stop('SIGKILL'), pods.get('b1')!.stop('SIGKILL')]);
    await sleep(500);
    const res = await fetch(`${url}/v2/models/${config.name}/infer`, { method: 'POST', headers: { 'inference-header-content-length': encoded[0].headerLength }, body: new Uint8Array(encoded[0].body) });
    assert.equal(res.status, 503);
    assert.match(await res.text(), /shard-1/);
  } finally {
    await reference.close();
    for (const p of pods.values()) await p.stop('SIGKILL');
    await dns?.stop();
    net.remove();
  }
});

/** A TCP server on a host that accepts every connection and never writes a byte. */
async function startBlackHole(prefix: string[]) {
  const { spawn } = await import('node:child_process');
  const child = spawn(prefix[0], [...prefix.slice(1), process.execPath, '-e', "require('net').createServer(() => {}).listen(7000, '0.0.0.0', () => console.log('listening'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return child;
}
