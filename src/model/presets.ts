import type { ModelConfig } from './types.ts';
import { badArgument } from '../util/errors.ts';

/**
 * Preset shapes. RM1–RM3 follow ElasticRec (ISCA'24) Table 2: MLP strings in DLRM's
 * notation, where the bottom string starts with the dense input width and the top string
 * lists output widths. criteo-kaggle is facebookresearch/dlrm's Kaggle configuration
 * (bot 13-512-256-64-16, top 512-256-1, dim 16, one lookup per table) with the dataset's
 * 26 categorical cardinalities.
 */
const CRITEO_KAGGLE_ROWS = [
  1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
  5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
];

function uniformTables(count: number, rows: number, poolingFactor: number) {
  return Array.from({ length: count }, (_, i) => ({ name: `t${i}`, rows, poolingFactor }));
}

export const PRESETS: Record<string, () => ModelConfig> = {
  tiny: () => ({
    name: 'tiny',
    numDense: 4,
    embeddingDim: 8,
    poolingMode: 'sum',
    interaction: 'dot',
    tables: [
      { name: 't0', rows: 1000, poolingFactor: 4 },
      { name: 't1', rows: 500, poolingFactor: 2 },
      { name: 't2', rows: 2000, poolingFactor: 8 },
    ],
    bottomMlp: [16, 8],
    topMlp: [16, 1],
  }),
  rm1: () => ({
    name: 'rm1',
    numDense: 256,
    embeddingDim: 32,
    poolingMode: 'sum',
    interaction: 'dot',
    tables: uniformTables(10, 20_000_000, 128),
    bottomMlp: [128, 32],
    topMlp: [256, 64, 1],
  }),
  rm2: () => ({
    name: 'rm2',
    numDense: 256,
    embeddingDim: 32,
    poolingMode: 'sum',
    interaction: 'dot',
    tables: uniformTables(32, 20_000_000, 128),
    bottomMlp: [128, 32],
    topMlp: [512, 128, 1],
  }),
  rm3: () => ({
    name: 'rm3',
    numDense: 2560,
    embeddingDim: 32,
    poolingMode: 'sum',
    interaction: 'dot',
    tables: uniformTables(10, 20_000_000, 32),
    bottomMlp: [512, 32],
    topMlp: [512, 128, 1],
  }),
  'criteo-kaggle': () => ({
    name: 'criteo-kaggle',
    numDense: 13,
    embeddingDim: 16,
    poolingMode: 'sum',
    interaction: 'dot',
    tables: CRITEO_KAGGLE_ROWS.map((rows, i) => ({ name: `c${i + 1}`, rows, poolingFactor: 1 })),
    bottomMlp: [512, 256, 64, 16],
    topMlp: [512, 256, 1],
  }),
};

export const PRESET_NAMES = Object.keys(PRESETS);

/** A preset's shapes, with every table capped at `maxRows` rows when given. */
export function presetConfig(name: string, maxRows?: number): ModelConfig {
  const make = PRESETS[name];
  if (!make) {
    throw badArgument(`unknown preset '${name}'`, `use one of: ${PRESET_NAMES.join(', ')}`);
  }
  const config = make();
  if (maxRows !== undefined) {
    if (!Number.isInteger(maxRows) || maxRows < 1) {
      throw badArgument(`--rows must be a positive integer, got ${maxRows}`);
    }
    for (const t of config.tables) t.rows = Math.min(t.rows, maxRows);
  }
  return config;
}
