import * as http from 'node:http';
import { LatencyRecorder } from '../util/latency.ts';

export interface HealthProbeResult {
  probes: number;
  /** Answers other than 200, and probes that got no answer within the timeout. */
  failures: number;
  latency: ReturnType<LatencyRecorder['summary']>;
}

/**
 * Probes a health URL every `everyMs` on a fresh connection each time, as a kubelet or a load
 * balancer does: what it measures includes accepting the connection, which is where a busy
 * front end makes probes wait.
 */
export function probeHealth(url: string, everyMs: number, timeoutMs = 5000): { stop(): Promise<HealthProbeResult> } {
  const latency = new LatencyRecorder();
  let probes = 0;
  let failures = 0;
  let open = 0;
  const probe = () => {
    const t0 = performance.now();
    probes++;
    open++;
    const done = (ok: boolean) => {
      open--;
      if (ok) latency.recordMs(performance.now() - t0);
      else failures++;
    };
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done(false));
  };
  const timer = setInterval(probe, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      while (open > 0) await new Promise((r) => setTimeout(r, 10));
      return { probes, failures, latency: latency.summary() };
    },
  };
}
