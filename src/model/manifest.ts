import type { ModelConfig } from './types.ts';
import { layerShapes, topInputWidth } from './types.ts';
import { modelManifestError } from '../util/errors.ts';

export const MANIFEST_FILE = 'model.json';
export const MANIFEST_FORMAT = 'shardwise-model';
export const MANIFEST_VERSION = 1;
/** A table is one Float32Array; V8 caps typed arrays at 2^32 elements (16 GiB of float32). */
export const MAX_TABLE_ELEMENTS = 2 ** 32;

export interface TensorEntry {
  file: string;
  shape: number[];
  dtype: 'float32';
}

/**
 * model.json: the model's shapes plus one entry per tensor. Tensors are raw little-endian
 * float32 files, row-major, named in `tensors`, so a reader can map or slice them without a
 * parser (a shard server reads only its row range).
 */
export interface Manifest extends ModelConfig {
  format: typeof MANIFEST_FORMAT;
  version: number;
  tensors: Record<string, TensorEntry>;
}

export const tensorNames = {
  table: (t: number) => `emb.${t}`,
  weight: (mlp: 'bottom' | 'top', i: number) => `${mlp}.${i}.weight`,
  bias: (mlp: 'bottom' | 'top', i: number) => `${mlp}.${i}.bias`,
};

/** Every tensor the config implies, with its shape, in a fixed order. */
export function expectedTensors(config: ModelConfig): { name: string; shape: number[] }[] {
  const out: { name: string; shape: number[] }[] = [];
  config.tables.forEach((t, i) => out.push({ name: tensorNames.table(i), shape: [t.rows, config.embeddingDim] }));
  const mlps = [
    ['bottom', layerShapes(config.numDense, config.bottomMlp)],
    ['top', layerShapes(topInputWidth(config), config.topMlp)],
  ] as const;
  for (const [mlp, layers] of mlps) {
    layers.forEach((l, i) => {
      out.push({ name: tensorNames.weight(mlp, i), shape: [l.out, l.in] });
      out.push({ name: tensorNames.bias(mlp, i), shape: [l.out] });
    });
  }
  return out;
}

export function buildManifest(config: ModelConfig): Manifest {
  const tensors: Record<string, TensorEntry> = {};
  for (const t of expectedTensors(config)) tensors[t.name] = { file: `${t.name}.f32`, shape: t.shape, dtype: 'float32' };
  return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, ...config, tensors };
}

const isPositiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

/** Throws with the file name and the field when the config's shapes are inconsistent. */
export function validateConfig(config: ModelConfig, file: string): void {
  const fail = (msg: string, hint?: string) => {
    throw modelManifestError(file, msg, hint);
  };
  if (typeof config.name !== 'string' || config.name === '') fail("'name' must be a non-empty string");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(config.name)) {
    fail(`'name' ${JSON.stringify(config.name)} must use letters, digits, '.', '_' and '-' (it appears in URLs)`);
  }
  if (!isPositiveInt(config.numDense)) fail(`'numDense' must be a positive integer, got ${config.numDense}`);
  if (!isPositiveInt(config.embeddingDim)) fail(`'embeddingDim' must be a positive integer, got ${config.embeddingDim}`);
  if (config.poolingMode !== 'sum' && config.poolingMode !== 'mean') {
    fail(`'poolingMode' must be 'sum' or 'mean', got ${JSON.stringify(config.poolingMode)}`);
  }
  if (config.interaction !== 'dot' && config.interaction !== 'cat') {
    fail(`'interaction' must be 'dot' or 'cat', got ${JSON.stringify(config.interaction)}`);
  }
  if (!Array.isArray(config.tables) || config.tables.length === 0) fail("'tables' must be a non-empty array");
  config.tables.forEach((t, i) => {
    if (!isPositiveInt(t.rows)) fail(`tables[${i}].rows must be a positive integer, got ${t.rows}`);
    if (!(t.poolingFactor > 0)) fail(`tables[${i}].poolingFactor must be > 0, got ${t.poolingFactor}`);
    if (t.rows * config.embeddingDim > MAX_TABLE_ELEMENTS) {
      fail(
        `tables[${i}] has ${t.rows} rows × dim ${config.embeddingDim}, over the ${MAX_TABLE_ELEMENTS} floats one process can hold per table`,
        'split the table into row shards with a plan; a shard server loads only its rows',
      );
    }
  });
  for (const key of ['bottomMlp', 'topMlp'] as const) {
    const widths = config[key];
    if (!Array.isArray(widths) || widths.length === 0 || !widths.every(isPositiveInt)) {
      fail(`'${key}' must be a non-empty array of positive integers, got ${JSON.stringify(widths)}`);
    }
  }
  if (config.bottomMlp[config.bottomMlp.length - 1] !== config.embeddingDim) {
    fail(
      `the bottom MLP ends at width ${config.bottomMlp[config.bottomMlp.length - 1]} but embeddingDim is ${config.embeddingDim}`,
      'DLRM needs the bottom MLP output to be as wide as an embedding row',
    );
  }
  if (config.topMlp[config.topMlp.length - 1] !== 1) {
    fail(`the top MLP must end at width 1 (one score), got ${config.topMlp[config.topMlp.length - 1]}`);
  }
}

/** Parses and checks model.json text: the format tag, the version, the shapes and the tensor table. */
export function parseManifest(text: string, file: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw modelManifestError(file, `not valid JSON (${(e as Error).message})`);
  }
  const m = raw as Manifest;
  if (typeof m !== 'object' || m === null || m.format !== MANIFEST_FORMAT) {
    throw modelManifestError(file, `'format' must be '${MANIFEST_FORMAT}'`, 'is this a shardwise model directory?');
  }
  if (m.version !== MANIFEST_VERSION) {
    throw modelManifestError(file, `version ${m.version} is not supported (this build reads version ${MANIFEST_VERSION})`);
  }
  validateConfig(m, file);
  if (typeof m.tensors !== 'object' || m.tensors === null) throw modelManifestError(file, "'tensors' is missing");
  for (const t of expectedTensors(m)) {
    const entry = m.tensors[t.name];
    if (!entry) throw modelManifestError(file, `tensor '${t.name}' is not listed in 'tensors'`);
    if (entry.dtype !== 'float32') throw modelManifestError(file, `tensor '${t.name}' has dtype ${entry.dtype}; only float32 is supported`);
    if (typeof entry.file !== 'string' || entry.file.includes('..') || entry.file.startsWith('/')) {
      throw modelManifestError(file, `tensor '${t.name}' has file ${JSON.stringify(entry.file)}; it must be a plain name inside the model directory`);
    }
    if (JSON.stringify(entry.shape) !== JSON.stringify(t.shape)) {
      throw modelManifestError(file, `tensor '${t.name}' has shape ${JSON.stringify(entry.shape)}, expected ${JSON.stringify(t.shape)} from the model's shapes`);
    }
  }
  return m;
}

/** The config part of a manifest (drops the tensor table and format tags). */
export function configOf(m: Manifest): ModelConfig {
  const { name, numDense, embeddingDim, poolingMode, interaction, tables, bottomMlp, topMlp } = m;
  return { name, numDense, embeddingDim, poolingMode, interaction, tables, bottomMlp, topMlp };
}
