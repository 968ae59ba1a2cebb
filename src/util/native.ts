import { createRequire } from 'node:module';
import type { BucketizeKernels } from '../kernels/bucketize.ts';
import type { StampRowsKernel } from '../kernels/stamp-rows.ts';

/** The compiled addon's exports (native/addon.cc). */
export interface NativeAddon {
  embeddingBag(
    table: Float32Array, dim: number, indices: Int32Array, offsets: Int32Array, weights: Float32Array | null,
    mean: boolean, numBags: number, bagStart: number, bagStride: number, out: Float32Array, outStart: number, outStride: number,
  ): void;
  adviseHugePages(array: Float32Array): number;
  bucketizeCount: BucketizeKernels['count'];
  bucketizePlace: BucketizeKernels['place'];
  /** A read-only mapping of bytes [byteOffset, +byteLength) of a file, from the page boundary below byteOffset (native/mapped_file.cc). */
  mapFile(path: string, byteOffset: number, byteLength: number, populate: boolean): ArrayBuffer;
  stampRows: StampRowsKernel;
}

/**
 * The addon if `npm install` built it, else null. SHARDWISE_NATIVE=0 forces the TypeScript
 * paths (tests use it to compare both; operators use it to rule the addon out).
 */
function loadNative(): NativeAddon | null {
  if (process.env.SHARDWISE_NATIVE === '0') return null;
  try {
    return createRequire(import.meta.url)('../../build/Release/shardwise_native.node') as NativeAddon;
  } catch {
    return null;
  }
}

export const native: NativeAddon | null = loadNative();
