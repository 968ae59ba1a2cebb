import { type AutoscalerConfig, type AutoscalerState, type Decision, decide, initialAutoscalerState } from './autoscaler.ts';
import type { ServiceState } from './supervisor.ts';
import type { Controller } from './types.ts';
import type { Logger } from '../util/log.ts';
import type { MetricSource } from './scaling-config.ts';
import { HistogramWindows, bucketsOf } from './histogram-quantile.ts';

/** One service's loop: where its metric is read (`scalingMetric`) and its HPA config. */
export interface ServiceScaling {
  service: string;
  source: MetricSource;
  config: AutoscalerConfig;
}

/** One value of a Prometheus text page (the first series of `name` whose labels include `stage`). */
function valueOf(text: string, name: string, stage?: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (stage && !line.includes(`stage="${stage}"`)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

/**
 * The edge of the autoscaler: every sync period it reads each scaled service's metric from its
 * ready replicas, runs the pure `decide`, and applies the decision through the controller.
 * A replica without a rate yet (new, or its first sample) counts as not ready.
 */
export class AutoscaleLoop {
  private readonly states = new Map<string, AutoscalerState>();
  private readonly previous = new Map<number, { value: number; at: number }>();
  private readonly windows = new HistogramWindows();
  readonly decisions = new Map<string, Decision>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private readonly controller: Controller,
    private readonly services: ServiceScaling[],
    private readonly log: Logger,
    private readonly onDecision: (service: string, d: Decision) => void = () => {},
    private readonly clock: () => number = Date.now,
  ) {}

  start(): void {
    const periodMs = Math.min(...this.services.map((s) => s.config.syncPeriodS)) * 1000;
    this.timer = setInterval(() => void this.tick(), periodMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One sync: observe, decide, act (a tick that finds the last one still scaling is skipped). */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const s of this.services) {
        const state = this.controller.state().find((x) => x.name === s.service);
        if (!state) continue;
        const at = this.clock();
        const { readyValues, notReady } = await this.observe(state, s.source, at);
        const current = state.replicas.filter((r) => r.state === 'ready').length + state.starting;
        const { decision, state: next } = decide({ at, currentReplicas: current, readyValues, notReady: notReady + state.starting }, this.states.get(s.service) ?? initialAutoscalerState(), s.config);
        this.states.set(s.service, next);
        this.decisions.set(s.service, decision);
        this.onDecision(s.service, decision);
        if (decision.desired !== current) {
          this.log.info(`autoscale ${s.service}: ${current} → ${decision.desired} replicas (${s.config.metric} ${decision.observed.toFixed(2)} per replica, target ${s.config.target}: ${decision.reason})`);
          await this.controller.scale(s.service, decision.desired);
        }
      }
    } catch (e) {
      this.log.error(`autoscale: ${(e as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  private async observe(state: ServiceState, source: MetricSource, at: number): Promise<{ readyValues: number[]; notReady: number }> {
    const readyValues: number[] = [];
    let notReady = 0;
    for (const r of state.replicas.filter((x) => x.state === 'ready')) {
      let text: string | undefined;
      try {
        text = await (await fetch(`http://127.0.0.1:${r.metricsPort}/metrics`)).text();
      } catch {
        text = undefined;
      }
      const value = text === undefined ? undefined : this.read(text, source, r.pid, at);
      if (value === undefined) notReady++;
      else readyValues.push(value);
    }
    return { readyValues, notReady };
  }

  /** One replica's value, or undefined (no metric yet, or the first reading of a rate or a window). */
  private read(text: string, source: MetricSource, pid: number, at: number): number | undefined {
    if (source.read === 'p95') {
      const buckets = bucketsOf(text, source.series, source.stage);
      return buckets && this.windows.next(pid, buckets)?.p95;
    }
    const value = valueOf(text, source.series, source.stage);
    if (value === undefined || source.read === 'gauge') return value;
    const before = this.previous.get(pid);
    this.previous.set(pid, { value, at });
    return before && at > before.at ? ((value - before.value) * 1000) / (at - before.at) : undefined;
  }
}
