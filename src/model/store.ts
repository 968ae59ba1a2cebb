import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import type { EmbeddingTable, Linear, Model, ModelConfig } from './types.ts';
import { FLOAT_BYTES, layerShapes, topInputWidth } from './types.ts';
import {
  MANIFEST_FILE,
  type Manifest,
  buildManifest,
  configOf,
  expectedTensors,
  parseManifest,
  tensorNames,
  validateConfig,
} from './manifest.ts';
import { allocateTable } from '../util/memory.ts';
import { native } from '../util/native.ts';
import { ErrorCodes, ShardwiseError, modelManifestError, modelTensorError } from '../util/errors.ts';

/** Largest single read or write; fs caps one call at 2 GiB. */
const IO_CHUNK_BYTES = 1 << 30;
/** Elements a producer fills per call while writing, so writing a large table needs little memory. */
const WRITE_CHUNK_ELEMENTS = 1 << 22;

function assertLittleEndian(): void {
  if (os.endianness() !== 'LE') {
    throw new ShardwiseError(ErrorCodes.UNSUPPORTED, 'model files are little-endian float32; this CPU is big-endian');
  }
}

/** Fills `out` with the tensor's elements starting at `elementOffset` (row-major). */
export type TensorProducer = (name: string, out: Float32Array, elementOffset: number) => void;

/**
 * Writes a model directory: model.json plus one raw float32 file per tensor. Tensors are
 * produced in chunks, so a generated table never has to exist whole in memory.
 */
