import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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
import { cli, maxAbsDiff, tempDir, unusedPort } from './helpers.ts';
import { startPod, waitReady, type Pod } from './pods.ts';
import { loadModel } from '../src/model/store.ts';
import { ReferenceModel } from '../src/reference/reference-model.ts';
import { inferBinary } from '../src/protocol/oip-client.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';

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
/** The object of `kind` for a service (its component label) among `all`. */
const byComponent = (all: KubeObject[], kind: string, component: string) => all.find((o) => o.kind === kind && o.metadata.labels?.['app.kubernetes.io/component'] === component)!;
const find = (kind: string, component: string) => byComponent(objects(), kind, component);
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

/**
 * A container argument as it runs here: the plan ConfigMap written to a folder as the pod mounts
 * it, the model's volume at this test's model, and a listener on all interfaces on a free loopback port.
 */
function localArgs(): (arg: string) => string {
  const cm = objects().find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-plan'))! as KubeObject & { data: Record<string, string>; binaryData: Record<string, string> };
  const configDir = path.join(dir, 'config');
  fs.mkdirSync(configDir, { recursive: true });
  fs.writeFileSync(path.join(configDir, 'plan.json'), cm.data['plan.json']);
  fs.writeFileSync(path.join(configDir, 'profile.bin'), Buffer.from(cm.binaryData['profile.bin'], 'base64'));
  return (a) => (a === '/model' ? modelDir : a === '/config/plan.json' ? path.join(configDir, 'plan.json') : a.startsWith('0.0.0.0:') ? '127.0.0.1:0' : a);
}

