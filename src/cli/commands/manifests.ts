import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { readManifest } from '../../model/store.ts';
import { configOf } from '../../model/manifest.ts';
import { readPlan } from '../../plan/validate.ts';
import { readCostModel } from '../../planner/cost-model.ts';
import { planningInputOf, replicaCapacities } from '../../planner/capacity.ts';
import type { ScalingSettings } from '../../cluster/scaling-config.ts';
import { kubernetesManifests } from '../../cluster/kubernetes.ts';
import { nonNegativeInt, oneOf, positiveInt, positiveNumber, progress, scalingOptions } from '../options.ts';
import { DEFAULT_BALANCER_INFLIGHT, balancerForSla } from '../../cluster/balancer.ts';
import { DEFAULT_SLA_P99_MS } from '../../serving/admission.ts';

interface ManifestsOptions extends ScalingSettings {
  plan: string;
  model: string;
  cost: string;
  image: string;
  out: string;
  namespace: string;
  modelClaim: string;
  clusterDomain: string;
  drainGraceMs: number;
  balancer: 'none' | 'haproxy';
  balancerInflight: number;
  balancerQueueMs?: number;
  balancerImage: string;
}

export function registerManifests(program: Command): void {
  const cmd = program
    .command('manifests')
    .description('write Kubernetes objects for a plan: per service a Deployment, Service, HPA (autoscaling/v2) and PodDisruptionBudget, the plan ConfigMap, prometheus-adapter rules, a ServiceMonitor')
    .requiredOption('--plan <file>', 'plan JSON (from `shardwise plan`)')
    .requiredOption('--model <dir>', 'the model directory (read for its shapes; the pods read it from --model-claim)')
    .requiredOption('--cost <file>', 'cost model (from `shardwise calibrate` on the target hardware): CPU and memory per replica')
    .requiredOption('--image <image>', 'container image with shardwise (see the Dockerfile)')
    .requiredOption('--out <dir>', 'where to write the objects, one JSON file each (kubectl apply -f DIR)')
    .option('--namespace <ns>', 'namespace of every object (routers find shards by <service>.<ns>.svc.<domain>)', 'default')
    .option('--model-claim <pvc>', 'PersistentVolumeClaim (ReadOnlyMany) holding the model directory', 'shardwise-model')
    .option('--cluster-domain <domain>', "the cluster's DNS domain", 'cluster.local')
    .option('--drain-grace-ms <ms>', 'after SIGTERM a replica serves this long more (not ready), then drains', nonNegativeInt, 5000)
    .option('--balancer <kind>', "'haproxy': an HAProxy container beside every router in its pod, as `serve --balancer haproxy` (the router's in-flight limit, the queue budget, then 429)", oneOf(['none', 'haproxy'] as const), 'none')
    .option('--balancer-inflight <n>', 'with --balancer haproxy: queries the router is given at once', positiveInt, DEFAULT_BALANCER_INFLIGHT)
    .option('--balancer-queue-ms <ms>', `with --balancer haproxy: how long a query may wait before 429 (default: a quarter of a ${DEFAULT_SLA_P99_MS} ms SLA)`, positiveNumber)
    .option('--balancer-image <image>', 'with --balancer haproxy: the HAProxy image', 'haproxy:2.6');
  scalingOptions(cmd).action((opts: ManifestsOptions) => {
    const config = configOf(readManifest(opts.model));
    const plan = readPlan(opts.plan, config);
    const profileFile = plan.hotness ? path.resolve(path.dirname(opts.plan), plan.hotness.profile) : null;
    const profile = profileFile ? fs.readFileSync(profileFile) : null;
    const cost = readCostModel(opts.cost);
    // Pods run at the cost model's CPUs (their limits), so capacities need no scaling.
    const capacities = replicaCapacities(planningInputOf(plan, config, cost), plan);
    // A pod's HAProxy has no supervisor beside it to adapt its limit: fixed.
    const balancer = opts.balancer === 'haproxy' ? balancerForSla(DEFAULT_SLA_P99_MS, { inflightPerReplica: opts.balancerInflight, queueMs: opts.balancerQueueMs, adaptive: false }) : null;
    const objects = kubernetesManifests({ plan, config, profile, cost, image: opts.image, namespace: opts.namespace, modelClaim: opts.modelClaim, clusterDomain: opts.clusterDomain, scaling: opts, capacities, drainGraceMs: opts.drainGraceMs, balancer, balancerImage: opts.balancerImage });
    fs.mkdirSync(opts.out, { recursive: true });
    objects.forEach((o, i) => fs.writeFileSync(path.join(opts.out, `${String(i).padStart(2, '0')}-${o.kind.toLowerCase()}-${o.metadata.name}.json`), `${JSON.stringify(o, null, 2)}\n`));
    progress(`wrote ${objects.length} objects to ${opts.out}: kubectl apply -n ${opts.namespace} -f ${opts.out}`);
    const configMap = objects[0] as { binaryData?: unknown };
    if (profile && !configMap.binaryData) progress(`the hotness profile (${profile.length} bytes) is too big for a ConfigMap: copy ${profileFile} to the model volume as profile.bin`);
    progress('the ServiceMonitor needs the Prometheus Operator; the HPAs need prometheus-adapter with the rules in the adapter-rules ConfigMap');
  });
}
