/** Pooling of the rows of one bag: DLRM's EmbeddingBag modes. */
export type PoolingMode = 'sum' | 'mean';
/** Feature interaction between the bottom-MLP output and the pooled table vectors. */
export type InteractionKind = 'dot' | 'cat';

export interface TableConfig {
  name: string;
  rows: number;
  /** Mean lookups per bag (the pooling factor) this table sees in traffic. */
  poolingFactor: number;
}

/** A DLRM's shapes: everything but the weights. Enough to plan, generate traces or validate requests. */
export interface ModelConfig {
  name: string;
  numDense: number;
  /** Width of every embedding row; equals the bottom MLP's output width (DLRM's requirement). */
  embeddingDim: number;
  poolingMode: PoolingMode;
  interaction: InteractionKind;
  tables: TableConfig[];
  /** Output widths of the bottom MLP's layers; the input width is numDense. */
  bottomMlp: number[];
  /** Output widths of the top MLP's layers; the input width follows from the interaction; the last is 1. */
  topMlp: number[];
}

/** y = act(x · Wᵀ + b), W row-major [out, in] as in PyTorch's nn.Linear. */
export interface Linear {
  in: number;
  out: number;
  weight: Float32Array;
  bias: Float32Array;
}

export interface EmbeddingTable {
  rows: number;
  dim: number;
  /** Row-major [rows, dim]. */
  data: Float32Array;
}

export interface Model {
  config: ModelConfig;
  tables: EmbeddingTable[];
  bottom: Linear[];
  top: Linear[];
}

/** Width of the interaction output, which is the top MLP's input width. */
export function topInputWidth(config: ModelConfig): number {
  const d = config.embeddingDim;
  const vectors = config.tables.length + 1;
  return config.interaction === 'dot' ? d + (vectors * (vectors - 1)) / 2 : d * vectors;
}

/** [in, out] of every layer of an MLP, from the input width and the output widths. */
export function layerShapes(input: number, widths: number[]): { in: number; out: number }[] {
  const shapes: { in: number; out: number }[] = [];
  let prev = input;
  for (const w of widths) {
    shapes.push({ in: prev, out: w });
    prev = w;
  }
  return shapes;
}

export const FLOAT_BYTES = 4;

/** Bytes of all embedding tables. */
export function embeddingBytes(config: ModelConfig): number {
  return config.tables.reduce((s, t) => s + t.rows * config.embeddingDim * FLOAT_BYTES, 0);
}

/** Bytes of both MLPs (weights and biases). */
export function denseBytes(config: ModelConfig): number {
  const layers = [
    ...layerShapes(config.numDense, config.bottomMlp),
    ...layerShapes(topInputWidth(config), config.topMlp),
  ];
  return layers.reduce((s, l) => s + (l.in * l.out + l.out) * FLOAT_BYTES, 0);
}
