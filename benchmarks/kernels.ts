/**
 * npm run bench:kernels — embedding-bag and MLP throughput of every kernel shardwise has,
 * against PyTorch CPU (Debian python3-torch) on the same shapes, one thread each, in one run.
 * Ratios > 1 mean shardwise is faster. Set PYTHON to another interpreter with torch if needed.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { embeddingBagNative, embeddingBagTs, type EmbeddingBagKernel } from '../src/kernels/embedding-bag.ts';
import { bucketizeNative, bucketizeTs, type BucketizeKernels } from '../src/kernels/bucketize.ts';
import { Bucketizer, PREFETCH_IDS } from '../src/serving/bucketize.ts';
import { stampRowsNative, stampRowsTs, type StampRowsKernel } from '../src/kernels/stamp-rows.ts';
import { UtilityMeter } from '../src/serving/utility-meter.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { presetConfig } from '../src/model/presets.ts';
import { TypeScriptMlp, type MlpSpec } from '../src/kernels/mlp.ts';
import { OnnxMlp } from '../src/kernels/mlp-onnx.ts';
import { Rng } from '../src/util/rng.ts';
import { allocateTable } from '../src/util/memory.ts';
import { renderTable } from '../src/util/format.ts';

const quick = process.argv.includes('--quick');
const ROWS = quick ? 100_000 : 1_000_000;
const VARIANTS = 64;

interface EmbCase { rows: number; dim: number; pooling: number; batch: number; iters: number; variants: number }
interface MlpCase { widths: number[]; batch: number; iters: number }

const embCases: EmbCase[] = [];
for (const dim of [64, 128]) {
  for (const pooling of [20, 128]) {
    for (const batch of [1, 32, 256]) {
      const lookups = pooling * batch;
      embCases.push({ rows: ROWS, dim, pooling, batch, iters: Math.max(20, Math.min(20_000, Math.round((quick ? 2e5 : 2e6) / lookups))), variants: VARIANTS });
    }
  }
}
const mlpCases: MlpCase[] = [];
for (const widths of [[13, 512, 256, 64], [256, 128, 32]]) {
  for (const batch of [1, 32, 256]) mlpCases.push({ widths, batch, iters: Math.max(20, Math.round((quick ? 2000 : 20_000) / batch)) });
}

/** Best of 5 rounds of `iters` calls, in ms per call, after a warm-up. */
async function bestMs(fn: () => unknown, iters: number): Promise<number> {
  for (let i = 0; i < Math.max(3, iters / 10); i++) await fn();
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    for (let i = 0; i < iters; i++) await fn();
    best = Math.min(best, (performance.now() - t) / iters);
  }
  return best;
}

