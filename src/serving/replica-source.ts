import type { Address } from './frame-client.ts';

/**
 * Where a router learns each service's replicas, by service name: the local supervisor's
 * updates, a static list, or (on Kubernetes) the records of a headless Service. Pools follow
 * what it says; a replica it stops listing is drained by its pool, not cut.
 */
export interface ReplicaSource {
  /** Calls `update` with the service's replicas now (if known) and whenever they change; returns an unsubscribe. */
  watch(service: string, update: (addresses: Address[]) => void): () => void;
}

/** Replicas that never change (`--shards static:host:port,…`, tests). */
export class StaticReplicaSource implements ReplicaSource {
  constructor(private readonly lists: ReadonlyMap<string, Address[]>) {}

  watch(service: string, update: (addresses: Address[]) => void): () => void {
    update(this.lists.get(service) ?? []);
    return () => {};
  }
}

/** Replicas pushed by whoever runs them: the local supervisor, over its IPC channel. */
export class PushedReplicaSource implements ReplicaSource {
  private readonly current = new Map<string, Address[]>();
  private readonly watchers = new Map<string, Set<(addresses: Address[]) => void>>();

  push(service: string, addresses: Address[]): void {
    this.current.set(service, addresses);
    for (const w of this.watchers.get(service) ?? []) w(addresses);
  }

  watch(service: string, update: (addresses: Address[]) => void): () => void {
    const set = this.watchers.get(service) ?? new Set();
    set.add(update);
    this.watchers.set(service, set);
    const now = this.current.get(service);
    if (now) update(now);
    return () => set.delete(update);
  }
}
