import type { ServiceState } from './supervisor.ts';

/** The balancer in front of the front ends, as the admin API reports it. */
export interface BalancerState {
  kind: 'haproxy';
  /** Queries the front ends are given at once (per replica × replicas). */
  inflightLimit: number;
  /** Queries waiting in the balancer now. */
  queued: number;
  /** Queries it refused with 429 since it started, and queries it passed on. */
  refused: number;
  forwarded: number;
  /** Its Prometheus exporter, if any. */
  metricsPort: number | null;
}

/**
 * What drives a deployment: the local supervisor today; the same shape for any controller the
 * admin API or the autoscaler can be pointed at (a simulator's, Kubernetes' through its API).
 */
export interface Controller {
  state(): ServiceState[];
  scale(service: string, replicas: number): Promise<{ from: number; to: number }>;
  /** The balancer in front, where the deployment has one (its counters ask it: I/O). */
  balancer?(): Promise<BalancerState | null>;
  /** Where the balancer's exporter listens, without asking it. */
  balancerMetricsPort?(): number | null;
}
