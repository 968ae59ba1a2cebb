import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { HaproxyBalancer, balancerErrorFiles, balancerForSla, findHaproxy, haproxyConfig, refusalResponse } from '../src/cluster/balancer.ts';
import { defaultConcurrencyLimit, nextLimit } from '../src/cluster/concurrency-limit.ts';
import { startServeProcess } from '../src/bench/serve-process.ts';
import { AdminServer, adminTokenFile } from '../src/cluster/admin-api.ts';
import { silentLogger } from '../src/util/log.ts';
import { tempDir, unusedPort, failuresOf } from './helpers.ts';
import { type OverloadRun, overloadWorkload } from './overload-workload.ts';
import { testDeployments } from './deployments.ts';

const haproxy = findHaproxy();
const noHaproxy = haproxy ? false : 'needs haproxy (Debian: apt-get install haproxy)';
const cgroupWritable = process.getuid?.() === 0 && fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');

const { config, modelDir, target, run, overloadFromChild, goodput, capacity: measureCapacity } = overloadWorkload(tempDir());
const deployments = testDeployments();
const layout = { ...balancerForSla(50), host: '127.0.0.1', port: 8080, frontEndPort: 9090, replicas: 3, dir: '/run/sw' };

test('the balancer config: queries queue behind in-flight × replicas with the queue budget, newest first, everything else bypasses; the refusal is a JSON 429', () => {
  const cfg = haproxyConfig(layout);
  assert.match(cfg, /bind 127\.0\.0\.1:8080/);
  assert.match(cfg, /use_backend queries if METH_POST \{ path_end \/infer \}/);
  assert.match(cfg, /backend queries\n {2}timeout queue 13ms\n {2}http-request set-priority-class date\(0,ms\),mod\(2048\),neg\n {2}errorfile 503 \/run\/sw\/refused\.http\n.*\n {2}http-reuse always\n {2}retry-on conn-failure empty-response\n {2}retries 3\n {2}server front 127\.0\.0\.1:9090 maxconn 12 check inter 500ms fall 1 rise 1\n/);
  assert.match(cfg, /tune\.bufsize 65536\n/, 'a whole RM1 query fits a buffer, so it can be retried');
  assert.match(cfg, /backend direct\n {2}server front 127\.0\.0\.1:9090\n/, 'health and metadata: no in-flight limit, no queue');
  assert.match(haproxyConfig({ ...layout, replicas: 0 }), /maxconn 4 check inter 500ms fall 1 rise 1 disabled\n/, 'never 0, which haproxy reads as unlimited; no front end: in maintenance');
  assert.match(cfg, /http-request return status 503 errorfile \/run\/sw\/unavailable\.http if \{ nbsrv eq 0 \}/);
  const raw = refusalResponse(12.5);
  const [head, body] = raw.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
  assert.match(head, /\r\nretry-after: 1\r\n/);
  assert.equal(Number(/content-length: (\d+)/.exec(head)![1]), Buffer.byteLength(body));
  assert.equal(JSON.parse(body).code, 'SW_OVERLOADED');
});

test('the adaptive in-flight limit grows with the headroom under its target while queries wait, by one near it, is cut by a quarter over it, and holds when idle or in bounds', () => {
  const cfg = defaultConcurrencyLimit(50); // p95 target 25 ms, growth below 20 ms
  const step = (limit: number, p95Ms: number, queued: number, answered = 100, balancerMeanMs = 0) => nextLimit({ at: 0, p95Ms, answered, queued, balancerMeanMs }, { limit }, cfg).state.limit;
  assert.equal(step(4, 10, 3), 6, 'waiting and at half the growth bound: half as much again (the most one period grows)');
  assert.equal(step(10, 16, 3), 12, 'waiting at 80% of the bound: a quarter more (20/16)');
  assert.equal(step(10, 19, 3), 11, 'waiting just under the bound: at least one more');
  assert.equal(step(4, 10, 0), 4, 'fast but nobody waiting: no need');
  assert.equal(step(4, 22, 3), 4, 'between 80% and 100% of the target: settle');
  assert.equal(step(8, 40, 3), 6, 'slow: cut by a quarter');
  assert.equal(step(1, 80, 3), 1, 'never below the minimum');
  assert.equal(step(60, 2, 9), 64, 'never above the maximum');
  assert.equal(step(8, 80, 3, 0), 8, 'no answers in the period: no p95 to go by');
  assert.equal(step(8, 10, 3, 100, 40), 6, "the front ends look fast but the balancer waits 40 ms on them (queries unparsed in their sockets): cut");
  assert.equal(step(8, 10, 3, 100, 22), 8, 'the slower view in the settling band: hold');
  // A saturated front end whose p95 grows with what it holds (Little's law: 2.5 ms a query here)
  // climbs from 4 to the settling band in a few periods, and a slow spell brings it back down.
  let limit = 4;
  const p95Of = (l: number) => 2.5 * l;
  const path = [limit];
  for (let i = 0; i < 6; i++) path.push((limit = step(limit, p95Of(limit), 5)));
  assert.deepEqual(path, [4, 6, 8, 9, 9, 9, 9], 'settles where the p95 is 80-100% of the target (22.5 ms at 9)');
  limit = step(limit, 60, 2);
  assert.equal(limit, 6);
  limit = 4;
  for (let i = 0; i < 4; i++) limit = step(limit, 2, 5);
  assert.equal(limit, 19, 'far under the target: ×1.5 a period (4, 6, 9, 13, 19)');
});

