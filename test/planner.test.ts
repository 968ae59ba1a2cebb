import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { partitionDp } from '../src/planner/partition-dp.ts';
import { placeReplicas } from '../src/planner/placement.ts';
import { profileFromTrace, syntheticProfile } from '../src/profile/build.ts';
import { readProfile, writeProfile } from '../src/profile/format.ts';
import { cdfAt } from '../src/profile/types.ts';
import { presetConfig } from '../src/model/presets.ts';
import { writeTrace } from '../src/workload/generate-trace.ts';
import { COST_FORMAT, COST_VERSION, shardQps, validateCostModel, type CostModel } from '../src/planner/cost-model.ts';
import { allStrategies, strategyNamed } from '../src/planner/strategies.ts';
import { runPlanner } from '../src/planner/planner.ts';
import { Rng } from '../src/util/rng.ts';
import { tempDir } from './helpers.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { planningInputOf, replicaCapacities } from '../src/planner/capacity.ts';
import { DEFAULT_TARGETS, scalingMetric, scalingTarget } from '../src/cluster/scaling-config.ts';

test('DP reproduces the Fig 10 toy example', () => {
  const cost = (i: number, j: number) => (j - i + 1) ** 2 / i;
  // Mem[s][x] over the first x entries: run the DP on prefixes.
  const best = (x: number, s: number) => partitionDp(x, s, cost).costByShards[s - 1];
  assert.equal(best(2, 2), 1.5);
  assert.equal(best(3, 2), 3);
  assert.ok(Math.abs(best(4, 2) - 16 / 3) < 1e-9);
  assert.equal(best(5, 3), 4);
  // The best plan overall uses three shards (Mem[3][5] = 4 beats one or two shards).
  const p = partitionDp(5, 3, cost);
  assert.equal(p.cost, 4);
  assert.deepEqual(p.ends, [1, 3, 5]);
});

test('DP with exactly three shards on the toy cost ends at [1, 3, 5]', () => {
  const cost = (i: number, j: number) => (j - i + 1) ** 2 / i;
  // Penalize other shard counts so the argmin backtrack for s = 3 is what comes out.
  const p = partitionDp(5, 3, (i, j) => cost(i, j) - 10);
  assert.deepEqual(p.ends, [1, 3, 5]);
  assert.equal(p.cost + 30, 4);
});

test('DP matches brute force on small random inputs', () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 40; trial++) {
    const n = 1 + rng.below(8);
    const S = 1 + rng.below(4);
    const table = Array.from({ length: n + 1 }, () => Array.from({ length: n + 1 }, () => rng.next() * 10));
    const cost = (i: number, j: number) => table[i][j];
    let brute = Infinity;
    // Every cut: a bitmask of ends among buckets 1..n−1, with at most S segments.
    for (let mask = 0; mask < 1 << (n - 1); mask++) {
      const ends = [...Array(n - 1).keys()].filter((b) => mask & (1 << b)).map((b) => b + 1);
      if (ends.length + 1 > S) continue;
      let start = 1;
      let c = 0;
      for (const e of [...ends, n]) {
        c += cost(start, e);
        start = e + 1;
      }
      brute = Math.min(brute, c);
    }
    const dp = partitionDp(n, S, cost);
    assert.ok(Math.abs(dp.cost - brute) < 1e-9, `trial ${trial}: dp ${dp.cost} vs brute ${brute}`);
    let start = 1;
    let c = 0;
    for (const e of dp.ends) {
      c += cost(start, e);
      start = e + 1;
    }
    assert.ok(Math.abs(c - dp.cost) < 1e-9, 'the backtracked cut costs what the DP says');
  }
});

test('profile from a trace: permutation sorts by count, CDF matches, file round-trips', () => {
  const dir = tempDir();
  const config = presetConfig('tiny');
  const trace = path.join(dir, 't.bin');
  writeTrace(trace, config, { queries: 300, batch: 4, access: { kind: 'locality', p: 0.9 }, pooling: 'fixed', seed: 5 });
  const profile = profileFromTrace(trace);
  const t0 = profile.tables[0];
  assert.equal(t0.permutation!.length, t0.rows);
  assert.equal(new Set(t0.permutation).size, t0.rows, 'a permutation');
  assert.ok(Math.abs(cdfAt(t0, Math.round(t0.rows * 0.1)) - 0.9) < 0.05, `hottest 10% take ≈90%: ${cdfAt(t0, t0.rows * 0.1)}`);
  assert.equal(cdfAt(t0, 0), 0);
  assert.equal(cdfAt(t0, t0.rows), 1);
  const file = path.join(dir, 'p.bin');
  writeProfile(file, profile);
  const back = readProfile(file, config);
  assert.deepEqual(back.tables[0].permutation, t0.permutation);
  assert.deepEqual(back.tables[1].knotCdf, profile.tables[1].knotCdf);
  assert.throws(() => readProfile(file, presetConfig('rm1', 1000)), /tables but model|rows but model/);
});

