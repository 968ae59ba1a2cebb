import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type AutoscalerConfig, type AutoscalerState, autoscalerConfig, decide, initialAutoscalerState } from '../src/cluster/autoscaler.ts';
import { bucketsOf, p95Between } from '../src/cluster/histogram-quantile.ts';

/** Runs the loop on a fake clock: each step is one sync period with the given per-replica metric; the actuator applies every decision at once. */
function simulate(config: AutoscalerConfig, start: number, steps: { perReplica: (replicas: number) => number; notReady?: number }[]) {
  let state: AutoscalerState = initialAutoscalerState();
  let replicas = start;
  const seen: number[] = [];
  steps.forEach((s, i) => {
    const ready = replicas - (s.notReady ?? 0);
    const { decision, state: next } = decide({ at: i * config.syncPeriodS * 1000, currentReplicas: replicas, readyValues: Array(ready).fill(s.perReplica(replicas)), notReady: s.notReady ?? 0 }, state, config);
    state = next;
    replicas = decision.desired;
    seen.push(replicas);
  });
  return seen;
}

/** A fixed total load spread over the replicas: what QPS per replica does. */
const load = (total: number) => ({ perReplica: (n: number) => total / n });

test('HPA: desired = ceil(current × observed / target), nothing within the tolerance, clamped to min and max', () => {
  const c = autoscalerConfig('qps', 100, 1, 10);
  assert.deepEqual(simulate(c, 2, [load(400)]), [4]);
  assert.deepEqual(simulate(c, 4, [load(420)]), [4], '105 per replica is within 10%');
  assert.deepEqual(simulate(c, 4, [load(460)]), [5], '115 per replica is not: ceil(4 × 1.15)');
  assert.deepEqual(simulate(c, 4, [load(5000)]), [8], 'a scale-up of 4 → 50 is limited to max(+100%, +4) = 8 in one period');
  assert.deepEqual(simulate(c, 8, [load(5000), load(5000)]), [10, 10], 'and then to maxReplicas');
  const { decision } = decide({ at: 0, currentReplicas: 3, readyValues: [], notReady: 3 }, initialAutoscalerState(), c);
  assert.equal(decision.desired, 3);
  assert.match(decision.reason, /no ready replica/);
});

test('HPA: scale-down waits out its stabilization window (the highest recommendation in the last 300 s), scale-up acts at once', () => {
  const c = autoscalerConfig('qps', 100, 1, 10);
  // 20 periods of 15 s = 300 s: load drops from 800 to 100 after the first period.
  const seen = simulate(c, 8, [load(800), ...Array(22).fill(load(100))]);
  assert.deepEqual(seen.slice(0, 20), Array(20).fill(8), 'held at 8 while the high recommendation is inside the window');
  assert.equal(seen[20], 1, 'down to 1 (100% per 15 s allows it) once it left the window');
  // A short window lets it go sooner; a spike within it holds it up.
  const fast = autoscalerConfig('qps', 100, 1, 10, { behavior: { scaleUp: c.behavior.scaleUp, scaleDown: { ...c.behavior.scaleDown, stabilizationWindowS: 30 } } });
  assert.deepEqual(simulate(fast, 8, [load(800), load(100), load(100), load(100), load(100)]), [8, 8, 1, 1, 1], 'the 8 of t=0 is in the 30 s window at 15 s, not at 30 s');
  assert.deepEqual(simulate(c, 1, [load(100), load(400)]), [1, 4], 'no scale-up window by default');
});

test('HPA: rate-limit policies per direction, selectPolicy Min and Disabled', () => {
  const slowDown = autoscalerConfig('qps', 100, 1, 20, {
    behavior: {
      scaleUp: { stabilizationWindowS: 0, selectPolicy: 'Min', policies: [{ type: 'Pods', value: 2, periodS: 60 }, { type: 'Percent', value: 100, periodS: 60 }] },
      scaleDown: { stabilizationWindowS: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 1, periodS: 30 }] },
    },
  });
  // Up: min(+2 pods, +100%) per 60 s window of 4 periods: 2 → 4, then held until the window passes, then 6.
  assert.deepEqual(simulate(slowDown, 2, Array(6).fill(load(2000))), [4, 4, 4, 4, 6, 6]);
  // Down: one replica per 30 s (two periods).
  assert.deepEqual(simulate(slowDown, 6, Array(5).fill(load(100))), [5, 5, 4, 4, 3]);
  const noDown = autoscalerConfig('qps', 100, 1, 20, { behavior: { scaleUp: slowDown.behavior.scaleUp, scaleDown: { stabilizationWindowS: 0, selectPolicy: 'Disabled', policies: [] } } });
  assert.deepEqual(simulate(noDown, 6, Array(3).fill(load(100))), [6, 6, 6]);
});

test('HPA: replicas not ready yet count as idle against a scale-up, so a rise they will absorb does not scale further', () => {
  const c = autoscalerConfig('qps', 100, 1, 20);
  // 2 ready at 150 each, 2 still starting: 300 / (100 × 4) = 0.75 → no scale-up (and no scale-down on a ratio computed that way).
  const { decision } = decide({ at: 0, currentReplicas: 4, readyValues: [150, 150], notReady: 2 }, initialAutoscalerState(), c);
  assert.equal(decision.desired, 4);
  assert.match(decision.reason, /not ready yet absorb/);
  // With 1 starting: 300 / 300 = 1.0 → within tolerance; with none: 150% → scale to 3.
  assert.equal(decide({ at: 0, currentReplicas: 3, readyValues: [150, 150], notReady: 1 }, initialAutoscalerState(), c).decision.desired, 3);
  assert.equal(decide({ at: 0, currentReplicas: 2, readyValues: [150, 150], notReady: 0 }, initialAutoscalerState(), c).decision.desired, 3);
});

test("a front end's p95 over a sync period comes from its histogram's bucket increase, as histogram_quantile reads it", () => {
  const page = (counts: number[]) =>
    [0.01, 0.025, 0.05, Infinity]
      .map((le, i) => `shardwise_request_duration_seconds_bucket{le="${le === Infinity ? '+Inf' : le}",service="router",stage="total"} ${counts[i]}`)
      .concat(['shardwise_request_duration_seconds_bucket{le="0.01",service="router",stage="fanout"} 999'])
      .join('\n');
  const before = bucketsOf(page([10, 20, 30, 30]), 'shardwise_request_duration_seconds', 'total')!;
  assert.deepEqual(before.counts, [10, 20, 30, 30], 'only the stage asked for');
  // 100 new observations: 50 under 10 ms, 40 in (10, 25], 10 in (25, 50]: rank 95 falls in (25, 50] at half of its 10.
  const after = bucketsOf(page([60, 110, 130, 130]), 'shardwise_request_duration_seconds', 'total')!;
  assert.ok(Math.abs(p95Between(before, after) - 0.0375) < 1e-12);
  // Past the last finite bound: that bound.
  assert.equal(p95Between(after, bucketsOf(page([60, 110, 130, 230]), 'shardwise_request_duration_seconds', 'total')!), 0.05);
  assert.equal(p95Between(after, after), 0, 'no requests in the period: idle, no latency to defend');
  assert.equal(bucketsOf('shardwise_inflight_requests 3', 'shardwise_request_duration_seconds'), undefined);
});
