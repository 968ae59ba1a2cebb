import type { Plan } from '../plan/types.ts';
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
}

/** A public front end's HTTP settings. */
export interface FrontEndConfig {
  port: number;
  coalesce: CoalescingOptions | null;
  limits: HttpLimits;
  admission: AdmissionOptions | null;
}

/** What the supervisor tells a child process to be (passed as JSON in SHARDWISE_SERVICE). */
export type ServiceConfig = ReplicaSlot &
  (
    | { role: 'shard'; plan: Plan; shard: number; socketPath?: string }
    | { role: 'dense'; socketPath?: string }
    | ({ role: 'router'; plan: Plan; shards: Address[][]; dense: Address[]; deadlineMs: number } & FrontEndConfig)
    | ({ role: 'monolithic' } & FrontEndConfig)
  );

/** Messages between the supervisor and a child over the IPC channel. */
export type ChildMessage =
  | { type: 'ready'; port: number; socketPath?: string; metricsPort: number; rssBytes: number }
  | { type: 'failed'; message: string }
  /** A router's pool of `service` has answered everything it sent to a replica it was told to drop. */
  | { type: 'drained'; service: string; address: string };

export type ParentMessage =
  /** A service's replicas now, by service name (a router's ReplicaSource). */
  | { type: 'replicas'; service: string; addresses: Address[] }
  /** Drain and exit; a front end stays up (not ready) for graceMs first; `leaving`: it alone goes (scale-in), the deployment stays. */
  | { type: 'stop'; graceMs: number; leaving: boolean };

export const SERVICE_ENV = 'SHARDWISE_SERVICE';
