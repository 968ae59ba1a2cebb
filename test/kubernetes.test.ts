import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { findHaproxy } from '../src/cluster/balancer.ts';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import type { ModelConfig } from '../src/model/types.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { COST_FORMAT, COST_VERSION, type CostModel } from '../src/planner/cost-model.ts';
import { writeTrace } from '../src/workload/generate-trace.ts';
import { profileFromTrace } from '../src/profile/build.ts';
import { writeProfile } from '../src/profile/format.ts';
import { scalingConfig, scalingTarget } from '../src/cluster/scaling-config.ts';
import { planningInputOf, replicaCapacities } from '../src/planner/capacity.ts';
import { readPlan } from '../src/plan/validate.ts';
import type { KubeObject } from '../src/cluster/kubernetes.ts';
import { cli, tempDir } from './helpers.ts';
import { startPod, waitReady } from './pods.ts';

// Kubernetes 1.27's OpenAPI schema (kubernetes-models 5.x), and the Prometheus Operator's CRD schema.
const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};
const validate = (o: KubeObject) => {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  assert.ok(Model, `no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o as never).validate();
};

const dir = tempDir();
const config: ModelConfig = { ...presetConfig('tiny'), name: 'Tiny_CTR', tables: [{ name: 'a', rows: 1001, poolingFactor: 5 }, { name: 'b', rows: 37, poolingFactor: 2 }, { name: 'c', rows: 2003, poolingFactor: 9 }] };
const modelDir = path.join(dir, 'model');
generateModel(modelDir, config, 5);
const traceFile = path.join(dir, 'trace.bin');
writeTrace(traceFile, config, { queries: 200, batch: 4, access: { kind: 'locality', p: 0.9 }, pooling: 'fixed', seed: 1 });
writeProfile(path.join(dir, 'profile.bin'), profileFromTrace(traceFile));
const planFile = path.join(dir, 'plan.json');
fs.writeFileSync(planFile, JSON.stringify({ ...rowWisePlan(config, { shards: 2, replicas: 2, cacheRows: 10, dense: 'service', denseReplicas: 1 }), hotness: { profile: 'profile.bin' } }));
const cost: CostModel = {
  format: COST_FORMAT,
  version: COST_VERSION,
  source: 'test',
  shard: { curves: [{ dim: 16, alphaMs: 0.2, betaMs: 0.01 }], replica: { cpus: 1, memBytes: 64 << 20 } },
  dense: { qps: 500, replica: { cpus: 1, memBytes: 128 << 20 } },
  modelWise: { sparseQps: 400, replica: { cpus: 1, memBytes: 128 << 20 } },
  router: { qps: 1000, replica: { cpus: 1, memBytes: 96 << 20 } },
};
const costFile = path.join(dir, 'cost.json');
fs.writeFileSync(costFile, JSON.stringify(cost));

const out = path.join(dir, 'k8s');
const flags = ['--shard-target-lookups', '250000', '--max-replicas', '12', '--scale-down-window-s', '120'];
const written = cli(['manifests', '--plan', planFile, '--model', modelDir, '--cost', costFile, '--image', 'registry.example/shardwise:0.1.0', '--out', out, '--namespace', 'ranking', ...flags]);
const objects = () => fs.readdirSync(out).sort().map((f) => JSON.parse(fs.readFileSync(path.join(out, f), 'utf8')) as KubeObject);
const find = (kind: string, component: string) => objects().find((o) => o.kind === kind && o.metadata.labels?.['app.kubernetes.io/component'] === component)!;
type PodSpec = { containers: { command: string[]; args: string[]; env: { name: string; value: string }[]; resources: { requests: { memory: string } } }[] };
const podOf = (d: KubeObject) => (d.spec as { template: { spec: PodSpec } }).template.spec;

test('every object of a plan validates against the Kubernetes 1.27 schema; a broken one does not', () => {
  assert.equal(written.code, 0, written.stderr);
  const all = objects();
  // 3 shared (plan, adapter rules, ServiceMonitor) + 4 per service: shard-0, shard-1, dense, router.
  assert.equal(all.length, 3 + 4 * 4);
  for (const o of all) validate(o);
  assert.ok(all.every((o) => /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(o.metadata.name) && o.metadata.namespace === 'ranking'));
  const broken = structuredClone(find('Deployment', 'shard-0')) as KubeObject & { spec: { replicas: unknown } };
  broken.spec.replicas = 'two';
  assert.throws(() => validate(broken), /replicas/);
});

test("the HPAs carry the local autoscaler's config for the same flags (metric, target, bounds, behavior)", () => {
  // The flags given: a shard target; the dense target comes from the cost model (70% of 500 rps).
  const settings = { shardTargetLookups: 250_000, targetUtilization: 0.7, frontEndMetric: 'inflight' as const, frontEndTargetInflight: 16, frontEndTargetP95Ms: 32.5, maxReplicas: 12, syncPeriodS: 15, scaleUpWindowS: 0, scaleDownWindowS: 120 };
  const plan = readPlan(planFile, config);
  const capacities = replicaCapacities(planningInputOf(plan, config, cost), plan);
  assert.equal(scalingTarget('dense', 'dense', settings, capacities), 350);
  for (const [component, kind] of [['shard-1', 'shard'], ['dense', 'dense'], ['router', 'router']] as const) {
    const local = scalingConfig(kind, component, settings, capacities);
    const spec = find('HorizontalPodAutoscaler', component).spec as { minReplicas: number; maxReplicas: number; metrics: { pods: { metric: { name: string }; target: { averageValue: string } } }[]; behavior: { scaleUp: { stabilizationWindowSeconds: number; policies: { type: string; value: number; periodSeconds: number }[] }; scaleDown: { stabilizationWindowSeconds: number } } };
    assert.equal(spec.metrics[0].pods.metric.name, local.metric);
    assert.equal(Number(spec.metrics[0].pods.target.averageValue), local.target);
    assert.deepEqual([spec.minReplicas, spec.maxReplicas], [local.minReplicas, local.maxReplicas]);
    assert.equal(spec.behavior.scaleDown.stabilizationWindowSeconds, local.behavior.scaleDown.stabilizationWindowS);
    assert.deepEqual(spec.behavior.scaleUp.policies, local.behavior.scaleUp.policies.map((p) => ({ type: p.type, value: p.value, periodSeconds: p.periodS })));
  }
  assert.equal(Number((find('HorizontalPodAutoscaler', 'shard-0').spec as { metrics: { pods: { target: { averageValue: string } } }[] }).metrics[0].pods.target.averageValue), 250_000);
  // The adapter exposes exactly the metric names the HPAs ask for.
  const rules = JSON.parse((objects().find((o) => o.metadata.name.endsWith('adapter-rules'))!.data as Record<string, string>)['config.yaml']) as { rules: { name: { as: string } }[] };
  assert.deepEqual(rules.rules.map((r) => r.name.as).sort(), ['shardwise_dense_requests_per_second', 'shardwise_inflight_requests', 'shardwise_lookups_per_second', 'shardwise_p95_latency_seconds']);
});

test('the router discovers each headless Service by DNS; memory requests follow the rows each shard holds', () => {
  const routerArgs = podOf(find('Deployment', 'router')).containers[0].args;
  for (const service of ['shard-0', 'shard-1', 'dense']) {
    const svc = find('Service', service);
    assert.equal((svc.spec as { clusterIP: string }).clusterIP, 'None', `${service} is headless`);
    assert.ok(routerArgs.includes(`${service}=dns:${svc.metadata.name}.ranking.svc.cluster.local:7000`), `router finds ${service} at its Service's DNS name`);
  }
  const mem = (c: string) => Number(/^(\d+)Mi$/.exec(podOf(find('Deployment', c)).containers[0].resources.requests.memory)![1]);
  assert.ok(mem('shard-0') >= 64, 'a shard asks for at least its fixed cost');
});

