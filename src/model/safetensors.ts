import * as fs from 'node:fs';
import { importError } from '../util/errors.ts';

/**
 * A reader for the safetensors format (huggingface/safetensors): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}} and the
 * raw tensor bytes. The format is small and fixed, and no npm package for Node reads it
 * without pulling in a framework, so this is the whole reader.
 */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  file: string;
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Returns a tensor as float32 (converting from F64/F16/BF16 where needed). */
  float32(name: string): Float32Array;
}

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function readSafetensors(file: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw importError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (bytes.length < 8) throw importError(file, `is ${bytes.length} bytes long; a safetensors file starts with an 8-byte header length`);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > bytes.length) {
    throw importError(file, `header length ${headerLen} does not fit in a ${bytes.length}-byte file`, 'the file is truncated or not safetensors');
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
  } catch (e) {
    throw importError(file, `header is not valid JSON (${(e as Error).message})`, 'the file is not safetensors');
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const v = value as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const width = DTYPE_BYTES[v?.dtype];
    if (!width || !Array.isArray(v.shape) || !Array.isArray(v.data_offsets)) {
      throw importError(file, `tensor '${name}' has an unreadable header entry ${JSON.stringify(value)}`);
    }
    const [begin, end] = v.data_offsets;
    const count = v.shape.reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end >= begin && end <= dataLen) || end - begin !== count * width) {
      throw importError(
        file,
        `tensor '${name}' (${v.dtype} ${JSON.stringify(v.shape)}) claims bytes ${begin}..${end} of a ${dataLen}-byte data section; expected ${count * width} bytes inside it`,
        'the file is truncated or corrupt',
      );
    }
    entries.set(name, { dtype: v.dtype, shape: v.shape, begin, end });
  }

  const float32 = (name: string): Float32Array => {
    const e = entries.get(name);
    if (!e) throw importError(file, `has no tensor '${name}'`);
    const count = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    const at = dataStart + e.begin;
    const out = new Float32Array(count);
    switch (e.dtype) {
      case 'F32':
        new Uint8Array(out.buffer).set(bytes.subarray(at, at + count * 4));
        break;
      case 'F64':
        for (let i = 0; i < count; i++) out[i] = bytes.readDoubleLE(at + 8 * i);
        break;
      case 'F16':
        for (let i = 0; i < count; i++) out[i] = halfToFloat(bytes.readUInt16LE(at + 2 * i));
        break;
      case 'BF16': {
        const u = new Uint32Array(out.buffer);
        for (let i = 0; i < count; i++) u[i] = bytes.readUInt16LE(at + 2 * i) << 16;
        break;
      }
      default:
        throw importError(file, `tensor '${name}' has dtype ${e.dtype}; expected a floating-point tensor`);
    }
    return out;
  };
  return { file, entries, metadata, float32 };
}