export function writeModel(dir: string, config: ModelConfig, produce: TensorProducer, onTensor?: (name: string) => void): Manifest {
  assertLittleEndian();
  validateConfig(config, path.join(dir, MANIFEST_FILE));
  fs.mkdirSync(dir, { recursive: true });
  const manifest = buildManifest(config);
  const buf = new Float32Array(WRITE_CHUNK_ELEMENTS);
  for (const t of expectedTensors(config)) {
    const total = t.shape.reduce((a, b) => a * b, 1);
    const file = path.join(dir, manifest.tensors[t.name].file);
    const fd = fs.openSync(file, 'w');
    try {
      for (let off = 0; off < total; off += buf.length) {
        const chunk = buf.subarray(0, Math.min(buf.length, total - off));
        produce(t.name, chunk, off);
        fs.writeSync(fd, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
    } finally {
      fs.closeSync(fd);
    }
    onTensor?.(t.name);
  }
  // The manifest goes last: a directory with a model.json is a complete model.
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

export function readManifest(dir: string): Manifest {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw modelManifestError(
      file,
      err.code === 'ENOENT' ? 'not found' : `cannot be read (${err.message})`,
      'pass a directory made by `shardwise generate` or `shardwise import`',
    );
  }
  return parseManifest(text, file);
}

/**
 * How a replica gets its rows. `map`: a read-only mapping of the file (native addon), so
 * replicas on one machine share the page cache's copy and a replica is ready without copying;
 * the pages are faulted in at map time, so no query waits on a page fault. `read`: copied into
 * the process's own memory (on transparent huge pages where available).
 */
export type RowLoading = 'map' | 'read';

/** `map` where the addon can map files, else `read`. */
export const DEFAULT_ROW_LOADING: RowLoading = typeof native?.mapFile === 'function' ? 'map' : 'read';

/**
 * Reads `count` elements of a tensor starting at `elementOffset`, straight into a new
 * Float32Array: the file's bytes are copied once, from the page cache into the array.
 */
export function readTensor(dir: string, manifest: Manifest, name: string, elementOffset = 0, count?: number): Float32Array {
  const entry = manifest.tensors[name];
  const total = entry.shape.reduce((a, b) => a * b, 1);
  return loadFloats(path.join(dir, entry.file), name, total, elementOffset, count ?? total - elementOffset, 'read');
}

/**
 * Elements [elementOffset, +count) of tensor `what`'s raw float32 file of `total` elements (checked against
 * its size), mapped or read. A mapped array is read-only: writing to it kills the process.
 */
export function loadFloats(file: string, what: string, total: number, elementOffset: number, count: number, loading: RowLoading): Float32Array {
  if (loading === 'map' && count > 0) {
    if (typeof native?.mapFile !== 'function') throw new ShardwiseError(ErrorCodes.UNSUPPORTED, 'mapping rows needs the native addon, which is not built', 'run `npm run build:native`, or load rows with `read`');
    checkedFileSize(file, what, total, fs.statSync);
    const bytes = count * FLOAT_BYTES;
    const mapped = native.mapFile(file, elementOffset * FLOAT_BYTES, bytes, true);
    return new Float32Array(mapped, mapped.byteLength - bytes, count);
  }
  const out = allocateTable(count);
  withFloatFile(file, what, total, (read) => read(elementOffset, out));
  return out;
}

/** Fills `out` with a file's elements from `elementOffset` on. */
type FloatRead = (elementOffset: number, out: Float32Array) => void;

const unopenable = (file: string, what: string, e: unknown) =>
  modelTensorError(file, what, `cannot be opened (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'the model directory is incomplete; generate or import it again');

/** Stats a float32 file through `stat` (a path or an open fd's) and checks its size against the elements it should hold. */
function checkedFileSize<F>(file: string, what: string, total: number, stat: (f: F) => fs.Stats, handle: F = file as F): void {
  let size: number;
  try {
    size = stat(handle).size;
  } catch (e) {
    throw unopenable(file, what, e);
  }
  if (size !== total * FLOAT_BYTES) {
    throw modelTensorError(
      file,
      what,
      `has ${size} bytes, expected ${total * FLOAT_BYTES} (${total} float32)`,
      size < total * FLOAT_BYTES ? 'the file is truncated; copy or generate it again' : 'the file does not match model.json',
    );
  }
}

/** Opens a float32 file once, checks its size, and lends `body` a reader. */
function withFloatFile<T>(file: string, what: string, total: number, body: (read: FloatRead) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw unopenable(file, what, e);
  }
  try {
    checkedFileSize(file, what, total, fs.fstatSync, fd);
    return body((elementOffset, out) => {
      const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      let done = 0;
      while (done < bytes.length) {
        const want = Math.min(IO_CHUNK_BYTES, bytes.length - done);
        const got = fs.readSync(fd, bytes, done, want, elementOffset * FLOAT_BYTES + done);
        if (got === 0) throw modelTensorError(file, what, `ended early at byte ${elementOffset * FLOAT_BYTES + done}`);
        done += got;
      }
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** Rows [rowStart, rowStart + rowCount) of table `t` in the model's own order. */
export function readTableRows(dir: string, manifest: Manifest, t: number, rowStart: number, rowCount: number, loading: RowLoading = 'read'): EmbeddingTable {
  const dim = manifest.embeddingDim;
  const name = tensorNames.table(t);
  const data = loadFloats(tableFile(dir, manifest, t), name, manifest.tables[t].rows * dim, rowStart * dim, rowCount * dim, loading);
  return { rows: rowCount, dim, data };
}

/** Table `t`'s raw float32 file. */
export function tableFile(dir: string, manifest: Manifest, t: number): string {
  return path.join(dir, manifest.tensors[tensorNames.table(t)].file);
}

/** Rows streamed per read when gathering a table in another order. */
const ORDERED_READ_ROWS = 1 << 16;

/**
 * Rows at sorted positions [start, start + count) of table `t`, where `position[id]` is
 * original row id's place in the order (a hotness permutation). The table file is streamed
 * once in chunks and each wanted row copied to its place, so memory stays the rows kept plus
 * one chunk, whatever the table's size.
 */
export function readTableRowsInOrder(dir: string, manifest: Manifest, t: number, position: Int32Array, start: number, count: number): EmbeddingTable {
  const dim = manifest.embeddingDim;
  const rows = manifest.tables[t].rows;
  if (position.length !== rows) throw new ShardwiseError(ErrorCodes.PROFILE_FORMAT, `table ${t}: the order has ${position.length} rows, the table ${rows}`, 'profile a trace of this model');
  const data = allocateTable(count * dim);
  const chunk = new Float32Array(Math.min(ORDERED_READ_ROWS, rows) * dim);
  withFloatFile(tableFile(dir, manifest, t), tensorNames.table(t), rows * dim, (read) => {
    for (let first = 0; first < rows; first += ORDERED_READ_ROWS) {
      const n = Math.min(ORDERED_READ_ROWS, rows - first);
      read(first * dim, chunk.subarray(0, n * dim));
      for (let i = 0; i < n; i++) {
        const to = position[first + i] - start;
        if (to >= 0 && to < count) data.set(chunk.subarray(i * dim, (i + 1) * dim), to * dim);
      }
    }
  });
  return { rows: count, dim, data };
}

function readMlp(dir: string, manifest: Manifest, mlp: 'bottom' | 'top', input: number, widths: number[]): Linear[] {
  return layerShapes(input, widths).map((s, i) => ({
    in: s.in,
    out: s.out,
    weight: readTensor(dir, manifest, tensorNames.weight(mlp, i)),
    bias: readTensor(dir, manifest, tensorNames.bias(mlp, i)),
  }));
}

/** The dense half only (both MLPs): what a dense server loads. */
export function loadDense(dir: string, manifest = readManifest(dir)): { bottom: Linear[]; top: Linear[] } {
  assertLittleEndian();
  return {
    bottom: readMlp(dir, manifest, 'bottom', manifest.numDense, manifest.bottomMlp),
    top: readMlp(dir, manifest, 'top', topInputWidth(manifest), manifest.topMlp),
  };
}

/** The whole model: the monolithic reference and the model-wise baseline. */
export function loadModel(dir: string, loading: RowLoading = 'read'): Model {
  const manifest = readManifest(dir);
  const tables = manifest.tables.map((t, i) => readTableRows(dir, manifest, i, 0, t.rows, loading));
  return { config: configOf(manifest), tables, ...loadDense(dir, manifest) };
}
