import * as fs from 'node:fs';

/** Resident set size of a live process, from /proc (0 where /proc is not there). */
export function processRss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Proportional set size of a live process (/proc/PID/smaps_rollup): pages shared with other
 * processes (replicas of one shard mapping the same rows) count a share each, so a sum over
 * processes counts shared rows once. 0 where /proc does not have it.
 */
export const processPss = (pid: number): number => rollupBytes(pid, ['Pss']);

/**
 * Unique set size of a live process (/proc/PID/smaps_rollup's private pages, clean and dirty):
 * what it alone holds. Pages shared with other processes — the node binary's code and data,
 * paged in by whatever a process runs, and rows mapped by several replicas — are left out, so
 * this is what one more replica adds to a machine already running one. 0 where /proc does not have it.
 */
export const processUss = (pid: number): number => rollupBytes(pid, ['Private_Clean', 'Private_Dirty']);

/** The sum of some fields of /proc/PID/smaps_rollup, in bytes; 0 where /proc does not have it. */
function rollupBytes(pid: number, fields: string[]): number {
  try {
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return fields.reduce((sum, field) => sum + Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0), 0) * 1024;
  } catch {
    return 0;
  }
}

/** CPU seconds a process has used, split by mode. */
export interface CpuTimes {
  user: number;
  system: number;
}

/**
 * CPU seconds (user and system) a live process has used, all its threads, or only thread `tid`
 * of it (its main thread: `tid` = `pid`), from /proc (zeros where it is not there).
 */
export function processCpuTimes(pid: number, tid?: number): CpuTimes {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    const stat = fs.readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** CPU seconds (user + system, all threads) a live process has used (0 where it is not there). */
export function processCpuSeconds(pid: number): number {
  const t = processCpuTimes(pid);
  return t.user + t.system;
}

/** USER_HZ: Linux reports process times in these ticks, 100 per second on every mainstream platform. */
const CLOCK_TICKS = 100;

/**
 * RSS and PSS of a live process's mappings of files under `dir` (/proc/PID/smaps): the
 * embedding rows it maps. Replicas sharing those pages each count a share in PSS, so across
 * n replicas of one shard PSS is about RSS / n. Zeros where /proc does not have it.
 */
export function mappedFileMemory(pid: number, dir: string): { rss: number; pss: number } {
  const out = { rss: 0, pss: 0 };
  let smaps: string;
  try {
    smaps = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return out;
  }
  let inDir = false;
  for (const line of smaps.split('\n')) {
    // A mapping's header line: "start-end perms offset dev inode   path".
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s+(.*)$/.exec(line);
    if (header) {
      inDir = header[1].startsWith(dir.endsWith('/') ? dir : `${dir}/`);
      continue;
    }
    if (!inDir) continue;
    const field = /^(Rss|Pss):\s+(\d+) kB/.exec(line);
    if (field) out[field[1] === 'Rss' ? 'rss' : 'pss'] += Number(field[2]) * 1024;
  }
  return out;
}

/** The machine's CPU time so far (all CPUs, in clock ticks) and of that what the hypervisor gave other guests (steal), from /proc/stat; null off Linux. */
export function machineCpuTicks(): { total: number; steal: number } | null {
  try {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is counted in user already.
    return { total: fields.slice(0, 8).reduce((s, v) => s + v, 0), steal: fields[7] ?? 0 };
  } catch {
    return null;
  }
}

/** The share of the machine's CPU time stolen by the hypervisor between two readings (NaN where unknown). */
export function stealShare(before: ReturnType<typeof machineCpuTicks>, after: ReturnType<typeof machineCpuTicks>): number {
  if (!before || !after || after.total <= before.total) return NaN;
  return (after.steal - before.steal) / (after.total - before.total);
}
