import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Address } from './frame-client.ts';
import { addressKey } from './frame-client.ts';
import type { ReplicaSource } from './replica-source.ts';
import { StaticReplicaSource } from './replica-source.ts';
import { badArgument } from '../util/errors.ts';

/** How often a DNS name is looked up again: its records' TTL, kept within these bounds (ms). */
export interface DnsRefresh {
  minMs: number;
  maxMs: number;
}

/** Kubernetes' CoreDNS answers headless Services with a 5 s TTL by default; faster than that only adds queries. */
export const DEFAULT_DNS_REFRESH: DnsRefresh = { minMs: 1000, maxMs: 5000 };

/** The few resolver calls the source makes, so a test can hand it a resolver of its own. */
export interface DnsLookup {
  resolve4(name: string, opts: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolve6(name: string, opts: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
}

/** A resolver asking the given servers (host or host:port, as /etc/resolv.conf would), or the system's. */
export function dnsResolver(servers?: string[]): DnsLookup {
  const r = new Resolver({ timeout: 1000, tries: 2 });
  if (servers?.length) r.setServers(servers);
  return r;
}

const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND']);

/**
 * One service's replicas from DNS: the A and AAAA records of a name (a Kubernetes headless
 * Service lists its ready pods), all on one port. Looked up again when the records' TTL runs
 * out (within DnsRefresh) and at once when asked (a pool that keeps failing calls refresh()).
 * A failed lookup keeps the last list: a DNS outage must not empty a healthy pool. A name
 * that exists with no records (every pod not ready) does empty it, and the router then says
 * which service has no replica.
 */
export class DnsReplicaSource implements ReplicaSource {
  private readonly watchers = new Set<(addresses: Address[]) => void>();
  private current: Address[] | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private closed = false;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly resolver: DnsLookup = dnsResolver(),
    private readonly refreshMs: DnsRefresh = DEFAULT_DNS_REFRESH,
    private readonly onError: (message: string) => void = () => {},
  ) {}

  watch(_service: string, update: (addresses: Address[]) => void): () => void {
    this.watchers.add(update);
    this.closed = false;
    if (this.current) update(this.current);
    if (!this.timer && !this.inFlight) void this.refresh();
    return () => {
      this.watchers.delete(update);
      if (this.watchers.size === 0) this.close();
    };
  }

  /** Looks the name up now (joins a lookup already going). */
  refresh(): Promise<void> {
    this.inFlight ??= this.lookup().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async lookup(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let next = this.refreshMs.minMs;
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(this.name, { ttl: true }), this.resolver.resolve6(this.name, { ttl: true })]);
    const failures = [v4, v6].filter((r): r is PromiseRejectedResult => r.status === 'rejected' && !NO_RECORDS.has((r.reason as NodeJS.ErrnoException).code ?? ''));
    if (failures.length > 0) {
      this.onError(`DNS lookup of ${this.name} failed (${(failures[0].reason as Error).message}); keeping its last ${this.current?.length ?? 0} replicas`);
    } else {
      const records = [v4, v6].flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
      if (records.length > 0) next = Math.min(...records.map((r) => r.ttl * 1000));
      const addresses = records.map((r) => r.address).sort().map((host): Address => ({ host, port: this.port }));
      if (!this.current || addresses.map(addressKey).join() !== this.current.map(addressKey).join()) {
        this.current = addresses;
        for (const w of this.watchers) w(addresses);
      }
    }
    if (this.closed) return;
    this.timer = setTimeout(() => void this.refresh(), Math.max(this.refreshMs.minMs, Math.min(this.refreshMs.maxMs, next)));
    this.timer.unref();
  }
}

/** `host:port`, `[v6]:port` → Address; throws with what was wrong. Port 0 (any free one) only for a listen address. */
export function parseHostPort(text: string, what: string, listen = false): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= (listen ? 0 : 1) && port <= 65535)) throw badArgument(`${what} ${JSON.stringify(text)} is not host:port`, 'e.g. 10.0.0.7:7000 or [fd00::7]:7000');
  const host = m[1] ?? m[2];
  if (m[1] && isIP(host) !== 6) throw badArgument(`${what} ${JSON.stringify(text)}: ${host} in brackets is not an IPv6 address`);
  return { host, port };
}

/**
 * A replica source from its spec, as `shardwise router --replicas` takes it:
 * `static:HOST:PORT[,HOST:PORT…]` (a fixed list) or `dns:NAME:PORT` (the records of NAME).
 */
export function replicaSourceFromSpec(service: string, spec: string, opts: { resolver?: DnsLookup; refresh?: DnsRefresh; onError?: (m: string) => void } = {}): ReplicaSource {
  const colon = spec.indexOf(':');
  const kind = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  if (kind === 'static') {
    const list = rest.split(',').filter((s) => s !== '').map((hp) => parseHostPort(hp, `replica of ${service}`));
    if (list.length === 0) throw badArgument(`static replicas of ${service}: the list is empty`, 'give static:HOST:PORT[,HOST:PORT…]');
    return new StaticReplicaSource(new Map([[service, list]]));
  }
  if (kind === 'dns') {
    const { host, port } = parseHostPort(rest, `DNS name of ${service}`);
    return new DnsReplicaSource(host, port, opts.resolver, opts.refresh, opts.onError);
  }
  throw badArgument(`replicas of ${service}: ${JSON.stringify(spec)} is neither static:… nor dns:…`, 'give static:HOST:PORT[,HOST:PORT…] or dns:NAME:PORT');
}

/** One source per service (each its own spec), behind the one interface a router reads. */
export class ReplicaSourceByService implements ReplicaSource {
  constructor(private readonly sources: ReadonlyMap<string, ReplicaSource>) {}

  watch(service: string, update: (addresses: Address[]) => void): () => void {
    const source = this.sources.get(service);
    if (!source) throw badArgument(`no replica source for service ${service}`);
    return source.watch(service, update);
  }

  /** Looks the service's replicas up again where its source can (DNS); a no-op for a static list. */
  refresh(service: string): void {
    const source = this.sources.get(service);
    if (source instanceof DnsReplicaSource) void source.refresh();
  }
}
