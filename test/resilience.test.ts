import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import type { ModelConfig } from '../src/model/types.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import type { Plan } from '../src/plan/types.ts';
import type { LocalSupervisor, SupervisorOptions } from '../src/cluster/supervisor.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { encodeQueries, runOpenLoop } from '../src/bench/load-generator.ts';
import { scrapeMetric } from '../src/protocol/oip-client.ts';
import { tempDir, failuresOf } from './helpers.ts';
import { overloadWorkload } from './overload-workload.ts';
import { testDeployments } from './deployments.ts';

const dir = tempDir();
const config: ModelConfig = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 1001, poolingFactor: 5 }, { name: 'b', rows: 37, poolingFactor: 2 }, { name: 'c', rows: 2003, poolingFactor: 9 }] };
const modelDir = path.join(dir, 'model');
generateModel(modelDir, config, 5);
const gen = new QueryGenerator(config, { queries: 200, batch: 4, access: { kind: 'zipf', s: 1.05 }, pooling: 'poisson', seed: 11 });
const encoded = encodeQueries(Array.from({ length: 200 }, () => gen.next()), config.numDense);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const deployments = testDeployments();
const serve = (plan: Plan | null, deadlineMs = 2000, opts: Partial<SupervisorOptions> = {}) => deployments.serve({ modelDir, plan, deadlineMs, ...opts });
const stop = deployments.stop;

/** Open-loop load after half a second of warm-up (a cold process is slow for its first queries). */
const load = (sup: LocalSupervisor, qps: number, durationS: number) => runOpenLoop({ url: `http://127.0.0.1:${sup.routerPort}`, modelName: config.name }, encoded, { qps, durationS, timeoutMs: 5000, warmupS: 0.5 });

test('SIGSTOP one shard replica of two under load: no failed query, p99 far below the deadline, the replica is ejected and returns after SIGCONT', async () => {
  // No admission control: on a busy CI machine the router may shed a few queries (429), which is not what this test is about.
  const sup = await serve(rowWisePlan(config, { shards: 2, replicas: 2, cacheRows: 0, dense: 'router', denseReplicas: 1 }), 2000, { admission: null });
  try {
    const router = `http://127.0.0.1:${sup.replicas().find((r) => r.role === 'router')!.metricsPort}`;
    const normal = await load(sup, 150, 3);
    assert.equal(normal.errors + normal.timeouts + normal.rejected, 0, failuresOf(normal));
    const victim = sup.replicas().find((r) => r.service === 'shard-1')!;
    process.kill(victim.pid, 'SIGSTOP');
    let stopped;
    try {
      stopped = await load(sup, 150, 4);
    } finally {
      process.kill(victim.pid, 'SIGCONT');
    }
    console.log(`# hung replica: p99 ${normal.latency.p99Ms.toFixed(1)} ms normal, ${stopped.latency.p99Ms.toFixed(1)} ms with one of two shard-1 replicas stopped; ${stopped.errors + stopped.timeouts} failed of ${stopped.sent}`);
    assert.equal(stopped.errors + stopped.timeouts + stopped.rejected, 0, `no failed query: ${failuresOf(stopped)}`);
    assert.ok(stopped.latency.p99Ms < 500, `p99 ${stopped.latency.p99Ms} ms: requests did not wait out the 2 s deadline`);
    assert.ok((await scrapeMetric(router, 'shardwise_replica_ejections_total', 'pool="shard-1"')) >= 1, 'the stopped replica was ejected');
    assert.ok((await scrapeMetric(router, 'shardwise_hedged_requests_total', 'pool="shard-1"')) >= 1);
    // Back after SIGCONT: probed with live traffic once its ejection ends, it serves again.
    const served = () => scrapeMetric(`http://127.0.0.1:${victim.metricsPort}`, 'shardwise_rows_served_total');
    const before = await served();
    let after = before;
    for (let i = 0; i < 20 && after === before; i++) {
      await load(sup, 100, 1);
      after = await served();
    }
    assert.ok(after > before, 'the resumed replica serves again');
  } finally {
    await stop(sup);
  }
});