test("a Deployment's container command starts a replica here (paths mapped to this machine)", async () => {
  const cm = objects().find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-plan'))! as KubeObject & { data: Record<string, string>; binaryData: Record<string, string> };
  const configDir = path.join(dir, 'config');
  fs.mkdirSync(configDir, { recursive: true });
  fs.writeFileSync(path.join(configDir, 'plan.json'), cm.data['plan.json']);
  fs.writeFileSync(path.join(configDir, 'profile.bin'), Buffer.from(cm.binaryData['profile.bin'], 'base64'));
  const local = (a: string) => (a === '/model' ? modelDir : a === '/config/plan.json' ? path.join(configDir, 'plan.json') : a.startsWith('0.0.0.0:') ? '127.0.0.1:0' : a);
  // The role's runtime settings travel in the command, as the supervisor gives its children: a front end's larger initial heap, not a shard's.
  const container = (c: string) => podOf(find('Deployment', c)).containers[0];
  assert.deepEqual(container('router').command, ['node', '--initial-heap-size=128', 'bin/shardwise.js']);
  assert.deepEqual(container('shard-1').command, ['node', 'bin/shardwise.js']);
  assert.match(container('shard-1').env.find((e) => e.name === 'GLIBC_TUNABLES')!.value, /trim_threshold/);
  const pod = await startPod(container('shard-1').args.map(local));
  try {
    await waitReady(`http://127.0.0.1:${pod.metricsPort}/v2/health/ready`);
  } finally {
    await pod.stop();
  }
});

