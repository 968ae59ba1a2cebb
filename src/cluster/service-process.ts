/**
 * Entry point of every service process the supervisor starts: reads its ServiceConfig,
 * starts the role, reports its ports over IPC, and drains and exits on 'stop', SIGTERM, or
 * when the supervisor goes away (so no process outlives its supervisor).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PushedReplicaSource } from '../serving/replica-source.ts';
import { createLogger } from '../util/log.ts';
import { ShardwiseError } from '../util/errors.ts';
import { startReplica, type Running } from './replica-runtime.ts';
import { SERVICE_ENV, type ChildMessage, type ParentMessage, type ServiceConfig } from './service-config.ts';

const send = (m: ChildMessage) => process.send?.(m);

/**
 * With the supervisor gone (SIGKILLed, crashed), nobody removes the socket folder: the last
 * internal service to leave it does (rmdir succeeds only on an empty folder).
 */
function removeSocketDirIfLast(socketPath: string | undefined): void {
  if (!socketPath) return;
  try {
    fs.rmSync(socketPath, { force: true });
    fs.rmdirSync(path.dirname(socketPath));
  } catch {
    // Another replica's socket is still there; it removes the folder when it leaves.
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env[SERVICE_ENV] ?? 'null') as ServiceConfig;
  const log = createLogger(`${cfg?.service ?? 'service'}/${cfg?.replica ?? 0}`);
  // A router's replicas, by service name: the supervisor's starting lists now, updates over IPC.
  const source = new PushedReplicaSource();
  if (cfg?.role === 'router') {
    cfg.plan.shards.forEach((s, i) => source.push(s.name, cfg.shards[i]));
    source.push('dense', cfg.dense);
  }
  let running: Running;
  try {
    running = await startReplica(cfg, log, { source, onDrained: (service, address) => send({ type: 'drained', service, address }) });
  } catch (e) {
    // A ShardwiseError is a condition the user can act on (a port in use, a bad file): its message and hint, no stack.
    const known = e instanceof ShardwiseError;
    send({ type: 'failed', message: (e as Error).message, hint: known ? e.hint : undefined });
    log.error(`failed to start: ${known ? e.describe() : ((e as Error).stack ?? e)}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = async (graceMs: number, leaving = false, orphaned = false) => {
    if (stopping) return;
    stopping = true;
    await running.close(graceMs, leaving);
    if (orphaned) removeSocketDirIfLast(running.socketPath);
    process.exit(0);
  };
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stop') void stop(m.graceMs, m.leaving);
    else if (m.type === 'replicas') source.push(m.service, m.addresses);
  });
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => {}); // the supervisor owns Ctrl-C and stops children in order
  process.on('disconnect', () => void stop(0, false, true));
  send({ type: 'ready', port: running.port, socketPath: running.socketPath, metricsPort: running.metricsPort, rssBytes: process.memoryUsage.rss() });
}

await main();
