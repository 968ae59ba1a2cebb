/**
 * A plan as Kubernetes objects: per service a Deployment, a Service, a
 * HorizontalPodAutoscaler (autoscaling/v2) and a PodDisruptionBudget; one ConfigMap with the
 * plan (and its hotness profile when small enough); the prometheus-adapter rules that turn
 * the services' /metrics into the HPAs' custom metrics; a ServiceMonitor. Kubernetes is then
 * the controller: the same plan, metric names and scaling rules as the local supervisor.
 *
 * Model files reach the pods on a ReadOnlyMany volume (a PersistentVolumeClaim the operator
 * fills once, e.g. NFS or a cloud file store), mounted read-only at /model: a shard reads only
 * its row ranges from it, nothing is copied per replica at start, and replicas on one node
 * share the page cache. An init container copying from an object store would copy the whole
 * model into every pod before it can start, the cost disaggregation exists to avoid.
 */
import type { ModelConfig } from '../model/types.ts';
import type { Plan } from '../plan/types.ts';
import type { CostModel, ReplicaRequest } from '../planner/cost-model.ts';
import type { AutoscalerConfig, ScalingRules } from './autoscaler.ts';
import { SERVICE_MALLOC_TUNABLES, serviceHeapFlags } from './runtime-flags.ts';
import { SCALING_METRICS, scalingConfig, type MetricSource, type ScalingSettings } from './scaling-config.ts';
import type { ServiceKind } from './supervisor.ts';
import { DEFAULT_DNS_REFRESH } from '../serving/dns-replica-source.ts';
import { type BalancerOptions, balancedScaling, balancerErrorFiles, haproxyConfig } from './balancer.ts';

export interface ManifestOptions {
  plan: Plan;
  config: ModelConfig;
  /** The plan's hotness profile file, when it has one (bytes). */
  profile: Buffer | null;
  cost: CostModel;
  image: string;
  namespace: string;
  /** The PersistentVolumeClaim (ReadOnlyMany) holding the model directory. */
  modelClaim: string;
  clusterDomain: string;
  scaling: ScalingSettings;
  /** Per service, one replica's capacity by the cost model (`replicaCapacities`): what the HPA targets are a share of. */
  capacities: ReadonlyMap<string, number>;
  /** How long a replica keeps serving after SIGTERM so routers stop sending first (ms). */
  drainGraceMs: number;
  /** HAProxy beside every router in its pod, refusing past the router's in-flight limit (serve --balancer's), or none. */
  balancer: BalancerOptions | null;
  /** The balancer container's image (HAProxy's official one, or a mirror of it). */
  balancerImage: string;
}

/** A Kubernetes object as plain JSON. */
export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } } & Record<string, unknown>;

/** Ports inside every pod; behind a balancer the router listens on frontEnd (loopback) and the balancer on http. */
export const PORTS = { frames: 7000, http: 8080, frontEnd: 8081, metrics: 9090, balancerMetrics: 9091 } as const;
/** Where the balancer's ConfigMap is mounted in its container (the official image's config folder). */
const BALANCER_CONFIG_DIR = '/usr/local/etc/haproxy';
/** The largest profile put in the ConfigMap (ConfigMaps hold at most 1 MiB); bigger ones stay on the model volume. */
const PROFILE_IN_CONFIGMAP_BYTES = 900 << 10;
/** Seconds a router may still send to a removed pod: its longest DNS refresh plus a second of margin. */
const ENDPOINT_PROPAGATION_S = Math.ceil(DEFAULT_DNS_REFRESH.maxMs / 1000) + 1;
/** A drained replica finishes its in-flight requests within this long (requests carry deadlines of ~2 s). */
const DRAIN_TIMEOUT_S = 10;
/** Memory a replica may use above its request before the limit: allocation bursts (batches, GC). */
const MEMORY_HEADROOM = 1.25;
const MiB = 1 << 20;

/** A DNS-1035 label: lowercase letters, digits and '-', starting with a letter, at most 63. */
export function kubeName(...parts: string[]): string {
  const name = parts
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-$/, '');
  return name.slice(0, 63).replace(/-$/, '');
}

