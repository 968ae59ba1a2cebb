import type { ServiceState } from '../cluster/supervisor.ts';
import { processPss, processRss } from '../util/process-stats.ts';

export interface DeploymentSample {
  /** Ready replicas per service. */
  replicas: Record<string, number>;
  /** What the ready replicas would reserve on nodes of their own: each one's RSS when it became ready (its rows or weights and its fixed overhead). */
  requestBytes: number;
  /** RSS and PSS summed over the deployment's processes now (PSS counts pages shared between them once). */
  rssBytes: number;
  pssBytes: number;
}

/** Replicas per service and memory of a deployment on this machine, from its admin API and /proc; null if the API did not answer. */
export async function sampleDeployment(admin: string): Promise<DeploymentSample | null> {
  try {
    const { services } = (await (await fetch(new URL('/v1/state', admin))).json()) as { services: ServiceState[] };
    const ready = services.flatMap((s) => s.replicas.filter((r) => r.state === 'ready'));
    const pids = services.flatMap((s) => s.replicas.map((r) => r.pid));
    return {
      replicas: Object.fromEntries(services.map((s) => [s.name, s.replicas.filter((r) => r.state === 'ready').length])),
      requestBytes: ready.reduce((n, r) => n + r.rssBytes, 0),
      rssBytes: pids.reduce((n, pid) => n + processRss(pid), 0),
      pssBytes: pids.reduce((n, pid) => n + processPss(pid), 0),
    };
  } catch {
    return null;
  }
}

/**
 * One sample per second of a run (second 0 starts at `startMs`, a performance.now() time):
 * four tries a second, the first answer of each second kept, so a slow state call loses none.
 */
export function sampleEverySecond(admin: string, startMs: number): { stop(): (DeploymentSample | null)[] } {
  const samples: (DeploymentSample | null)[] = [];
  const timer = setInterval(() => {
    const t = Math.floor((performance.now() - startMs) / 1000);
    if (t >= 0 && !samples[t]) void sampleDeployment(admin).then((s) => (samples[t] ??= s));
  }, 250);
  return {
    stop: () => {
      clearInterval(timer);
      return samples;
    },
  };
}
