import type { Plan } from '../plan/types.ts';
import type { RowLoading } from '../model/store.ts';
import type { Address } from '../serving/frame-client.ts';
import type { CoalescingOptions } from '../serving/coalescing-engine.ts';
import type { AdmissionOptions } from '../serving/admission.ts';
import type { HttpLimits } from '../serving/http-api.ts';

/** What every replica is told, whatever its role. */
interface ReplicaSlot {
  service: string;
  /** The replica's slot in its service: the same across restarts. */
  replica: number;
  modelDir: string;
  /** Port for /metrics and health: 0 picks one; a restarted replica gets its slot's port again. */
  metricsPort: number;
  /** Address the metrics port binds (default 127.0.0.1: beyond loopback only when asked). */
  metricsHost?: string;
  /** How embedding rows are loaded (default: mapped where the addon is built). */
  rows?: RowLoading;
}

/** Where an internal service (shard, dense) takes frames: a Unix socket (same machine) or TCP. */
interface FrameListen {
  socketPath?: string;
  /** TCP address when there is no socket path (default 127.0.0.1, any free port). */
  listen?: { host: string; port: number };
}

/** A public front end's HTTP settings. */
export interface FrontEndConfig {
  port: number;
  /** Address the public port binds (default 127.0.0.1). */
  host?: string;
  coalesce: CoalescingOptions | null;
  limits: HttpLimits;
  admission: AdmissionOptions | null;
}

/** What one replica of a service is, however it was started (by the supervisor, or as a pod's command). */
export type ReplicaConfig = ReplicaSlot &
  (
    | ({ role: 'shard'; plan: Plan; shard: number } & FrameListen)
    | ({ role: 'dense' } & FrameListen)
    | ({ role: 'router'; plan: Plan; deadlineMs: number; pooling?: 'shard' | 'router' } & FrontEndConfig)
    | ({ role: 'monolithic' } & FrontEndConfig)
  );

/**
 * What the supervisor tells a child process to be (passed as JSON in SHARDWISE_SERVICE): a
 * router also gets the replicas it starts with; updates follow over IPC.
 */
export type ServiceConfig = Exclude<ReplicaConfig, { role: 'router' }> | (Extract<ReplicaConfig, { role: 'router' }> & { shards: Address[][]; dense: Address[] });

/** Messages between the supervisor and a child over the IPC channel. */
export type ChildMessage =
  | { type: 'ready'; port: number; socketPath?: string; metricsPort: number; rssBytes: number }
  | { type: 'failed'; message: string; hint?: string }
  /** A router's pool of `service` has answered everything it sent to a replica it was told to drop. */
  | { type: 'drained'; service: string; address: string };

export type ParentMessage =
  /** A service's replicas now, by service name (a router's ReplicaSource). */
  | { type: 'replicas'; service: string; addresses: Address[] }
  /** Drain and exit; a front end stays up (not ready) for graceMs first; `leaving`: it alone goes (scale-in), the deployment stays. */
  | { type: 'stop'; graceMs: number; leaving: boolean };

export const SERVICE_ENV = 'SHARDWISE_SERVICE';
