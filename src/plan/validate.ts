import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelConfig } from '../model/types.ts';
import { readProfileHeader } from '../profile/format.ts';
import { ErrorCodes, ShardwiseError } from '../util/errors.ts';
import { PLAN_FORMAT, PLAN_VERSION, type Plan } from './types.ts';

const planError = (file: string, message: string, hint?: string) => new ShardwiseError(ErrorCodes.PLAN, `${file}: ${message}`, hint);
const isCount = (v: unknown, min: number) => Number.isInteger(v) && (v as number) >= min;

/**
 * Checks a plan's structure and, against the model, that the shards' pieces cover every
 * table's rows exactly once. The error names the field and what was expected.
 */
/** Names of the services a plan's shards sit beside in a deployment (its control plane keys services by name). */
const RESERVED_SERVICE_NAMES = ['router', 'dense'];

export function validatePlan(plan: Plan, config: ModelConfig, file = 'plan'): void {
  const fail = (msg: string, hint?: string): never => {
    throw planError(file, msg, hint);
  };
  if (plan?.format !== PLAN_FORMAT) fail(`'format' must be '${PLAN_FORMAT}'`, 'make one with `shardwise plan`');
  if (plan.version !== PLAN_VERSION) fail(`version ${plan.version} is not supported (this build reads version ${PLAN_VERSION})`);
  if (plan.model?.name !== config.name) fail(`was made for model '${plan.model?.name}', not '${config.name}'`, 'plan again for this model');
  const rows = config.tables.map((t) => t.rows);
  if (JSON.stringify(plan.model.tableRows) !== JSON.stringify(rows)) {
    fail(`was made for tables of ${JSON.stringify(plan.model.tableRows)} rows; the model has ${JSON.stringify(rows)}`, 'plan again for this model');
  }
  if (!isCount(plan.router?.replicas, 1)) fail(`router.replicas must be an integer ≥ 1, got ${plan.router?.replicas}`);
  if (!isCount(plan.router.cacheRows, 0)) fail(`router.cacheRows must be an integer ≥ 0, got ${plan.router.cacheRows}`);
  if (plan.dense?.placement !== 'router' && plan.dense?.placement !== 'service') fail(`dense.placement must be 'router' or 'service', got ${JSON.stringify(plan.dense?.placement)}`);
  if (!isCount(plan.dense.replicas, 1)) fail(`dense.replicas must be an integer ≥ 1, got ${plan.dense.replicas}`);
  if (!Array.isArray(plan.shards) || plan.shards.length === 0) fail("'shards' must be a non-empty array");
  const names = new Set<string>();
  const covered: [number, number, string][][] = rows.map(() => []);
  plan.shards.forEach((s, i) => {
    const where = `shards[${i}]`;
    if (typeof s.name !== 'string' || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s.name)) {
      fail(`${where}.name ${JSON.stringify(s.name)} must be lower-case letters, digits and '-' (it names a service)`);
    }
    if (names.has(s.name)) fail(`${where}.name '${s.name}' is used twice`);
    if (RESERVED_SERVICE_NAMES.includes(s.name)) fail(`${where}.name '${s.name}' is the name of another service (${RESERVED_SERVICE_NAMES.join(', ')} are taken)`);
    names.add(s.name);
    if (!isCount(s.replicas, 1)) fail(`${where}.replicas must be an integer ≥ 1, got ${s.replicas}`);
    if (!Array.isArray(s.pieces) || s.pieces.length === 0) fail(`${where}.pieces must be a non-empty array`);
    s.pieces.forEach((p, j) => {
      const at = `${where}.pieces[${j}]`;
      if (!isCount(p.table, 0) || p.table >= rows.length) fail(`${at}.table must be 0..${rows.length - 1}, got ${p.table}`);
      if (!isCount(p.rowStart, 0) || !isCount(p.rowEnd, 1) || p.rowEnd <= p.rowStart || p.rowEnd > rows[p.table]) {
        fail(`${at} has rows [${p.rowStart}, ${p.rowEnd}); expected 0 ≤ rowStart < rowEnd ≤ ${rows[p.table]} (table ${p.table})`);
      }
      covered[p.table].push([p.rowStart, p.rowEnd, at]);
    });
  });
  covered.forEach((ranges, t) => {
    ranges.sort((a, b) => a[0] - b[0]);
    let next = 0;
    for (const [start, end, at] of ranges) {
      if (start > next) fail(`table ${t} rows [${next}, ${start}) are in no shard`);
      if (start < next) fail(`table ${t} rows [${start}, ${Math.min(next, end)}) are in two shards (${at} overlaps another piece)`);
      next = end;
    }
    if (next < rows[t]) fail(`table ${t} rows [${next}, ${rows[t]}) are in no shard`);
  });
  if (plan.hotness !== undefined && (typeof plan.hotness?.profile !== 'string' || plan.hotness.profile === '')) {
    fail(`hotness.profile must be the path of a profile file, got ${JSON.stringify(plan.hotness?.profile)}`);
  }
  if (plan.hotness?.checksum !== undefined && !/^[0-9a-f]{64}$/.test(String(plan.hotness.checksum))) {
    fail(`hotness.checksum must be the profile's sha256 in hex (64 characters), got ${JSON.stringify(plan.hotness.checksum)}`);
  }
  const w = plan.workload;
  if (w !== undefined) {
    if (!(typeof w?.targetQps === 'number' && w.targetQps > 0)) fail(`workload.targetQps must be a number > 0, got ${w?.targetQps}`);
    if (!isCount(w.samplesPerQuery, 1)) fail(`workload.samplesPerQuery must be an integer ≥ 1, got ${w.samplesPerQuery}`);
    if (w.slaP99Ms !== undefined && !(typeof w.slaP99Ms === 'number' && w.slaP99Ms > 0)) fail(`workload.slaP99Ms must be a number > 0, got ${w.slaP99Ms}`);
  }
}

/**
 * Checks that the plan's hotness profile exists, was made for this model and holds
 * permutations (a synthetic profile has none: its rows are already in hotness order).
 * Reads the header only, so it is cheap for 20M-row tables.
 */
function checkHotnessProfile(plan: Plan, config: ModelConfig, file: string): void {
  if (!plan.hotness) return;
  const header = readProfileHeader(plan.hotness.profile, config);
  if (!header.tables.every((t) => t.permutation)) {
    throw planError(file, `hotness.profile ${plan.hotness.profile} has no permutations (it is synthetic)`, 'profile a trace with `shardwise profile --trace`, or drop `hotness` to serve in identity order');
  }
}

export function readPlan(file: string, config: ModelConfig): Plan {
  let plan: Plan;
  try {
    plan = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw planError(file, err.code === 'ENOENT' ? 'not found' : `cannot be read (${err.message})`, 'make one with `shardwise plan`');
  }
  validatePlan(plan, config, file);
  // In memory the profile path is absolute, so services started anywhere find it.
  if (plan.hotness) plan.hotness = { ...plan.hotness, profile: path.resolve(path.dirname(file), plan.hotness.profile) };
  checkHotnessProfile(plan, config, file);
  return plan;
}

/** Writes the plan; the hotness profile's path is stored relative to the plan's directory. */
export function writePlan(file: string, plan: Plan): void {
  const stored = plan.hotness ? { ...plan, hotness: { ...plan.hotness, profile: path.relative(path.dirname(path.resolve(file)), path.resolve(plan.hotness.profile)) } } : plan;
  fs.writeFileSync(file, JSON.stringify(stored, null, 2) + '\n');
}