test("a Deployment's container command starts a replica here (paths mapped to this machine)", async () => {
  const local = localArgs();
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

// The same plan's objects with a balancer in every router pod.
const balancedOut = path.join(dir, 'k8s-balanced');
const balancedWritten = cli(['manifests', '--plan', planFile, '--model', modelDir, '--cost', costFile, '--image', 'registry.example/shardwise:0.1.0', '--out', balancedOut, '--namespace', 'ranking', '--balancer', 'haproxy', ...flags]);
const balancedObjects = () => fs.readdirSync(balancedOut).map((f) => JSON.parse(fs.readFileSync(path.join(balancedOut, f), 'utf8')) as KubeObject);
type Container = { name: string; image: string; command: string[]; args?: string[]; ports: { name: string; containerPort: number }[] };
const balancedPod = (component: string) => (byComponent(balancedObjects(), 'Deployment', component).spec as { template: { spec: { containers: Container[] } } }).template.spec;

/** The balancer's ConfigMap written to a folder here as the pod mounts it, with `edit` applied to its haproxy.cfg; the config's path. */
function mountBalancerConfig(edit: (cfg: string, mounted: string) => string = (cfg) => cfg): string {
  const cm = balancedObjects().find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-balancer'))! as KubeObject & { data: Record<string, string> };
  const mounted = tempDir();
  for (const file of ['refused.http', 'unavailable.http', 'timeout.http']) fs.writeFileSync(path.join(mounted, file), cm.data[file]);
  fs.writeFileSync(path.join(mounted, 'haproxy.cfg'), edit(cm.data['haproxy.cfg'].replaceAll('/usr/local/etc/haproxy', mounted), mounted));
  return path.join(mounted, 'haproxy.cfg');
}

test('with --balancer haproxy every router pod carries HAProxy in front of its router: schema-valid, a config haproxy accepts, the HPA target below its limit', { skip: findHaproxy() ? false : 'needs haproxy to check its config (Debian: apt-get install haproxy)' }, () => {
  assert.equal(balancedWritten.code, 0, balancedWritten.stderr);
  const all = balancedObjects();
  for (const o of all) validate(o);
  const of = (kind: string, component: string) => byComponent(all, kind, component);
  const [router, balancer] = balancedPod('router').containers;
  assert.equal(balancer.name, 'balancer');
  assert.equal(router.args![router.args!.indexOf('--listen') + 1], '127.0.0.1:8081', 'the router listens on loopback, behind it');
  assert.deepEqual(balancer.ports.map((p) => [p.name, p.containerPort]), [['http', 8080], ['balancer-metrics', 9091]]);
  assert.equal(podOf(of('Deployment', 'shard-0')).containers.length, 1, 'only routers get one');
  // The HPA holds in-flight queries below the balancer's limit of 4 (a saturated router reads exactly 4).
  const hpa = of('HorizontalPodAutoscaler', 'router').spec as { metrics: { pods: { target: { averageValue: string } } }[] };
  assert.equal(Number(hpa.metrics[0].pods.target.averageValue), 3);
  // Its config, with the ConfigMap's mount mapped to a folder here, is one haproxy accepts.
  const cfg = mountBalancerConfig();
  assert.match(fs.readFileSync(cfg, 'utf8'), /bind 0\.0\.0\.0:8080\n[\s\S]*server front 127\.0\.0\.1:8081 maxconn 4 check inter 500ms fall 1 rise 1\n/);
  const check = spawnSync(findHaproxy()!, ['-c', '-f', cfg], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});

test("a router pod's two containers run as written (HAProxy from its ConfigMap in front of the router's command, the shards' and dense pods' commands behind): answers through the balancer's port, its metrics, and with the router gone within the check's half second a 503 naming the service at once, not a 429", { skip: findHaproxy() ? false : 'needs haproxy (Debian: apt-get install haproxy)', timeout: 60_000 }, async (t) => {
  assert.equal(balancedWritten.code, 0, balancedWritten.stderr);
  const [publicPort, routerPort, metricsPort] = [await unusedPort(), await unusedPort(), await unusedPort()];
  const pods: Pod[] = [];
  let haproxy: ChildProcess | null = null;
  try {
    const local = localArgs();
    // Every pod of the services behind the router, as its Deployment runs it (one replica each).
    const behind = new Map<string, number>();
    for (const service of ['shard-0', 'shard-1', 'dense']) {
      const pod = await startPod(balancedPod(service).containers[0].args!.map(local));
      pods.push(pod);
      behind.set(service, pod.port);
    }
    // The pod's ports, which are fixed (8080, 8081, 9091), mapped to free ones here.
    const ports = (a: string) => a.replaceAll('0.0.0.0:8080', `127.0.0.1:${publicPort}`).replaceAll('127.0.0.1:8081', `127.0.0.1:${routerPort}`).replaceAll('0.0.0.0:9091', `127.0.0.1:${metricsPort}`);
    const cfg = mountBalancerConfig((text, mounted) => ports(text).replace('stats socket /tmp/', `stats socket ${mounted}/`));
    const [router, balancer] = balancedPod('router').containers;
    haproxy = spawn(findHaproxy()!, balancer.command.slice(1).map((a) => (a.endsWith('haproxy.cfg') ? cfg : a)), { stdio: ['ignore', 'ignore', 'pipe'] });
    let haproxyLog = '';
    haproxy.stderr!.on('data', (d) => (haproxyLog += d));
    const url = `http://127.0.0.1:${publicPort}`;
    const infer = async () => {
      const res = await fetch(`${url}/v2/models/${config.name}/infer`, { method: 'POST', body: '{"inputs":[]}', headers: { 'content-type': 'application/json' } });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { code: string; error: string } };
    };
    /** Polls until a query through the balancer is answered with `status` and `code` (a 503 naming the service: the check found no router), within `ms`. */
    const answeredWithin = async (ms: number, status: number, code: string) => {
      let last = '';
      for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
        const r = await infer().catch((e: Error) => ({ status: 0, retryAfter: null, body: { code: '', error: e.message } }));
        if (r.status === status && r.body.code === code) return r;
        last = `${r.status} ${JSON.stringify(r.body)}`;
      }
      assert.fail(`no ${status} ${code} within ${ms} ms; last answer: ${last}\n${haproxyLog}`);
    };
    // No router yet: the balancer's check has the server down, and a query is answered so at once.
    const before = await answeredWithin(5000, 503, 'SW_SERVICE');
    assert.equal(before.retryAfter, '1');
    const readyNow = await fetch(`${url}/v2/health/ready`);
    assert.equal(readyNow.status, 503, 'health goes straight to the (absent) router: not ready');
    await readyNow.arrayBuffer();

    const args = router.args!.map(local).map(ports).map((a) => a.replace(/^(\S+)=dns:.*$/, (_, service: string) => `${service}=static:127.0.0.1:${behind.get(service)}`));
    const routerPod = await startPod(args);
    pods.push(routerPod);
    await waitReady(`${url}/v2/health/ready`);
    // Queries pass once the next check (every 500 ms) finds the router: the empty query is the router's 400.
    await answeredWithin(1500, 400, 'SW_BAD_REQUEST');
    const reference = await ReferenceModel.create(loadModel(modelDir));
    const gen = new QueryGenerator(config, { queries: 10, batch: 4, access: { kind: 'zipf', s: 1.05 }, pooling: 'poisson', seed: 9 });
    for (let i = 0; i < 10; i++) {
      const q = gen.next();
      assert.ok(maxAbsDiff(await inferBinary(url, config.name, q, config.numDense), await reference.predict(q)) <= 1e-5, 'the router\'s scores, through the balancer');
    }
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /haproxy_backend_current_queue\{proxy="queries"\}/, "the balancer's own metrics on its port");

    // The router container dies (Kubernetes would restart it): once the check sees it (every
    // 500 ms) queries get a 503 SW_SERVICE at once. Before, they had waited 3 s of retries for a
    // 429 saying the pod was over capacity; in the check's window they still get that 429, after 0.3 s.
    await routerPod.stop('SIGKILL');
    const t0 = performance.now();
    const after = await answeredWithin(1500, 503, 'SW_SERVICE');
    assert.match(after.body.error, /no front-end replica answered/);
    const t1 = performance.now();
    await infer();
    assert.ok(performance.now() - t1 < 100, 'answered at once while the router is down');
    t.diagnostic(`router killed: a 503 naming the service ${(t1 - t0).toFixed(0)} ms later`);
  } finally {
    for (const p of pods) await p.stop('SIGKILL');
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGKILL');
      await exited;
    }
  }
});