test('the adaptive limit is cut at most once a period: the answers of the period after a cut were admitted under the old limit', () => {
  const cfg = defaultConcurrencyLimit(50);
  const observe = (at: number, p95Ms: number) => ({ at, p95Ms, answered: 100, queued: 5, balancerMeanMs: 0 });
  const slow = nextLimit(observe(0, 36), { limit: 16 }, cfg).state;
  assert.deepEqual(slow, { limit: 12, cutAt: 0 });
  const held = nextLimit(observe(500, 27), slow, cfg).state;
  assert.equal(held.limit, 12, 'the next period still slow: held, not cut to 9');
  assert.equal(nextLimit(observe(1000, 27), held, cfg).state.limit, 9, 'slow a period later too: cut');
  assert.equal(nextLimit(observe(500, 15), slow, cfg).state.limit, 16, 'fast after the cut: grows as before (12 × 20/15)');
});

test('haproxy accepts the rendered config', { skip: noHaproxy }, () => {
  const d = tempDir();
  for (const [file, text] of Object.entries(balancerErrorFiles(balancerForSla(50)))) fs.writeFileSync(path.join(d, file), text);
  fs.writeFileSync(path.join(d, 'haproxy.cfg'), haproxyConfig({ ...layout, dir: d }));
  const check = spawnSync(haproxy!, ['-c', '-f', path.join(d, 'haproxy.cfg')], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});

test('with no front end running, the balancer answers queries 503 SW_SERVICE at once (not over capacity), and passes them on once one runs', { skip: noHaproxy }, async () => {
  const frontEnd = http.createServer((req, res) => req.resume().on('end', () => res.end('{}')));
  await new Promise<void>((r) => frontEnd.listen(0, '127.0.0.1', r));
  const frontEndPort = (frontEnd.address() as net.AddressInfo).port;
  const port = await unusedPort();
  const b = await HaproxyBalancer.start({ ...balancerForSla(50), host: '127.0.0.1', port, frontEndPort, replicas: 0, dir: tempDir() }, silentLogger);
  const query = () => fetch(`http://127.0.0.1:${port}/v2/models/m/infer`, { method: 'POST', body: '{}' });
  try {
    const down = await query();
    assert.equal(down.status, 503);
    assert.equal((await down.json()).code, 'SW_SERVICE');
    assert.equal((await b.stats()).refused, 0, 'not counted as a refusal');
    await b.setLimit({ replicas: 1 });
    assert.equal((await query()).status, 200, 'a front end again: queries pass');
    await b.setLimit({ replicas: 0 });
    assert.equal((await query()).status, 503);
  } finally {
    await b.stop();
    frontEnd.close();
  }
});

test('queries waiting in the balancer are served newest first, so under overload the answered ones waited least', { skip: noHaproxy }, async () => {
  const arrivals: string[] = [];
  const held: http.ServerResponse[] = [];
  const frontEnd = http.createServer((req, res) => {
    arrivals.push(req.headers['x-query'] as string);
    req.resume().on('end', () => held.push(res));
  });
  await new Promise<void>((r) => frontEnd.listen(0, '127.0.0.1', r));
  const port = await unusedPort();
  const b = await HaproxyBalancer.start({ inflightPerReplica: 1, queueMs: 3000, host: '127.0.0.1', port, frontEndPort: (frontEnd.address() as net.AddressInfo).port, replicas: 1, dir: tempDir() }, silentLogger);
  const query = (id: string) => fetch(`http://127.0.0.1:${port}/v2/models/m/infer`, { method: 'POST', body: '{}', headers: { 'x-query': id } }).then((r) => r.status);
  const until = async (ok: () => boolean) => {
    while (!ok()) await new Promise((r) => setTimeout(r, 5));
  };
  try {
    // The order is by the arrival's millisecond in a 2.048 s cycle: start well inside one.
    await until(() => Date.now() % 2048 < 1500);
    const answers = [query('first')];
    await until(() => held.length === 1);
    answers.push(query('older'));
    await new Promise((r) => setTimeout(r, 30));
    answers.push(query('newer'));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal((await b.stats()).queued, 2, 'two wait behind the limit of one');
    for (let done = 1; done <= 3; done++) {
      held.shift()!.end('{}');
      if (done < 3) await until(() => held.length === 1);
    }
    assert.deepEqual(await Promise.all(answers), [200, 200, 200]);
    assert.deepEqual(arrivals, ['first', 'newer', 'older']);
  } finally {
    await b.stop();
    frontEnd.close();
  }
});

test('behind the balancer: queries and health pass through, its in-flight limit follows the front-end replicas as they scale, and it stops with the deployment', { skip: noHaproxy }, async () => {
  const sup = await deployments.serve({ modelDir, plan: null, balancer: { inflightPerReplica: 5, queueMs: 25, adaptive: null, frontEndTimeoutS: 1 } });
  try {
    const b = sup.balancerProcess!;
    assert.equal((await b.stats()).inflightLimit, 5);
    assert.notEqual(sup.replicas()[0].port, sup.routerPort, 'the front end listens behind the balancer');
    const health = await fetch(`${target(sup).url}/v2/health/ready`);
    assert.equal(health.status, 200);
    const r = await run(sup, 50, 1);
    assert.equal(r.ok, r.sent, 'every query answered through the balancer');
    await sup.scale('model', 2);
    assert.equal((await b.stats()).inflightLimit, 10, 'two replicas: twice the limit');
    await sup.scale('model', 1);
    assert.equal((await b.stats()).inflightLimit, 5);
    assert.ok((await b.stats()).forwarded >= r.sent);
    // HAProxy's own exporter: its queue and refusals, for Prometheus beside the replicas' /metrics.
    const metrics = await (await fetch(`http://127.0.0.1:${b.metricsPort}/metrics`)).text();
    assert.match(metrics, /^haproxy_backend_current_queue\{proxy="queries"\} 0$/m);
    assert.match(metrics, /^haproxy_backend_http_responses_total\{proxy="queries",code="5xx"\} 0$/m);
    // The admin API reports it (status prints it) and lists its exporter among Prometheus' targets.
    const admin = new AdminServer(sup, 'token', silentLogger);
    const url = `http://127.0.0.1:${await admin.listen(0)}`;
    try {
      const { balancer } = await (await fetch(`${url}/v1/state`)).json();
      assert.deepEqual({ ...balancer, forwarded: 0 }, { kind: 'haproxy', inflightLimit: 5, queued: 0, refused: 0, forwarded: 0, metricsPort: b.metricsPort });
      const targets: { targets: string[]; labels: Record<string, string> }[] = await (await fetch(`${url}/v1/targets`)).json();
      assert.deepEqual(targets.find((t) => t.labels.shardwise_service === 'balancer')?.targets, [`127.0.0.1:${b.metricsPort}`]);
    } finally {
      await admin.close();
    }
    // A hung front end: a JSON 504 after the balancer's front-end timeout, not HAProxy's HTML page, for queries and probes alike.
    const pid = sup.replicas()[0].pid;
    process.kill(pid, 'SIGSTOP');
    try {
      for (const res of [await fetch(`${target(sup).url}/v2/models/${config.name}/infer`, { method: 'POST', body: '{}' }), await fetch(`${target(sup).url}/v2/health/ready`)]) {
        assert.equal(res.status, 504);
        assert.equal((await res.json()).code, 'SW_TIMEOUT');
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.equal((await b.stats()).refused, 0, 'a hung front end\'s 504s are not refusals');
  } finally {
    await deployments.stop(sup);
  }
  const refused = await new Promise<boolean>((resolve) => {
    const c = net.connect(sup.routerPort, '127.0.0.1', () => (c.destroy(), resolve(false)));
    c.on('error', () => resolve(true));
  });
  assert.ok(refused, 'the public port closed with the deployment');
});

test('a front-end replica killed under load behind the balancer loses no query: the balancer sends what it had in flight there again, to the other replica', { skip: noHaproxy }, async () => {
  // A queue budget long enough that the replacement's start-up, sharing the two cores, refuses nothing: every query must be answered.
  const sup = await deployments.serve({ modelDir, plan: null, balancer: { inflightPerReplica: 8, queueMs: 500, adaptive: null } });
  try {
    await sup.scale('model', 2);
    const victim = sup.replicas().find((r) => r.service === 'model')!.pid;
    const load = run(sup, 300, 3);
    setTimeout(() => process.kill(victim, 'SIGKILL'), 1500);
    const r = await load;
    assert.ok(!sup.replicas().some((x) => x.pid === victim), 'the killed replica was replaced');
    assert.equal(r.errors + r.timeouts + r.rejected, 0, failuresOf(r));
    assert.equal(r.ok, r.sent);
  } finally {
    await deployments.stop(sup);
  }
});

test('SIGKILL of serve takes the balancer with it: the public port closes', { skip: noHaproxy }, async () => {
  const s = await startServeProcess(['--model', modelDir, '--monolithic', '--balancer', 'haproxy', '--drain-grace-ms', '0']);
  assert.equal((await fetch(`${s.url}/v2/health/live`)).status, 200);
  s.child.kill('SIGKILL');
  await s.exited;
  let open = true;
  for (let i = 0; i < 50 && open; i++) {
    open = await new Promise<boolean>((resolve) => {
      const c = net.connect(s.port, '127.0.0.1', () => (c.destroy(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (open) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(!open, 'haproxy exited with its supervisor');
  // A SIGKILLed serve cannot remove its admin token file (the next serve does, once it is stale): the test does.
  fs.rmSync(adminTokenFile(Number(new URL(s.adminUrl).port)), { force: true });
});

test('4x overload on a CPU-limited front end behind the balancer: it refuses with 429 outside the front end, nothing fails, health answers within 100 ms, and what it admits is answered within the SLA', { skip: noHaproxy || (cgroupWritable ? false : 'needs root and the cgroup v1 cpu controller to limit the front end') }, async () => {
  const front = await deployments.serve({ modelDir, plan: null, replicaCpus: { monolithic: 0.5 } });
  const balanced = await deployments.serve({ modelDir, plan: null, replicaCpus: { monolithic: 0.5 }, balancer: balancerForSla(50) });
  try {
    // Warm-ups are not measured.
    await run(front, 100, 2);
    await run(balanced, 100, 2);
    const capacity = await measureCapacity(front, 0.5);
    // The load from a process of its own: sent from this one, at 4x (2,600-3,000 qps of 48 KB bodies) its event loop
    // delayed the probe and blurred every latency it measured.
    const a = await overloadFromChild(balanced, 4 * capacity);
    const b = await overloadFromChild(front, 4 * capacity);
    const answered = (x: OverloadRun) => x.r.ok / x.r.durationS;
    const withinSla = (x: OverloadRun) => x.r.okWithinSla / Math.max(1, x.r.ok);
    const stats = await balanced.balancerProcess!.stats();
    console.log(`# 4x overload (~${capacity} qps of capacity at 0.5 CPU): behind the balancer (in-flight limit now ${stats.inflightLimit}) goodput ${goodput(a).toFixed(0)}/s, answered ${answered(a).toFixed(0)}/s (${(100 * withinSla(a)).toFixed(0)}% within the SLA), ${a.r.rejected} refused, admitted p99 ${a.r.latency.p99Ms.toFixed(1)} ms, health p99 ${a.health.latency.p99Ms.toFixed(1)} ms; front-end admission alone: goodput ${goodput(b).toFixed(0)}/s, answered ${answered(b).toFixed(0)}/s, ${b.r.rejected} refused, p99 ${b.r.latency.p99Ms.toFixed(1)} ms, health p99 ${b.health.latency.p99Ms.toFixed(1)} ms`);
    assert.ok(a.r.rejected > 0 && stats.refused > 0, `429s, from the balancer (it counted ${stats.refused})`);
    assert.equal(a.r.errors + a.r.timeouts, 0, `nothing fails but refusals: ${failuresOf(a.r)}`);
    assert.equal(a.health.failures, 0);
    // Health bypasses the balancer's queue and the front end never spends its CPU refusing: 20-36 ms in runs here with the
    // load from another process (34-182 ms at 3x with it sent from this one); admission in the front end alone is
    // printed beside it, not asserted (its figure moves with this VM's speed).
    assert.ok(a.health.latency.p99Ms < 100, `health p99 ${a.health.latency.p99Ms} ms (front-end admission alone: ${b.health.latency.p99Ms} ms)`);
    // What it admits is answered in time: admitted p99 37-44 ms in six runs here (SLA 50 ms). Asserted as the share
    // within the SLA, with a margin for this shared VM's stalls, not as a p99 that one stall decides.
    assert.ok(withinSla(a) >= 0.9, `${a.r.okWithinSla} of ${a.r.ok} answers within the SLA behind the balancer (p99 ${a.r.latency.p99Ms} ms)`);
  } finally {
    await deployments.stop(front);
    await deployments.stop(balanced);
  }
});
