import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../util/log.ts';

/**
 * CPU limits per replica with the kernel's CFS bandwidth controller, exactly as a Kubernetes
 * CPU limit is enforced: `cpus` × period of CPU time per period. The period is shorter than
 * the kubelet's 100 ms default: at a fraction of a CPU, a 100 ms period lets a replica run
 * its quota in one burst and then stall for the rest of it, which alone would break a tens-
 * of-ms SLA (the kubelet's --cpu-cfs-quota-period makes the same trade).
 */
const PERIOD_US = 10_000;
const V1_ROOT = '/sys/fs/cgroup/cpu';
const V2_ROOT = '/sys/fs/cgroup';

export interface CpuLimiter {
  /** Puts `pid` under a limit of `cpus`; false (after one warning) where cgroups can't be written. */
  limit(pid: number, name: string, cpus: number): boolean;
  /** Removes a limited replica's cgroup after it exited. */
  release(name: string): void;
  /** Removes every cgroup this limiter made. */
  close(): void;
}

type Layout = { version: 1 | 2; dir: string };

function findLayout(owner: string): Layout | null {
  if (fs.existsSync(path.join(V1_ROOT, 'cpu.cfs_quota_us'))) return { version: 1, dir: path.join(V1_ROOT, owner) };
  if (fs.existsSync(path.join(V2_ROOT, 'cgroup.controllers')) && fs.readFileSync(path.join(V2_ROOT, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) {
    return { version: 2, dir: path.join(V2_ROOT, owner) };
  }
  return null;
}

export function cgroupCpuLimiter(log: Logger, owner = `shardwise-${process.pid}`): CpuLimiter {
  let layout: Layout | null | undefined;
  let warned = false;
  const made = new Set<string>();
  const unavailable = (why: string) => {
    if (!warned) log.warn(`CPU limits are not enforced: ${why}; replicas run unlimited (run as root on a host with the cgroup cpu controller)`);
    warned = true;
    return false;
  };
  return {
    limit(pid, name, cpus) {
      layout ??= findLayout(owner);
      if (!layout) return unavailable('no writable cgroup cpu controller (v1 cpu.cfs_quota_us or v2 cpu.max)');
      const dir = path.join(layout.dir, name);
      const quota = Math.max(1000, Math.round(cpus * PERIOD_US));
      try {
        if (layout.version === 2 && !fs.existsSync(layout.dir)) {
          fs.mkdirSync(layout.dir);
          fs.writeFileSync(path.join(layout.dir, 'cgroup.subtree_control'), '+cpu');
        }
        fs.mkdirSync(dir, { recursive: true });
        made.add(dir);
        if (layout.version === 1) {
          fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
          fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quota));
        } else fs.writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
        fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
        return true;
      } catch (e) {
        return unavailable((e as Error).message);
      }
    },
    release(name) {
      if (!layout) return;
      const dir = path.join(layout.dir, name);
      try {
        fs.rmdirSync(dir);
        made.delete(dir);
      } catch {
        // Still has a process (exit not yet reaped): close() retries.
      }
    },
    close() {
      for (const dir of made) {
        try {
          fs.rmdirSync(dir);
        } catch {
          // A process outlived its supervisor's stop; the kernel keeps the group until it exits.
        }
      }
      made.clear();
      if (layout) {
        try {
          fs.rmdirSync(layout.dir);
        } catch {
          // Not empty or never made.
        }
      }
    },
  };
}
