import { native } from './native.ts';

/** Below this, huge pages buy nothing. */
const HUGE_PAGE_MIN_BYTES = 4 << 20;

/**
 * A zeroed Float32Array for an embedding table, advised onto transparent huge pages before
 * it is touched: random row gathers then skip most TLB misses (measured in bench:kernels).
 * Without the addon, or where THP is off, it is a plain Float32Array.
 */
export function allocateTable(elements: number): Float32Array {
  const out = new Float32Array(elements);
  if (native && out.byteLength >= HUGE_PAGE_MIN_BYTES) native.adviseHugePages(out);
  return out;
}