test('synthetic profiles: locality P puts P on the hottest 10%, Zipf is concave', () => {
  const config = presetConfig('rm1', 1_000_000);
  const loc = syntheticProfile(config, { kind: 'locality', p: 0.9 }).tables[0];
  assert.ok(Math.abs(cdfAt(loc, 100_000) - 0.9) < 1e-12);
  assert.ok(Math.abs(cdfAt(loc, 50_000) - 0.45) < 1e-12);
  const z = syntheticProfile(config, { kind: 'zipf', s: 1.1 }).tables[0];
  assert.ok(cdfAt(z, 1000) > 0.5 && cdfAt(z, 1000) < cdfAt(z, 10_000));
});

test('placement packs replicas first-fit decreasing and refuses what no node can hold', () => {
  const GiB = 2 ** 30;
  const items = [
    { service: 'a', cpus: 3, memBytes: 1 * GiB },
    { service: 'b', cpus: 1, memBytes: 6 * GiB },
    { service: 'c', cpus: 1, memBytes: 2 * GiB },
    { service: 'd', cpus: 2, memBytes: 1 * GiB },
  ];
  const p = placeReplicas(items, { cpus: 4, memBytes: 8 * GiB });
  assert.equal(p.nodes.length, 2);
  for (const n of p.nodes) {
    assert.ok(n.reduce((s, i) => s + i.cpus, 0) <= 4);
    assert.ok(n.reduce((s, i) => s + i.memBytes, 0) <= 8 * GiB);
  }
  assert.throws(() => placeReplicas([{ service: 'big', cpus: 1, memBytes: 9 * GiB }], { cpus: 4, memBytes: 8 * GiB }), /'big' needs/);
});

const paperCost: CostModel = {
  format: COST_FORMAT,
  version: COST_VERSION,
  source: 'test',
  shard: { curves: [{ dim: 32, alphaMs: 10, betaMs: 1.6 }], replica: { cpus: 1, memBytes: 2 ** 30 }, tablesInParallel: true },
  dense: { qps: 21, replica: { cpus: 4, memBytes: 2 ** 30 } },
  modelWise: { sparseQps: 25, replica: { cpus: 8, memBytes: 2 ** 30 } },
  router: { qps: 1000, replica: { cpus: 1, memBytes: 2 ** 28 } },
};

test('cost model: Fig 9 curve, interpolation across dims, validation names the field', () => {
  assert.ok(Math.abs(shardQps(paperCost, 32, 10) - 1000 / 26) < 1e-9);
  const two = { ...paperCost, shard: { ...paperCost.shard, curves: [{ dim: 32, alphaMs: 10, betaMs: 1.6 }, { dim: 128, alphaMs: 22, betaMs: 1.6 }] } };
  const mid = shardQps(two, 80, 0);
  assert.ok(mid < 100 && mid > 1000 / 22);
  assert.throws(() => validateCostModel({ ...paperCost, dense: { qps: -1, replica: paperCost.dense.replica } }, 'c.json'), /c.json: dense.qps must be a positive number/);
});

test('every strategy plans paper-scale RM1 from shapes; elastic uses least memory and hot shards get the most replicas', () => {
  const config = { ...presetConfig('rm1'), tables: presetConfig('rm1').tables.map((t) => ({ ...t, rows: 20_000_000 })) };
  const input = { config, profile: syntheticProfile(config, { kind: 'locality', p: 0.9 }), hotness: null, cost: paperCost, targetQps: 100, batch: 1, shards: 4, maxShards: 16, cacheRows: 0 };
  const t0 = performance.now();
  const planned = runPlanner(input, allStrategies(), { cpus: 32, memBytes: 256 * 2 ** 30 });
  assert.ok(performance.now() - t0 < 30_000, 'plans in seconds');
  const mem = Object.fromEntries(planned.map((p) => [p.plan.strategy, p.estimate.memBytes]));
  for (const s of ['model-wise', 'table-wise', 'capacity-balanced', 'load-balanced', 'row-wise']) assert.ok(mem.elastic < mem[s], `elastic < ${s}`);
  const elastic = planned.find((p) => p.plan.strategy === 'elastic')!;
  const shards = elastic.plan.shards;
  assert.ok(shards.length >= 2 && shards.length <= 16);
  assert.ok(shards[0].replicas >= shards[shards.length - 1].replicas, 'the hottest shard has at least as many replicas as the coldest');
  const est = elastic.estimate.services.filter((s) => s.kind === 'shard');
  assert.ok(est[0].utility! > est[est.length - 1].utility!, 'hot shards are better used than cold ones');
  assert.throws(() => strategyNamed('bogus'), /unknown strategy 'bogus'/);
});