test('with --balancer haproxy every router pod carries HAProxy in front of its router: schema-valid, a config haproxy accepts, the HPA target below its limit', { skip: findHaproxy() ? false : 'needs haproxy to check its config (Debian: apt-get install haproxy)' }, () => {
  const balancedOut = path.join(dir, 'k8s-balanced');
  const r = cli(['manifests', '--plan', planFile, '--model', modelDir, '--cost', costFile, '--image', 'registry.example/shardwise:0.1.0', '--out', balancedOut, '--namespace', 'ranking', '--balancer', 'haproxy', ...flags]);
  assert.equal(r.code, 0, r.stderr);
  const all = fs.readdirSync(balancedOut).map((f) => JSON.parse(fs.readFileSync(path.join(balancedOut, f), 'utf8')) as KubeObject);
  for (const o of all) validate(o);
  const of = (kind: string, component: string) => all.find((o) => o.kind === kind && o.metadata.labels?.['app.kubernetes.io/component'] === component)!;
  type Container = { name: string; image: string; command: string[]; args?: string[]; ports: { name: string; containerPort: number }[] };
  const pod = (of('Deployment', 'router').spec as { template: { spec: { containers: Container[] } } }).template.spec;
  const [router, balancer] = pod.containers;
  assert.equal(balancer.name, 'balancer');
  assert.equal(router.args![router.args!.indexOf('--listen') + 1], '127.0.0.1:8081', 'the router listens on loopback, behind it');
  assert.deepEqual(balancer.ports.map((p) => [p.name, p.containerPort]), [['http', 8080], ['balancer-metrics', 9091]]);
  assert.equal(podOf(of('Deployment', 'shard-0')).containers.length, 1, 'only routers get one');
  // The HPA holds in-flight queries below the balancer's limit of 4 (a saturated router reads exactly 4).
  const hpa = of('HorizontalPodAutoscaler', 'router').spec as { metrics: { pods: { target: { averageValue: string } } }[] };
  assert.equal(Number(hpa.metrics[0].pods.target.averageValue), 3);
  // Its config, with the ConfigMap's mount mapped to a folder here, is one haproxy accepts.
  const cm = all.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-balancer'))! as KubeObject & { data: Record<string, string> };
  const mounted = tempDir();
  for (const file of ['refused.http', 'unavailable.http', 'timeout.http']) fs.writeFileSync(path.join(mounted, file), cm.data[file]);
  fs.writeFileSync(path.join(mounted, 'haproxy.cfg'), cm.data['haproxy.cfg'].replaceAll('/usr/local/etc/haproxy', mounted));
  assert.match(cm.data['haproxy.cfg'], /bind 0\.0\.0\.0:8080\n[\s\S]*server front 127\.0\.0\.1:8081 maxconn 4\n/);
  const check = spawnSync(findHaproxy()!, ['-c', '-f', path.join(mounted, 'haproxy.cfg')], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});