interface ServiceShape {
  service: string;
  kind: Exclude<ServiceKind, 'monolithic'>;
  replicas: number;
  /** Bytes of rows (or weights and cache) the replica holds besides its fixed cost. */
  heldBytes: number;
  request: ReplicaRequest;
}

function shapes(o: ManifestOptions): ServiceShape[] {
  const { plan, config, cost } = o;
  const rowBytes = config.embeddingDim * 4;
  const rows = (pieces: Plan['shards'][number]['pieces']) => pieces.reduce((s, p) => s + p.rowEnd - p.rowStart, 0);
  // The router keeps a 4-byte route code per row of every table (bucketize.ts) and its cache rows.
  const routerBytes = config.tables.reduce((s, t) => s + 4 * t.rows + Math.min(plan.router.cacheRows, t.rows) * rowBytes, 0);
  const out: ServiceShape[] = plan.shards.map((s) => ({ service: s.name, kind: 'shard' as const, replicas: s.replicas, heldBytes: rows(s.pieces) * rowBytes, request: cost.shard.replica }));
  if (plan.dense.placement === 'service') out.push({ service: 'dense', kind: 'dense', replicas: plan.dense.replicas, heldBytes: 0, request: cost.dense.replica });
  const router = plan.dense.placement === 'router' ? { cpus: Math.max(cost.router.replica.cpus, cost.dense.replica.cpus), memBytes: cost.router.replica.memBytes + cost.dense.replica.memBytes } : cost.router.replica;
  out.push({ service: 'router', kind: 'router', replicas: plan.router.replicas, heldBytes: routerBytes, request: router });
  return out;
}

const behaviorRules = (r: ScalingRules) => ({
  stabilizationWindowSeconds: Math.round(r.stabilizationWindowS),
  selectPolicy: r.selectPolicy,
  policies: r.policies.map((p) => ({ type: p.type, value: p.value, periodSeconds: p.periodS })),
});

/** The HPA of one Deployment from the same AutoscalerConfig the local autoscaler runs. */
export function horizontalPodAutoscaler(name: string, namespace: string, labels: Record<string, string>, c: AutoscalerConfig): KubeObject {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: {
      name,
      namespace,
      labels,
      // Cluster-wide in Kubernetes (kube-controller-manager flags), per service locally: recorded, not enforced.
      annotations: { 'shardwise.io/tolerance': String(c.tolerance), 'shardwise.io/sync-period-seconds': String(c.syncPeriodS) },
    },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: c.minReplicas,
      maxReplicas: c.maxReplicas,
      metrics: [{ type: 'Pods', pods: { metric: { name: c.metric }, target: { type: 'AverageValue', averageValue: String(c.target) } } }],
      behavior: { scaleUp: behaviorRules(c.behavior.scaleUp), scaleDown: behaviorRules(c.behavior.scaleDown) },
    },
  };
}

/** prometheus-adapter rules exposing every scaling metric per pod, as the local autoscaler computes it. */
export function adapterRules(): { rules: unknown[] } {
  return {
    rules: Object.values(SCALING_METRICS).map((s: MetricSource) => {
      const select = s.stage ? `stage="${s.stage}",` : '';
      const series = s.read === 'p95' ? `${s.series}_bucket` : s.series;
      const query = {
        rate: `sum(rate(<<.Series>>{${select}<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)`,
        gauge: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
        p95: `histogram_quantile(0.95, sum(rate(<<.Series>>{${select}<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>, le))`,
      }[s.read];
      return {
        seriesQuery: `${series}{${select}namespace!="",pod!=""}`,
        resources: { overrides: { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } } },
        name: { matches: `^${series}$`, as: s.metric },
        metricsQuery: query,
      };
    }),
  };
}

