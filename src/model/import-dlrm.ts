import type { InteractionKind, ModelConfig, PoolingMode } from './types.ts';
import { topInputWidth } from './types.ts';
import { tensorNames, type Manifest } from './manifest.ts';
import { writeModel } from './store.ts';
import { readSafetensors, type SafetensorsFile } from './safetensors.ts';
import { importError } from '../util/errors.ts';

export interface ImportOptions {
  name: string;
  interaction?: InteractionKind;
  pooling?: PoolingMode;
  /** Pooling factor recorded for every table (the checkpoint does not say). */
  poolingFactor?: number;
}

const KEY = /^(emb_l|bot_l|top_l)\.(\d+)\.(weight|bias)$/;

interface LinearKeys {
  index: number;
  weight: string;
  bias: string;
  out: number;
  in: number;
}

/** Linear layers of one nn.Sequential, ordered by their index in it (ReLUs hold the odd slots). */
function collectMlp(st: SafetensorsFile, prefix: 'bot_l' | 'top_l'): LinearKeys[] {
  const byIndex = new Map<number, { weight?: string; bias?: string }>();
  for (const key of st.entries.keys()) {
    const m = KEY.exec(key);
    if (!m || m[1] !== prefix) continue;
    const slot = byIndex.get(+m[2]) ?? {};
    slot[m[3] as 'weight' | 'bias'] = key;
    byIndex.set(+m[2], slot);
  }
  if (byIndex.size === 0) throw importError(st.file, `has no '${prefix}.<i>.weight' tensors`, 'expected the state_dict() of a facebookresearch/dlrm DLRM_Net');
  return [...byIndex.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([index, keys]) => {
      if (!keys.weight || !keys.bias) {
        throw importError(st.file, `layer '${prefix}.${index}' needs both weight and bias, found only ${keys.weight ?? keys.bias}`);
      }
      const shape = st.entries.get(keys.weight)!.shape;
      const biasShape = st.entries.get(keys.bias)!.shape;
      if (shape.length !== 2) throw importError(st.file, `tensor '${keys.weight}' has shape ${JSON.stringify(shape)}, expected [out, in]`);
      if (biasShape.length !== 1 || biasShape[0] !== shape[0]) {
        throw importError(st.file, `tensor '${keys.bias}' has shape ${JSON.stringify(biasShape)}, expected [${shape[0]}] to match '${keys.weight}'`);
      }
      return { index, weight: keys.weight, bias: keys.bias, out: shape[0], in: shape[1] };
    });
}

function checkChain(st: SafetensorsFile, layers: LinearKeys[]): void {
  for (let i = 1; i < layers.length; i++) {
    if (layers[i].in !== layers[i - 1].out) {
      throw importError(st.file, `tensor '${layers[i].weight}' takes width ${layers[i].in} but '${layers[i - 1].weight}' outputs ${layers[i - 1].out}`);
    }
  }
}

/** Reads a DLRM_Net state_dict and returns the shapes it implies, checking every tensor. */
export function dlrmConfigFromSafetensors(st: SafetensorsFile, opts: ImportOptions): ModelConfig {
  for (const key of st.entries.keys()) {
    if (!KEY.test(key)) {
      throw importError(st.file, `unexpected tensor '${key}'`, "a DLRM_Net state_dict holds only 'emb_l.<t>.weight', 'bot_l.<i>.weight|bias' and 'top_l.<i>.weight|bias'");
    }
  }
  const tableKeys = [...st.entries.keys()].filter((k) => k.startsWith('emb_l.')).sort((a, b) => +a.split('.')[1] - +b.split('.')[1]);
  if (tableKeys.length === 0) throw importError(st.file, "has no 'emb_l.<t>.weight' tensors");
  tableKeys.forEach((k, i) => {
    if (k !== `emb_l.${i}.weight`) throw importError(st.file, `embedding tables must be numbered 0..${tableKeys.length - 1}; found '${k}' at position ${i}`);
  });
  const tableShapes = tableKeys.map((k) => st.entries.get(k)!.shape);
  const dim = tableShapes[0][1];
  tableShapes.forEach((s, i) => {
    if (s.length !== 2 || s[1] !== dim) {
      throw importError(st.file, `tensor 'emb_l.${i}.weight' has shape ${JSON.stringify(s)}, expected [rows, ${dim}] (all tables share one dim)`);
    }
  });
  const bottom = collectMlp(st, 'bot_l');
  const top = collectMlp(st, 'top_l');
  checkChain(st, bottom);
  checkChain(st, top);
  if (bottom[bottom.length - 1].out !== dim) {
    throw importError(st.file, `the bottom MLP outputs ${bottom[bottom.length - 1].out} but the tables have dim ${dim}`);
  }
  const base = {
    name: opts.name,
    numDense: bottom[0].in,
    embeddingDim: dim,
    poolingMode: opts.pooling ?? 'sum',
    tables: tableShapes.map((s, i) => ({ name: `t${i}`, rows: s[0], poolingFactor: opts.poolingFactor ?? 1 })),
    bottomMlp: bottom.map((l) => l.out),
    topMlp: top.map((l) => l.out),
  };
  const topIn = top[0].in;
  const candidates: InteractionKind[] = opts.interaction ? [opts.interaction] : ['dot', 'cat'];
  const interaction = candidates.find((k) => topInputWidth({ ...base, interaction: k }) === topIn);
  if (!interaction) {
    const widths = (['dot', 'cat'] as const).map((k) => `${k}: ${topInputWidth({ ...base, interaction: k })}`).join(', ');
    throw importError(
      st.file,
      `the top MLP takes width ${topIn}, which matches no supported interaction${opts.interaction ? ` '${opts.interaction}'` : ''} (${widths})`,
      'dot interaction with self-interaction (arch_interaction_itself) is not supported',
    );
  }
  if (top[top.length - 1].out !== 1) throw importError(st.file, `the top MLP outputs ${top[top.length - 1].out} values; expected 1 score`);
  return { ...base, interaction };
}

/** Imports a safetensors DLRM_Net checkpoint into a shardwise model directory. */
export function importDlrmSafetensors(file: string, dir: string, opts: ImportOptions): Manifest {
  const st = readSafetensors(file);
  const config = dlrmConfigFromSafetensors(st, opts);
  const source = new Map<string, string>();
  config.tables.forEach((_, i) => source.set(tensorNames.table(i), `emb_l.${i}.weight`));
  for (const [mlp, prefix] of [['bottom', 'bot_l'], ['top', 'top_l']] as const) {
    collectMlp(st, prefix).forEach((l, i) => {
      source.set(tensorNames.weight(mlp, i), l.weight);
      source.set(tensorNames.bias(mlp, i), l.bias);
    });
  }
  let current: { name: string; data: Float32Array } | undefined;
  return writeModel(dir, config, (name, out, offset) => {
    if (current?.name !== name) current = { name, data: st.float32(source.get(name)!) };
    out.set(current.data.subarray(offset, offset + out.length));
  });
}
