import { execFileSync, spawnSync } from 'node:child_process';

const isRoot = process.getuid?.() === 0;
const ipWorks = isRoot && !spawnSync('ip', ['netns', 'list']).error;
export const netnsMissing = ipWorks ? false : 'needs root and iproute2 (ip netns) to create network hosts';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Whether this kernel has tc's netem qdisc (some VM kernels are built without it). */
export function netemAvailable(): boolean {
  if (!ipWorks) return false;
  const probe = `swnp${process.pid % 10000}`;
  try {
    ip('link', 'add', probe, 'type', 'dummy');
    return spawnSync('tc', ['qdisc', 'add', 'dev', probe, 'root', 'netem', 'delay', '1ms']).status === 0;
  } catch {
    return false;
  } finally {
    spawnSync('ip', ['link', 'del', probe]);
  }
}

/**
 * Hosts on one machine: each a network namespace with its own address on a shared bridge,
 * wired by a veth pair, as separate machines on one switch. The root namespace sits on the
 * bridge at .1 (the test's client and DNS server). Everything is removed by remove().
 */
export class TestNetwork {
  readonly hosts = new Map<string, { ns: string; veth: string; address: string }>();
  private readonly bridge: string;
  readonly gateway: string;

  constructor(
    private readonly tag = `sw${process.pid % 10000}`,
    private readonly subnet = `10.${100 + (process.pid % 100)}.0`,
  ) {
    this.bridge = `${tag}br`;
    this.gateway = `${subnet}.1`;
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('addr', 'add', `${this.gateway}/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
  }

  addHost(name: string): string {
    const i = this.hosts.size + 10;
    const ns = `${this.tag}-${name}`;
    const veth = `${this.tag}${name}`.slice(0, 15);
    const address = `${this.subnet}.${i}`;
    ip('netns', 'add', ns);
    ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('link', 'set', veth, 'master', this.bridge, 'up');
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    this.hosts.set(name, { ns, veth, address });
    return address;
  }

  /** The command prefix that runs a process on a host. */
  exec(name: string): string[] {
    return ['ip', 'netns', 'exec', this.hosts.get(name)!.ns];
  }

  /** Cuts (or restores) a host's link to the bridge. */
  link(name: string, up: boolean): void {
    ip('link', 'set', this.hosts.get(name)!.veth, up ? 'up' : 'down');
  }

  /** netem on both directions of a host's link (`delay 20ms loss 1%`), or removes it. */
  netem(name: string, spec: string[] | null): void {
    const h = this.hosts.get(name)!;
    for (const prefix of [[], ['-n', h.ns]]) {
      const dev = prefix.length ? 'eth0' : h.veth;
      if (spec) execFileSync('tc', [...prefix, 'qdisc', 'add', 'dev', dev, 'root', 'netem', ...spec]);
      else spawnSync('tc', [...prefix, 'qdisc', 'del', 'dev', dev, 'root']);
    }
  }

  remove(): void {
    for (const h of this.hosts.values()) spawnSync('ip', ['netns', 'del', h.ns]);
    spawnSync('ip', ['link', 'del', this.bridge]);
    this.hosts.clear();
  }
}