function runTorch(): { torch: string; embedding: (EmbCase & { ms: number })[]; mlp: (MlpCase & { ms: number })[] } | null {
  const python = process.env.PYTHON ?? '/usr/bin/python3';
  const r = spawnSync(python, [path.join(import.meta.dirname, 'torch_kernels.py'), JSON.stringify({ embedding: embCases, mlp: mlpCases })], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) {
    console.error(`PyTorch peer unavailable (${python}): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
    console.error('install it with: apt-get install python3-torch libopenblas0-pthread');
    return null;
  }
  return JSON.parse(r.stdout);
}

async function benchEmbedding(kernel: EmbeddingBagKernel, c: EmbCase, table: Float32Array): Promise<number> {
  const rng = new Rng(c.dim * 1000 + c.pooling + c.batch);
  const variants = Array.from({ length: c.variants }, () => {
    const indices = new Int32Array(c.batch * c.pooling);
    for (let i = 0; i < indices.length; i++) indices[i] = rng.below(c.rows);
    return indices;
  });
  const offsets = Int32Array.from({ length: c.batch + 1 }, (_, i) => i * c.pooling);
  const out = new Float32Array(c.batch * c.dim);
  let v = 0;
  return bestMs(() => kernel(table, c.dim, variants[v++ % variants.length], offsets, null, false, c.batch, 0, 1, out, 0, c.dim), c.iters);
}

function mlpSpec(widths: number[]): MlpSpec {
  const rng = new Rng(widths.length);
  const layers = widths.slice(1).map((out, i) => {
    const weight = new Float32Array(out * widths[i]);
    rng.fillUniform(weight, Math.sqrt(6 / (out + widths[i])));
    const bias = new Float32Array(out);
    rng.fillUniform(bias, 0.1);
    return { in: widths[i], out, weight, bias };
  });
  return { layers, finalActivation: 'relu' };
}

/**
 * The router's bucketization of RM1-shaped batches (10 tables in a random hotness order,
 * uniform random ids, pooling 128, a row-wise 4-shard plan, a 2% cache): ms per batch for the
 * native passes with and without prefetching the permutation reads, and the TypeScript passes.
 * Tables of 100k rows keep the permutations in cache; 20M rows (the RM1 size, 800 MB of
 * permutations) do not.
 */
async function benchBucketize(): Promise<(string | number)[][]> {
  const rows: (string | number)[][] = [];
  for (const tableRows of quick ? [100_000, 2_000_000] : [100_000, 20_000_000]) {
    const config = presetConfig('rm1', tableRows);
    const T = config.tables.length;
    const cacheRows = Math.round(tableRows * 0.02);
    const plan = rowWisePlan(config, { shards: 4, replicas: 1, cacheRows, dense: 'router', denseReplicas: 1 });
    const rng = new Rng(11);
    const order = config.tables.map((t) => rng.permutation(t.rows));
    for (const batch of [8, 256]) {
      const pooling = 128;
      const batches = Array.from({ length: 16 }, () => ({
        size: batch,
        dense: new Float32Array(0),
        indices: Int32Array.from({ length: batch * T * pooling }, () => rng.below(tableRows)),
        offsets: Int32Array.from({ length: batch * T + 1 }, (_, i) => i * pooling),
        weights: null,
      }));
      const run = (kernels: BucketizeKernels, prefetchIds: number) => {
        const b = new Bucketizer(T, plan.shards, cacheRows, order, kernels, prefetchIds);
        let i = 0;
        return bestMs(() => b.split(batches[i++ % batches.length]), Math.max(20, Math.round(2e6 / (batch * T * pooling))));
      };
      const tsMs = await run(bucketizeTs, 0);
      const plainMs = bucketizeNative ? await run(bucketizeNative, 0) : undefined;
      const nativeMs = bucketizeNative ? await run(bucketizeNative, PREFETCH_IDS) : undefined;
      const ids = batch * T * pooling;
      const perId = (ms: number | undefined) => (ms === undefined ? 'n/a' : ((1e6 * ms) / ids).toFixed(1));
      rows.push([
        tableRows.toLocaleString(), batch, ids, nativeMs?.toFixed(4) ?? 'n/a', perId(nativeMs), perId(plainMs), perId(tsMs),
        plainMs && nativeMs ? `${(plainMs / nativeMs).toFixed(2)}×` : 'n/a', nativeMs ? `${(tsMs / nativeMs).toFixed(2)}×` : 'n/a',
      ]);
    }
  }
  return rows;
}

/**
 * A shard's memory-utility stamping (UtilityMeter.record): one call per request over every
 * piece's bags, every row tracked and, as the meter does for a shard this size, one in 2^s.
 * Shaped like bench:cpu's hot shard: 10 pieces of 25k rows, batch 8, ~94 lookups per bag.
 */
async function benchStampRows(): Promise<(string | number)[][]> {
  const P = 10, pieceRows = 25_000, batch = 8, pooling = 94;
  const rng = new Rng(13);
  const requests = Array.from({ length: 16 }, () => ({
    ids: Int32Array.from({ length: batch * P * pooling }, () => rng.below(pieceRows)),
    offsets: Int32Array.from({ length: batch * P + 1 }, (_, i) => i * pooling),
  }));
  const run = (kernel: StampRowsKernel, shift: number) => {
    const pieceBase = Int32Array.from({ length: P }, (_, p) => p * Math.ceil(pieceRows / 2 ** shift));
    const stamp = new Uint8Array(P * Math.ceil(pieceRows / 2 ** shift));
    let i = 0;
    let window = 1;
    return bestMs(() => {
      const r = requests[i++ % requests.length];
      window = (window % 255) + 1;
      kernel(stamp, pieceBase, window, r.ids, r.offsets, batch * P, P, shift);
    }, 500);
  };
  const ids = batch * P * pooling;
  const rows: (string | number)[][] = [];
  const meterShift = new UtilityMeter(Array(P).fill(pieceRows), 1, () => {}).sampleShift;
  for (const shift of [0, meterShift]) {
    const tsMs = await run(stampRowsTs, shift);
    const nativeMs = stampRowsNative ? await run(stampRowsNative, shift) : undefined;
    rows.push([`1 in ${2 ** shift}`, ids, nativeMs?.toFixed(4) ?? 'n/a', nativeMs ? ((1e6 * nativeMs) / ids).toFixed(2) : 'n/a', ((1e6 * tsMs) / ids).toFixed(2), nativeMs ? `${(tsMs / nativeMs).toFixed(2)}×` : 'n/a']);
  }
  return rows;
}

const ratio = (peer: number | undefined, ours: number) => (peer === undefined ? 'n/a' : `${(peer / ours).toFixed(2)}×`);

async function main() {
  console.error(`bench:kernels: ${embCases.length} embedding-bag and ${mlpCases.length} MLP shapes, table ${ROWS.toLocaleString()} rows, one thread each`);
  console.error('running the PyTorch peer…');
  const torch = runTorch();

  console.error('running shardwise kernels…');
  const embRows: (string | number)[][] = [];
  const tables = new Map<number, Float32Array>();
  for (const c of embCases) {
    let table = tables.get(c.dim);
    if (!table) {
      table = process.env.SHARDWISE_HUGE_PAGES === '0' ? new Float32Array(c.rows * c.dim) : allocateTable(c.rows * c.dim);
      new Rng(c.dim).fillUniform(table, 0.1);
      tables.set(c.dim, table);
    }
    const tsMs = await benchEmbedding(embeddingBagTs, c, table);
    const nativeMs = embeddingBagNative ? await benchEmbedding(embeddingBagNative, c, table) : undefined;
    const peer = torch?.embedding.find((e) => e.dim === c.dim && e.pooling === c.pooling && e.batch === c.batch)?.ms;
    const best = nativeMs ?? tsMs;
    const gbps = (c.batch * c.pooling * c.dim * 4) / (best * 1e-3) / 1e9;
    embRows.push([
      `${c.rows / 1e6}M×${c.dim}`, c.pooling, c.batch,
      peer?.toFixed(4) ?? 'n/a', nativeMs?.toFixed(4) ?? 'n/a', tsMs.toFixed(4), gbps.toFixed(2),
      ratio(peer, best), ratio(peer, tsMs),
    ]);
  }
  tables.clear();

  const mlpRows: (string | number)[][] = [];
  for (const c of mlpCases) {
    const spec = mlpSpec(c.widths);
    const x = new Float32Array(c.batch * c.widths[0]);
    new Rng(7).fillUniform(x, 1);
    const ort = await OnnxMlp.create(spec);
    const ortMs = await bestMs(() => ort.run(x, c.batch), c.iters);
    await ort.close();
    const ts = new TypeScriptMlp(spec);
    const tsMs = await bestMs(() => ts.runSync(x, c.batch), Math.max(5, Math.round(c.iters / 20)));
    const peer = torch?.mlp.find((m) => m.widths.join() === c.widths.join() && m.batch === c.batch)?.ms;
    const flops = 2 * c.batch * spec.layers.reduce((s, l) => s + l.in * l.out, 0);
    mlpRows.push([c.widths.join('-'), c.batch, peer?.toFixed(4) ?? 'n/a', ortMs.toFixed(4), tsMs.toFixed(4), (flops / (ortMs * 1e-3) / 1e9).toFixed(1), ratio(peer, ortMs), ratio(peer, tsMs)]);
  }

  const bucketRows = await benchBucketize();
  const stampRows = await benchStampRows();

  console.log(`\nEmbedding-bag (sum pooling, uniform random ids), ms per call${torch ? `; PyTorch ${torch.torch}` : ''}`);
  console.log(renderTable(['table', 'pooling', 'batch', 'torch ms', 'native ms', 'ts ms', 'native GB/s', 'native vs torch', 'ts vs torch'], embRows));
  console.log('\nMLP (Linear+ReLU per layer), ms per call');
  console.log(renderTable(['mlp', 'batch', 'torch ms', 'onnxruntime ms', 'ts ms', 'ort GFLOP/s', 'ort vs torch', 'ts vs torch'], mlpRows));
  console.log(`\nRouter bucketization (RM1 shape: 10 tables in hotness order, pooling 128, row-wise 4 shards, 2% cache; native prefetches ${PREFETCH_IDS} ids ahead)`);
  console.log(renderTable(['rows/table', 'batch', 'ids', 'native ms', 'native ns/id', 'no-prefetch ns/id', 'ts ns/id', 'prefetch gain', 'native vs ts'], bucketRows));
  console.log("\nShard utility stamping (a hot shard's request: 10 pieces of 25k rows, batch 8, 94 lookups per bag)");
  console.log(renderTable(['rows tracked', 'lookups', 'native ms', 'native ns/lookup', 'ts ns/lookup', 'native vs ts'], stampRows));
}

await main();
