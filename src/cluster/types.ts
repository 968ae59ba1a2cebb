import type { ServiceState } from './supervisor.ts';

/**
 * What drives a deployment: the local supervisor today; the same shape for any controller the
 * admin API or the autoscaler can be pointed at (a simulator's, Kubernetes' through its API).
 */
export interface Controller {
  state(): ServiceState[];
  scale(service: string, replicas: number): Promise<{ from: number; to: number }>;
}