test('plan --strategy all from shapes; an elastic plan from a trace profile; no cost model, no elastic', async () => {
  const { cli } = await import('./helpers.ts');
  const dir = tempDir();
  const model = path.join(dir, 'model');
  assert.equal(cli(['generate', '--preset', 'tiny', '--rows', '4000', '--out', model]).code, 0);
  const trace = path.join(dir, 't.bin');
  assert.equal(cli(['trace', '--model', model, '--queries', '200', '--batch', '4', '--locality', '0.9', '--out', trace]).code, 0);
  const prof = cli(['profile', '--model', model, '--trace', trace, '--out', path.join(dir, 'p.bin')]);
  assert.equal(prof.code, 0, prof.stderr);
  const costFile = path.join(dir, 'cost.json');
  const fs = await import('node:fs');
  fs.writeFileSync(costFile, JSON.stringify({ ...paperCost, shard: { ...paperCost.shard, replica: { cpus: 1, memBytes: 1000 } } }));
  const all = cli(['plan', '--model-config', path.join(model, 'model.json'), '--locality', '0.9', '--cost', costFile, '--target-qps', '50', '--strategy', 'all', '--node-cpus', '16', '--node-mem-gb', '64']);
  assert.equal(all.code, 0, all.stderr);
  for (const s of ['model-wise', 'table-wise', 'capacity-balanced', 'load-balanced', 'row-wise', 'elastic']) assert.match(all.stdout, new RegExp(`^${s}\\s`, 'm'));
  const planFile = path.join(dir, 'plan.json');
  const one = cli(['plan', '--model', model, '--profile', path.join(dir, 'p.bin'), '--cost', costFile, '--target-qps', '50', '--strategy', 'elastic', '--out', planFile]);
  assert.equal(one.code, 0, one.stderr);
  const bad = cli(['plan', '--model', model, '--strategy', 'elastic', '--out', planFile]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /sizes replicas with a cost model/);
});

test("autoscaler targets from the cost model: a shard's lookups/s capacity at its expected lookups per query, scaled to the replicas' CPUs; flags win", () => {
  const config = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 1000, poolingFactor: 4 }, { name: 'b', rows: 500, poolingFactor: 2 }] };
  const cost: CostModel = {
    format: COST_FORMAT,
    version: COST_VERSION,
    source: 'test',
    shard: { curves: [{ dim: config.embeddingDim, alphaMs: 0.2, betaMs: 0.01 }], replica: { cpus: 0.5, memBytes: 0 } },
    dense: { qps: 800, replica: { cpus: 0.5, memBytes: 0 } },
    modelWise: { sparseQps: 100, replica: { cpus: 1, memBytes: 0 } },
    router: { qps: 100, replica: { cpus: 1, memBytes: 0 } },
  };
  const plan = { ...rowWisePlan(config, { shards: 2, replicas: 1, cacheRows: 0, dense: 'service', denseReplicas: 1 }), workload: { targetQps: 100, samplesPerQuery: 3 } };
  const input = planningInputOf(plan, config, cost);
  // Identity order, uniform access: each shard holds half of every table, so half its lookups: 3 × (4 + 2) / 2 = 9 per query.
  const capacity = replicaCapacities(input, plan);
  const expected = 9 * (1000 / (0.2 + 0.01 * 9));
  for (const s of ['shard-0', 'shard-1']) assert.ok(Math.abs(capacity.get(s)! - expected) < 1e-6, `${s}: ${capacity.get(s)} vs ${expected}`);
  assert.equal(capacity.get('dense'), 800);
  // Replicas at 0.25 CPU against a cost model measured at 0.5: half of it.
  assert.ok(Math.abs(replicaCapacities(input, plan, 0.25).get('shard-0')! - expected / 2) < 1e-6);
  const settings = { targetUtilization: 0.5, frontEndMetric: 'inflight' as const, frontEndTargetInflight: 8, frontEndTargetP95Ms: 40, maxReplicas: 4, syncPeriodS: 15, scaleUpWindowS: 0, scaleDownWindowS: 300 };
  assert.equal(scalingTarget('shard', 'shard-0', settings, capacity), Math.round(expected / 2));
  assert.equal(scalingTarget('dense', 'dense', settings, capacity), 400);
  assert.equal(scalingTarget('router', 'router', settings, capacity), 8);
  // On latency, a front end holds its p95 at the target, in seconds (the metric's unit).
  assert.equal(scalingTarget('router', 'router', { ...settings, frontEndMetric: 'latency' }, capacity), 0.04);
  assert.equal(scalingMetric('router', { frontEndMetric: 'latency' }).metric, 'shardwise_p95_latency_seconds');
  assert.equal(scalingMetric('shard', { frontEndMetric: 'latency' }).metric, 'shardwise_lookups_per_second');
  assert.equal(scalingTarget('shard', 'shard-0', { ...settings, shardTargetLookups: 1234 }, capacity), 1234, 'an explicit flag wins');
  assert.equal(scalingTarget('shard', 'shard-0', settings, null), DEFAULT_TARGETS.shardLookups, 'no cost model: the default');
});
