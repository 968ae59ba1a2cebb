import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { loadModel } from '../src/model/store.ts';
import { ReferenceModel } from '../src/reference/reference-model.ts';
import { runOpenLoop } from '../src/bench/load-generator.ts';
import { inferBinary, scrapeMetric } from '../src/protocol/oip-client.ts';
import { assertCliFails, maxAbsDiff, failuresOf } from './helpers.ts';
import { TestDns, dnsmasqMissing } from './dns-server.ts';
import { podWorkload, startPod, waitReady, type Pod } from './pods.ts';

// Pods on their own addresses (all of 127/8 is loopback on Linux), one port for all as in a
// cluster, found by the router through a real DNS server whose records the test changes. A
// shard's drain grace (1.5 s) outlasts the router's DNS refresh (the records' 1 s TTL), as a
// pod's must outlast its routers' refresh on Kubernetes. Routers run without admission control:
// a pod starting (a second of CPU on these two cores) can make one shed a few queries, which is not loss.
const { config, modelDir, planFile, queries, encoded } = podWorkload();
const PORT = 21_000 + Math.floor(Math.random() * 9_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const shardPod = (service: string, ip: string) => startPod(['shard', '--model', modelDir, '--plan', planFile, '--service', service, '--listen', `${ip}:${PORT}`, '--metrics-listen', `${ip}:0`, '--drain-grace-ms', '1500']);
const name = (service: string) => `${service}.sw.test`;

test('a router finds its shards through DNS: answers match the reference (pooled on the shards or raw rows pooled by the router), records added and removed under load lose no query, a service without records is a 503 naming it', { skip: dnsmasqMissing }, async () => {
  const dns = await TestDns.start({ [name('shard-0')]: ['127.0.0.2', '127.0.0.3'], [name('shard-1')]: ['127.0.0.4'] });
  const pods: Pod[] = [];
  const reference = await ReferenceModel.create(loadModel(modelDir));
  try {
    const [a, b, c] = await Promise.all([shardPod('shard-0', '127.0.0.2'), shardPod('shard-0', '127.0.0.3'), shardPod('shard-1', '127.0.0.4')]);
    pods.push(a, b, c);
    const router = await startPod(['router', '--model', modelDir, '--plan', planFile, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--discover', `dns:{service}.sw.test:${PORT}`, '--dns-server', dns.server, '--drain-grace-ms', '0', '--no-admission']);
    pods.push(router);
    const url = `http://127.0.0.1:${router.port}`;
    await waitReady(`${url}/v2/health/ready`).catch((e) => assert.fail(`${e.message}\nrouter log:\n${router.log()}`));

    for (const q of queries.slice(0, 20)) assert.ok(maxAbsDiff(await inferBinary(url, config.name, q, config.numDense), await reference.predict(q)) <= 1e-5);
    // The same with raw rows on the wire, pooled by the router (bench:network's baseline): the same answers.
    const rawRouter = await startPod(['router', '--model', modelDir, '--plan', planFile, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--discover', `dns:{service}.sw.test:${PORT}`, '--dns-server', dns.server, '--pooling', 'router', '--no-admission']);
    pods.push(rawRouter);
    await waitReady(`http://127.0.0.1:${rawRouter.port}/v2/health/ready`);
    for (const q of queries.slice(0, 20)) assert.ok(maxAbsDiff(await inferBinary(`http://127.0.0.1:${rawRouter.port}`, config.name, q, config.numDense), await reference.predict(q)) <= 1e-5, 'router-side pooling matches');
    await rawRouter.stop();
    const rows = (ip: string, pod: Pod) => scrapeMetric(`http://${ip}:${pod.metricsPort}`, 'shardwise_rows_served_total');
    assert.ok((await rows('127.0.0.2', a)) > 0 && (await rows('127.0.0.3', b)) > 0, 'both shard-0 replicas found by DNS serve');

    // Under load: shard-0's 127.0.0.3 leaves (its record goes and it is sent SIGTERM, as Kubernetes does both at once) and shard-1 gains 127.0.0.5.
    const d = await shardPod('shard-1', '127.0.0.5');
    pods.push(d);
    const loading = runOpenLoop({ url, modelName: config.name }, encoded, { qps: 100, durationS: 5, timeoutMs: 5000 });
    await sleep(1500);
    dns.set({ [name('shard-0')]: ['127.0.0.2'], [name('shard-1')]: ['127.0.0.4', '127.0.0.5'] });
    const leaving = b.stop('SIGTERM');
    const run = await loading;
    await leaving;
    console.log(`# DNS changes under load: ${run.ok} ok, ${run.errors} errors, ${run.timeouts} timeouts, p99 ${run.latency.p99Ms.toFixed(1)} ms`);
    assert.equal(run.errors + run.timeouts + run.rejected, 0, `no query lost to a replica leaving or joining: ${failuresOf(run)}`);
    assert.ok((await rows('127.0.0.5', d)) > 0, 'the replica added to DNS serves');
    assert.match(b.log(), /SIGTERM/, 'the leaving replica drained on SIGTERM');

    // Every shard-1 record gone (no ready pod): a clear 503 naming the service, and not ready.
    dns.set({ [name('shard-0')]: ['127.0.0.2'], [name('shard-1.other')]: ['127.0.0.9'] });
    await sleep(2500);
    const res = await fetch(`${url}/v2/models/${config.name}/infer`, { method: 'POST', headers: { 'inference-header-content-length': encoded[0].headerLength }, body: new Uint8Array(encoded[0].body) });
    assert.equal(res.status, 503);
    assert.match(await res.text(), /shard-1/);
    const ready = await fetch(`${url}/v2/health/ready`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /shard-1/);
  } finally {
    await reference.close();
    for (const p of pods) await p.stop();
    await dns.stop();
  }
});

test('pod commands and serve say what is wrong: an unknown shard, a router without replicas for a service, a bad address or spec, a port in use', async () => {
  const base = ['--model', modelDir, '--plan', planFile];
  const held = net.createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  const heldPort = (held.address() as net.AddressInfo).port;
  const inUse = new RegExp(`cannot listen on 127.0.0.1:${heldPort}: the address is in use \\(EADDRINUSE\\)\n  hint: another process holds this port`);
  const cases: [string[], RegExp][] = [
    [['shard', ...base, '--service', 'shard-0', '--listen', `127.0.0.1:${heldPort}`], inUse],
    [['shard', ...base, '--service', 'shard-0', '--listen', '192.0.2.1:7000'], /cannot listen on 192.0.2.1:7000: the address is not one of this host's \(EADDRNOTAVAIL\)/],
    // The front end fails in its own process: serve says which replica, why, and what to do (and stops the shards it started).
    [['serve', ...base, '--port', String(heldPort)], new RegExp(`router replica 0 exited during start \\(code 1\\): ${inUse.source}`)],
    [['shard', ...base, '--service', 'shard-9'], /no shard named "shard-9".*its shards: shard-0, shard-1/s],
    [['router', ...base, '--replicas', 'shard-0=static:127.0.0.1:7000'], /no replicas given for shard-1.*--discover/s],
    [['router', ...base, '--discover', 'dns:{service}.sw.test:70000'], /is not host:port/],
    [['router', ...base, '--discover', 'srv:{service}'], /neither static:… nor dns:…/],
    [['shard', ...base, '--service', 'shard-0', '--listen', 'localhost'], /--listen "localhost" is not host:port/],
    [['dense', ...base], /no dense service to start/],
  ];
  try {
    for (const [args, message] of cases) assertCliFails(args, 2, message);
  } finally {
    held.close();
  }
});
