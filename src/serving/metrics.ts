import * as http from 'node:http';
import * as client from './prometheus.ts';
import { listenError } from '../util/errors.ts';

/**
 * One Prometheus registry per service process. Names follow shardwise_<thing>_<unit>; every
 * series has a `service` label (router, dense, shard-3) so one dashboard or autoscaler rule
 * covers every service.
 */
export class ServiceMetrics {
  readonly registry = new client.Registry();
  readonly duration: client.Histogram<'service' | 'stage'>;
  readonly requests: client.Counter<'service' | 'outcome'>;
  readonly inflight: client.Gauge<'service'>;
  readonly cacheLookups: client.Counter<'service' | 'result'>;
  readonly rowsServed: client.Counter<'service'>;
  readonly wireBytes: client.Counter<'service' | 'direction'>;
  readonly memoryUtility: client.Gauge<'service'>;
  readonly rowsHeld: client.Gauge<'service'>;
  readonly ejections: client.Counter<'service' | 'pool'>;
  readonly hedges: client.Counter<'service' | 'pool'>;

  constructor(readonly service: string) {
    this.registry.setDefaultLabels({ service });
    // The event-loop delay monitor samples on a timer of this period: at prom-client's default
    // 10 ms it woke every idle service 100 times a second (1.4–2.6% of a core each, measured);
    // at 1000 ms its lag readings meant nothing (most scrapes saw no sample). 20 ms resolves
    // the stalls an SLA of tens of ms cares about.
    client.collectDefaultMetrics({ register: this.registry, prefix: 'shardwise_', eventLoopMonitoringPrecision: 20 });
    const registers = [this.registry];
    dropTotalGauges(this.registry);
    this.duration = new client.Histogram({
      name: 'shardwise_request_duration_seconds',
      help: 'Time per request and per stage (total, bucketize, fanout, gather, dense)',
      labelNames: ['service', 'stage'],
      // Steps of at most 1.33x from 7.5 to 100 ms, where SLAs lie: the balancer's limit and the
      // autoscaler act on a p95 interpolated inside one bucket, and with 10-25-50 ms buckets a
      // true p95 of 12.6 ms read as 23 (test/metrics.test.ts), so the limit, meant to hold the
      // front ends at 25 ms, stopped growing far under it.
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.075, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.requests = new client.Counter({ name: 'shardwise_requests_total', help: 'Requests by outcome', labelNames: ['service', 'outcome'], registers });
    this.inflight = new client.Gauge({ name: 'shardwise_inflight_requests', help: 'Requests being served now', labelNames: ['service'], registers });
    this.cacheLookups = new client.Counter({ name: 'shardwise_cache_lookups_total', help: "Lookups served by the router's hot-row cache (hit) or sent to a shard (miss)", labelNames: ['service', 'result'], registers });
    this.rowsServed = new client.Counter({ name: 'shardwise_rows_served_total', help: 'Embedding rows gathered and pooled', labelNames: ['service'], registers });
    this.wireBytes = new client.Counter({ name: 'shardwise_wire_bytes_total', help: 'Bytes of internal frames sent and received', labelNames: ['service', 'direction'], registers });
    this.memoryUtility = new client.Gauge({
      name: 'shardwise_memory_utility_ratio',
      help: "Share of a shard replica's rows touched by its last complete window of 1000 queries (ElasticRec's memory utility)",
      labelNames: ['service'],
      registers,
    });
    this.rowsHeld = new client.Gauge({ name: 'shardwise_rows_held', help: 'Embedding rows this replica holds', labelNames: ['service'], registers });
    this.ejections = new client.Counter({ name: 'shardwise_replica_ejections_total', help: 'Replicas of a downstream pool taken out of rotation for failing or not answering', labelNames: ['service', 'pool'], registers });
    this.hedges = new client.Counter({ name: 'shardwise_hedged_requests_total', help: 'Requests to a downstream pool also sent to a second replica because the first was slow', labelNames: ['service', 'pool'], registers });
  }

  /** Seconds since `t0` (a performance.now() reading) into the stage's histogram. */
  observe(stage: string, t0: number): void {
    this.duration.observe({ service: this.service, stage }, (performance.now() - t0) / 1000);
  }

  async handleMetrics(res: http.ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': this.registry.contentType });
    res.end(await this.registry.metrics());
  }
}

/**
 * prom-client's default metrics include three gauges named *_total, which Prometheus reserves
 * for counters (`promtool check metrics` flags them). Each is the sum of its by-type twin
 * (`shardwise_nodejs_active_handles{type}` …), so they are dropped: sum() gives the same.
 */
function dropTotalGauges(registry: client.Registry): void {
  for (const name of ['active_handles', 'active_requests', 'active_resources']) registry.removeSingleMetric(`shardwise_nodejs_${name}_total`);
}

/** The side HTTP port of a service: /metrics and OIP health of this replica alone. `unready` says why it is not ready, or null. */
export function startMetricsServer(metrics: ServiceMetrics, unready: () => string | null, port = 0, host = '127.0.0.1'): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics') return void metrics.handleMetrics(res).catch(() => res.destroy());
    if (req.url === '/v2/health/live') return void res.writeHead(200).end();
    if (req.url === '/v2/health/ready') {
      const why = unready();
      return void res.writeHead(why ? 503 : 200, { 'content-type': 'text/plain' }).end(why ?? '');
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(listenError(e, `${host}:${port}`)));
    // Exclusive: in a cluster worker (a front-end replica) the port is this replica's own, not shared.
    server.listen({ port, host, exclusive: true }, () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}