export function kubernetesManifests(o: ManifestOptions): KubeObject[] {
  const { plan, config, namespace } = o;
  const app = kubeName('shardwise', config.name);
  const common = { 'app.kubernetes.io/name': 'shardwise', 'app.kubernetes.io/instance': app };
  const configName = kubeName(app, 'plan');
  const profileInConfigMap = o.profile !== null && o.profile.length <= PROFILE_IN_CONFIGMAP_BYTES;
  // In the pod the plan is /config/plan.json; its profile sits next to it, or on the model volume when too big for a ConfigMap.
  const podPlan: Plan = plan.hotness ? { ...plan, hotness: { ...plan.hotness, profile: profileInConfigMap ? 'profile.bin' : '/model/profile.bin' } } : plan;
  const objects: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: configName, namespace, labels: common },
      data: { 'plan.json': JSON.stringify(podPlan, null, 2) },
      ...(profileInConfigMap ? { binaryData: { 'profile.bin': o.profile!.toString('base64') } } : {}),
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: kubeName(app, 'adapter-rules'), namespace, labels: common, annotations: { 'shardwise.io/usage': 'merge into prometheus-adapter config.yaml (its rules: list)' } },
      data: { 'config.yaml': JSON.stringify(adapterRules(), null, 2) },
    },
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: app, namespace, labels: common },
      spec: {
        selector: { matchLabels: common },
        endpoints: [{ port: 'metrics', path: '/metrics', interval: '15s' }, ...(o.balancer ? [{ port: 'balancer-metrics', path: '/metrics', interval: '15s' }] : [])],
      },
    },
  ];
  const balancerConfig = kubeName(app, 'balancer');
  if (o.balancer) {
    // One balancer per router pod, in front of that pod's router alone (Knative's queue-proxy, in HAProxy).
    const layout = { ...o.balancer, host: '127.0.0.1', bindHost: '0.0.0.0', port: PORTS.http, frontEndPort: PORTS.frontEnd, replicas: 1, dir: BALANCER_CONFIG_DIR, runDir: '/tmp', metricsPort: PORTS.balancerMetrics };
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: balancerConfig, namespace, labels: common }, data: { 'haproxy.cfg': haproxyConfig(layout), ...balancerErrorFiles(o.balancer) } });
  }
  const dnsName = (service: string) => `${kubeName(app, service)}.${namespace}.svc.${o.clusterDomain}`;
  const services = shapes(o);
  const downstream = services.filter((s) => s.kind !== 'router').map((s) => s.service);
  for (const s of services) {
    const name = kubeName(app, s.service);
    const labels = { ...common, 'app.kubernetes.io/component': s.service };
    const internal = s.kind !== 'router';
    const balanced = !internal && o.balancer !== null;
    const listenPort = internal ? PORTS.frames : balanced ? PORTS.frontEnd : PORTS.http;
    const listenHost = balanced ? '127.0.0.1' : '0.0.0.0';
    const args = [s.kind, '--model', '/model', '--plan', '/config/plan.json', '--listen', `${listenHost}:${listenPort}`, '--metrics-listen', `0.0.0.0:${PORTS.metrics}`, '--drain-grace-ms', String(o.drainGraceMs)];
    if (s.kind === 'shard') args.push('--service', s.service);
    if (s.kind === 'router') for (const down of downstream) args.push('--replicas', `${down}=dns:${dnsName(down)}:${PORTS.frames}`);
    const memRequest = Math.ceil((s.heldBytes + s.request.memBytes) / MiB);
    const cpu = String(s.request.cpus);
    const grace = ENDPOINT_PROPAGATION_S + Math.ceil(o.drainGraceMs / 1000) + DRAIN_TIMEOUT_S;
    const containerSecurity = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
    const balancerContainer = {
      name: 'balancer',
      image: o.balancerImage,
      command: ['haproxy', '-db', '-f', `${BALANCER_CONFIG_DIR}/haproxy.cfg`],
      ports: [
        { name: 'http', containerPort: PORTS.http, protocol: 'TCP' },
        { name: 'balancer-metrics', containerPort: PORTS.balancerMetrics, protocol: 'TCP' },
      ],
      // Refusing is its job under overload: a request, not a limit, so it is never the one throttled.
      resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { memory: '128Mi' } },
      readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 2 },
      // It keeps accepting while the router drains behind it, then stops with it.
      lifecycle: { preStop: { exec: { command: ['sleep', String(ENDPOINT_PROPAGATION_S + Math.ceil(o.drainGraceMs / 1000))] } } },
      securityContext: containerSecurity,
      volumeMounts: [
        { name: 'balancer', mountPath: BALANCER_CONFIG_DIR, readOnly: true },
        { name: 'tmp', mountPath: '/tmp' },
      ],
    };
    objects.push(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace, labels },
        spec: {
          replicas: s.replicas,
          selector: { matchLabels: labels },
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          template: {
            metadata: { labels, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(PORTS.metrics), 'prometheus.io/path': '/metrics' } },
            spec: {
              terminationGracePeriodSeconds: grace,
              securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 },
              containers: [
                {
                  name: s.kind,
                  image: o.image,
                  // The image's entrypoint is `node bin/shardwise.js` (WORKDIR /app); the role's V8 heap and malloc settings as the supervisor gives its children.
                  command: ['node', ...serviceHeapFlags(s.kind), 'bin/shardwise.js'],
                  args,
                  env: [{ name: 'GLIBC_TUNABLES', value: SERVICE_MALLOC_TUNABLES }],
                  ports: [
                    { name: internal ? 'frames' : balanced ? 'front-end' : 'http', containerPort: listenPort, protocol: 'TCP' },
                    { name: 'metrics', containerPort: PORTS.metrics, protocol: 'TCP' },
                  ],
                  resources: { requests: { cpu, memory: `${memRequest}Mi` }, limits: { cpu, memory: `${Math.ceil(memRequest * MEMORY_HEADROOM)}Mi` } },
                  readinessProbe: { httpGet: { path: '/v2/health/ready', port: 'metrics' }, periodSeconds: 2, failureThreshold: 2 },
                  livenessProbe: { httpGet: { path: '/v2/health/live', port: 'metrics' }, periodSeconds: 10, failureThreshold: 3 },
                  startupProbe: { httpGet: { path: '/v2/health/live', port: 'metrics' }, periodSeconds: 1, failureThreshold: 300 },
                  // Endpoints and routers' DNS answers lag the pod's removal: keep serving until they have caught up, then SIGTERM drains.
                  lifecycle: { preStop: { exec: { command: ['sleep', String(ENDPOINT_PROPAGATION_S)] } } },
                  securityContext: containerSecurity,
                  volumeMounts: [
                    { name: 'model', mountPath: '/model', readOnly: true },
                    { name: 'config', mountPath: '/config', readOnly: true },
                    { name: 'tmp', mountPath: '/tmp' },
                  ],
                },
                ...(balanced ? [balancerContainer] : []),
              ],
              volumes: [
                { name: 'model', persistentVolumeClaim: { claimName: o.modelClaim, readOnly: true } },
                { name: 'config', configMap: { name: configName } },
                { name: 'tmp', emptyDir: {} },
                ...(balanced ? [{ name: 'balancer', configMap: { name: balancerConfig } }] : []),
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace, labels },
        spec: {
          selector: labels,
          // Shards and dense are headless: the router discovers each pod by DNS and balances itself (per request, with hedging and ejection).
          ...(internal ? { clusterIP: 'None' } : { type: 'ClusterIP' }),
          ports: [
            internal ? { name: 'frames', port: PORTS.frames, targetPort: 'frames', protocol: 'TCP' } : { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
            { name: 'metrics', port: PORTS.metrics, targetPort: 'metrics', protocol: 'TCP' },
            ...(balanced ? [{ name: 'balancer-metrics', port: PORTS.balancerMetrics, targetPort: 'balancer-metrics', protocol: 'TCP' }] : []),
          ],
        },
      },
      horizontalPodAutoscaler(name, namespace, labels, scalingConfig(s.kind, s.service, balanced ? balancedScaling(o.scaling, o.balancer) : o.scaling, o.capacities)),
      { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name, namespace, labels }, spec: { maxUnavailable: 1, selector: { matchLabels: labels } } },
    );
  }
  return objects;
}
