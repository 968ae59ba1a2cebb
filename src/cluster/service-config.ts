import type { Plan } from '../plan/types.ts';
import type { Address } from '../serving/frame-client.ts';
import type { CoalescingOptions } from '../serving/coalescing-engine.ts';

/** What the supervisor tells a child process to be (passed as JSON in SHARDWISE_SERVICE). */
export type ServiceConfig =
  | { role: 'shard'; service: string; modelDir: string; plan: Plan; shard: number; socketPath?: string }
  | { role: 'dense'; service: string; modelDir: string; socketPath?: string }
  | { role: 'router'; service: string; modelDir: string; plan: Plan; port: number; shards: Address[][]; dense: Address[]; deadlineMs: number; coalesce: CoalescingOptions | null }
  | { role: 'monolithic'; service: string; modelDir: string; port: number; coalesce: CoalescingOptions | null };

/** Messages between the supervisor and a child over the IPC channel. */
export type ChildMessage =
  | { type: 'ready'; port: number; socketPath?: string; metricsPort: number; rssBytes: number }
  | { type: 'failed'; message: string };

export type ParentMessage =
  | { type: 'replicas'; shard: number | 'dense'; addresses: Address[] }
  | { type: 'stop' };

export const SERVICE_ENV = 'SHARDWISE_SERVICE';
