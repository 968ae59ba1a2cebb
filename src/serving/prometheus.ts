import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

/**
 * prom-client, loaded by module rather than through its index. The index loads everything
 * (Summary, Pushgateway with node:https, cluster aggregation), and its default metrics' CPU
 * counter imports @opentelemetry/api for exemplars we never record: together +9.8 MiB of RSS
 * (+4.6 MiB private) in every service process, measured, a fifth of an idle shard. So each
 * part used comes from its own module (prom-client has no `exports` map; package.json pins
 * the minor version, and test/metrics.test.ts checks these names against the index's).
 */
const require = createRequire(import.meta.url);
const lib = (name: string): unknown => require(`prom-client/lib/${name}`);

export const Registry = lib('registry') as typeof Prom.Registry;
export const Counter = lib('counter') as typeof Prom.Counter;
export const Gauge = lib('gauge') as typeof Prom.Gauge;
export const Histogram = lib('histogram') as typeof Prom.Histogram;
export type Registry = Prom.Registry;
export type Counter<L extends string> = Prom.Counter<L>;
export type Gauge<L extends string> = Prom.Gauge<L>;
export type Histogram<L extends string> = Prom.Histogram<L>;

/** prom-client's default collectors but its CPU counters (processCpuTotal), which processCpu replaces. */
const DEFAULT_COLLECTORS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
];

type Collector = (registry: Prom.Registry, config: Prom.DefaultMetricsCollectorConfiguration<Prom.RegistryContentType>) => void;

/** process_cpu_{user,system,}_seconds_total as prom-client's default metrics name them, read from process.cpuUsage() at each scrape. */
function processCpu(registry: Prom.Registry, prefix: string): void {
  const registers = [registry];
  let last = process.cpuUsage();
  // Registered first, so its collect() sets all three before the other two are read.
  new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const user = (now.user - last.user) / 1e6;
      const sys = (now.system - last.system) / 1e6;
      last = now;
      this.inc(user);
      system.inc(sys);
      total.inc(user + sys);
    },
  });
  const system = new Counter({ name: `${prefix}process_cpu_system_seconds_total`, help: 'Total system CPU time spent in seconds.', registers });
  const total = new Counter({ name: `${prefix}process_cpu_seconds_total`, help: 'Total user and system CPU time spent in seconds.', registers });
}

/** What prom-client's collectDefaultMetrics registers, without loading what it would. */
export function collectDefaultMetrics(config: { register: Prom.Registry; prefix: string; eventLoopMonitoringPrecision: number }): void {
  processCpu(config.register, config.prefix);
  for (const name of DEFAULT_COLLECTORS) (lib(`metrics/${name}`) as Collector)(config.register, config);
}
