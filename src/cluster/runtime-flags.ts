import { ErrorCodes, ShardwiseError } from '../util/errors.ts';
import type { ServiceConfig } from './service-config.ts';

type Role = ServiceConfig['role'];

/**
 * V8's initial heap per role, MiB (0: V8's default sizing). A front end allocates a few
 * hundred KiB of short-lived ArrayBuffers per query (bodies, frames, merged batches), which V8
 * counts against the old generation's limit; at V8's default the router ran a Mark-Compact
 * every ~100 ms, and 128 MiB lets scavenges collect them. In four alternating `bench:cpu` runs
 * (SHARDWISE_SERVICE_HEAP_MB=0, 128, 0, 128) the router took 1.30/1.47 ms of CPU per query at
 * V8's default against 1.02/1.04 at 128 MiB, the monolith 0.93/0.93 against 0.82/0.85. A shard
 * allocates little: with these per-role settings its CPU per query (0.12–0.36 ms) matched the
 * all-128 MiB runs (0.12–0.35); its lower figures in the all-default runs came from the slower
 * router merging more queries into each shard request. So a shard keeps V8's default, which
 * reserves less. Idle memory does not depend on it (bench:replica).
 */
export const ROLE_HEAP_MB: Record<Role, number> = { shard: 0, dense: 128, router: 128, monolithic: 128 };

/** The role's heap flags: ROLE_HEAP_MB, or SHARDWISE_SERVICE_HEAP_MB for every role (0: V8's default). */
export function serviceHeapFlags(role: Role): string[] {
  const raw = process.env.SHARDWISE_SERVICE_HEAP_MB;
  const mb = raw === undefined ? ROLE_HEAP_MB[role] : Number(raw);
  if (!Number.isInteger(mb) || mb < 0) throw new ShardwiseError(ErrorCodes.BAD_ARGUMENT, `SHARDWISE_SERVICE_HEAP_MB is ${JSON.stringify(raw)}`, "give whole MiB, or 0 for V8's default");
  return mb > 0 ? [`--initial-heap-size=${mb}`] : [];
}

/** A service process's Node flags: its heap, then SHARDWISE_SERVICE_NODE_FLAGS (space-separated, e.g. --cpu-prof), which come last and so override. */
export const serviceNodeFlags = (role: Role): string[] => [...serviceHeapFlags(role), ...(process.env.SHARDWISE_SERVICE_NODE_FLAGS ?? '').split(' ').filter(Boolean)];

/**
 * glibc malloc settings for every service process unless GLIBC_TUNABLES is set: keep freed
 * memory (no trimming; blocks under 32 MiB from the heap, not fresh mmaps) so per-batch
 * buffers reuse pages instead of faulting in new zeroed ones (`perf` counted 1–3 page faults
 * per shard request without them).
 */
export const SERVICE_MALLOC_TUNABLES = 'glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432';