test('readiness means every service can serve: a shard whose only replica hangs or dies makes the router not ready, and ready again when it is back', async () => {
  const sup = await serve(rowWisePlan(config, { shards: 2, replicas: 1, cacheRows: 0, dense: 'router', denseReplicas: 1 }), 300);
  const readyUrl = `http://127.0.0.1:${sup.routerPort}/v2/health/ready`;
  const readiness = async () => {
    const res = await fetch(readyUrl);
    return { status: res.status, body: await res.text() };
  };
  try {
    assert.equal((await readiness()).status, 200);
    const shard = sup.replicas().find((r) => r.service === 'shard-0')!;
    process.kill(shard.pid, 'SIGSTOP');
    try {
      // Queries time out against the hung replica (no other to hedge on) until it is ejected.
      await load(sup, 50, 1);
      const r = await readiness();
      assert.equal(r.status, 503);
      assert.match(r.body, /every replica of service shard-0 is ejected/);
      assert.equal(sup.unready(), null, 'the process is alive, so the supervisor does not restart it');
    } finally {
      process.kill(shard.pid, 'SIGCONT');
    }
    for (let i = 0; i < 50 && (await readiness()).status !== 200; i++) await sleep(100);
    assert.equal((await readiness()).status, 200, 'ready again once the ejection ends');

    // A dead replica: the supervisor and the router agree the service is down until the restart.
    const other = sup.replicas().find((r) => r.service === 'shard-1')!;
    process.kill(other.pid, 'SIGKILL');
    let sawDown = false;
    let supervisorAgreed = false;
    for (let i = 0; i < 200; i++) {
      const r = await readiness();
      if (r.status === 503) {
        sawDown = true;
        assert.match(r.body, /service shard-1 has no replica/);
        supervisorAgreed ||= sup.unready() === 'service shard-1 has no running replica';
      } else if (sawDown) break;
      await sleep(10);
    }
    assert.ok(sawDown, 'not ready while shard-1 had no replica');
    assert.ok(supervisorAgreed, "the supervisor's view agreed");
    for (let i = 0; i < 100 && (await readiness()).status !== 200; i++) await sleep(100);
    assert.equal((await readiness()).status, 200);
    assert.equal(sup.unready(), null);
  } finally {
    await stop(sup);
  }
});

const cgroupWritable = fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') && process.getuid?.() === 0;

