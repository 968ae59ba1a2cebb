import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { tempDir } from './helpers.ts';

export const dnsmasqMissing = spawnSync('dnsmasq', ['--version']).error ? 'needs dnsmasq (Debian dnsmasq-base; .ci/run installs it)' : false;

/**
 * A real DNS server for a test: dnsmasq on address:port (default 127.0.0.1) answering only the names of a hosts
 * file, all under .test (no upstream, no /etc/hosts; a missing record type is NODATA, as
 * CoreDNS answers AAAA for an IPv4-only Service), TTL 1 s. set() rewrites the records and has dnsmasq
 * reload them (SIGHUP), as pods coming and going change a headless Service's records.
 */
export class TestDns {
  private constructor(
    private readonly child: ChildProcess,
    private readonly hostsFile: string,
    readonly server: string,
  ) {}

  static async start(records: Record<string, string[]>, address = '127.0.0.1'): Promise<TestDns> {
    const dir = tempDir('shardwise-dns-');
    const hostsFile = path.join(dir, 'hosts');
    fs.writeFileSync(hostsFile, hostsText(records));
    // A random port below the kernel's ephemeral range (32768 up), where no outgoing connection takes one; another
    // one if it is taken anyway (a fresh-clone CI run found one in use).
    for (let attempt = 0; ; attempt++) {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      const started = await TestDns.listen(hostsFile, address, port, records);
      if (started instanceof TestDns) return started;
      if (!started.includes('Address already in use') || attempt === 4) throw new Error(`dnsmasq on ${address}:${port}: ${started}`);
    }
  }

  /** dnsmasq on address:port, up once it answers a name it holds; or why it did not start. */
  private static async listen(hostsFile: string, address: string, port: number, records: Record<string, string[]>): Promise<TestDns | string> {
    const child = spawn('dnsmasq', ['--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--local=/test/', `--addn-hosts=${hostsFile}`, `--listen-address=${address}`, '--bind-interfaces', `--port=${port}`, '--local-ttl=1', '--user=root', '--pid-file=', '--log-facility=-'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c) => (err += c));
    // Its stderr is read whole only once its pipes close, which can be after the exit.
    const closed = new Promise((res) => child.once('close', res));
    const dns = new TestDns(child, hostsFile, `${address}:${port}`);
    const { Resolver } = await import('node:dns/promises');
    const r = new Resolver({ timeout: 200, tries: 1 });
    r.setServers([dns.server]);
    const first = Object.keys(records)[0];
    for (let i = 0; i < 50; i++) {
      if (child.exitCode !== null) return closed.then(() => `exited: ${err.trim()}`);
      try {
        await r.resolve4(first);
        return dns;
      } catch {
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    child.kill();
    return `did not answer in 5 s: ${err}`;
  }

  set(records: Record<string, string[]>): void {
    fs.writeFileSync(this.hostsFile, hostsText(records));
    this.child.kill('SIGHUP');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill();
    await new Promise((r) => this.child.once('exit', r));
  }
}

function hostsText(records: Record<string, string[]>): string {
  return Object.entries(records).flatMap(([name, ips]) => ips.map((ip) => `${ip} ${name}\n`)).join('');
}