test('overload on a CPU-limited front end (from 2x its estimated capacity, up until a server without admission control falls behind): admission control refuses with 429, nothing fails, admitted and health latency stay below the same server without it, and it keeps most of that server\'s goodput', { skip: cgroupWritable ? false : 'needs root and the cgroup v1 cpu controller to limit the front end' }, async () => {
  // At half a CPU. 2x, not 4x: a refusal still costs receiving a 48 KB body (~0.1-0.3 ms against ~0.7 ms for a query),
  // so at 4x this front end is saturated by refusals alone on this machine (README: bench:overload; the balancer's test).
  const { modelDir: rm1Dir, run, overload, goodput, capacity: measureCapacity } = overloadWorkload(dir);
  const withAc = await serve(null, 2000, { modelDir: rm1Dir, replicaCpus: { monolithic: 0.5 } });
  const without = await serve(null, 2000, { modelDir: rm1Dir, replicaCpus: { monolithic: 0.5 }, admission: null });
  try {
    // The limit is enforced where cgroups can be written, and reported either way.
    const limit = process.getuid?.() === 0 && (fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') || fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) ? 0.5 : null;
    for (const sup of [withAc, without]) assert.deepEqual(sup.replicas().map((r) => r.cpuLimit), [limit]);
    // Warm-ups are not measured.
    await run(withAc, 100, 2);
    await run(without, 100, 2);
    // An overload of this VM as it runs now: the light-load estimate misses a batching server's gain by 1.5-4x with the VM's
    // phase, and at "2x" of it a server without admission control sometimes kept up (p99 79 ms). So from 2x of it, up by
    // half until that server's p99 over 2 s passes 500 ms: its queue grows.
    const capacity = await measureCapacity(without, 0.5);
    let qps = 2 * capacity;
    for (let i = 0; i < 4 && (await run(without, qps, 2)).latency.p99Ms < 500; i++) qps = Math.round(1.5 * qps);
    // That server swings between falling behind and catching up by merging its queue (a 2 s probe over 500 ms was followed
    // by a 4 s run at 84 ms, in CI), so the pair is measured again, higher, until its own measured run fell behind.
    let a = await overload(withAc, qps);
    let b = await overload(without, qps);
    for (let i = 0; i < 2 && b.r.latency.p99Ms < 500; i++) {
      qps = Math.round(1.5 * qps);
      a = await overload(withAc, qps);
      b = await overload(without, qps);
    }
    assert.ok(b.r.latency.p99Ms >= 500, `the server without admission control kept up at ${qps} qps (p99 ${b.r.latency.p99Ms} ms): no overload to compare`);
    console.log(`# overload: ~${capacity} qps of capacity at 0.5 CPU by the estimate; at ${qps} qps with admission control: goodput ${goodput(a).toFixed(0)}/s, ${a.r.rejected} refused, admitted p99 ${a.r.latency.p99Ms.toFixed(1)} ms, health p99 ${a.health.latency.p99Ms.toFixed(1)} ms; without: goodput ${goodput(b).toFixed(0)}/s, p99 ${b.r.latency.p99Ms.toFixed(1)} ms, health p99 ${b.health.latency.p99Ms.toFixed(1)} ms, ${b.r.errors + b.r.timeouts} failed`);
    assert.ok(a.r.rejected > 0, '429s appear');
    assert.equal(a.r.errors + a.r.timeouts, 0, `with admission control nothing fails but refusals: ${failuresOf(a.r)}`);
    assert.equal(a.health.failures, 0);
    // Not within the SLA: refusing in the front end costs the CPU it serves with (75-160 ms in runs here; within the SLA behind the
    // balancer, its test). The server without admission control swings between a growing queue and catching up by merging
    // it into large batches: its p99 was 0.3-2.5 s in these runs.
    assert.ok(a.r.latency.p99Ms < 300 && a.r.latency.p99Ms < b.r.latency.p99Ms, `admitted p99 ${a.r.latency.p99Ms} ms vs ${b.r.latency.p99Ms} ms without`);
    // Relative, not the 100 ms the issue asks (the balancer's test holds that): here the probe shares the front end's CPU with
    // its refusals and the test process with the load generator, 0.2-1.4 s in runs here. Below the unprotected server's, not a
    // multiple of it: that follows its own p99 (over 500 ms by construction; 1.0-5.0 s in runs here).
    assert.ok(a.health.latency.p99Ms < 2000 && a.health.latency.p99Ms < b.health.latency.p99Ms, `health p99 ${a.health.latency.p99Ms} ms vs ${b.health.latency.p99Ms} ms without`);
    // Refusing keeps most of what the unprotected server answered in time, up to the light-load estimate: that server, its
    // p99 over 500 ms, answered 0-240/s in time in most runs here but 714/s in one, catching up in bursts, and admission in
    // the front end pays for its refusals with the CPU it serves with (0.49-1.29x the estimate; the balancer keeps more).
    assert.ok(goodput(a) >= 0.6 * Math.min(goodput(b), capacity), `goodput ${goodput(a)}/s with admission control against ${goodput(b)}/s without (estimate ${capacity}/s)`);
  } finally {
    await stop(withAc);
    await stop(without);
  }
});
