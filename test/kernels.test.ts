import { test } from 'node:test';
import assert from 'node:assert/strict';
import { embeddingBagNative, embeddingBagTs } from '../src/kernels/embedding-bag.ts';
import { interact } from '../src/kernels/interaction.ts';
import { stampRowsNative, stampRowsTs } from '../src/kernels/stamp-rows.ts';
import { TypeScriptMlp, linearForward } from '../src/kernels/mlp.ts';
import { OnnxMlp } from '../src/kernels/mlp-onnx.ts';
import { Rng } from '../src/util/rng.ts';
import { maxAbsDiff, randomFloats, tempDir } from './helpers.ts';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A sample-major CSR batch over T tables with bag sizes 0..maxBag. */
function randomBags(rows: number, samples: number, T: number, maxBag: number, seed: number) {
  const rng = new Rng(seed);
  const offsets = new Int32Array(samples * T + 1);
  for (let i = 0; i < samples * T; i++) offsets[i + 1] = offsets[i] + rng.below(maxBag + 1);
  const indices = new Int32Array(offsets[samples * T]);
  for (let i = 0; i < indices.length; i++) indices[i] = rng.below(rows);
  return { offsets, indices };
}

/** Straightforward pooling of one bag, in doubles: the definition the kernels must meet. */
function poolBag(table: Float32Array, dim: number, ids: Int32Array, w: Float32Array | null, mean: boolean): number[] {
  const acc = new Array(dim).fill(0);
  ids.forEach((id, k) => {
    for (let j = 0; j < dim; j++) acc[j] += (w ? w[k] : 1) * table[id * dim + j];
  });
  return mean && ids.length ? acc.map((v) => v / ids.length) : acc;
}

const kernels = [['typescript', embeddingBagTs], ...(embeddingBagNative ? [['native', embeddingBagNative] as const] : [])] as const;

for (const [name, kernel] of kernels) {
  test(`embedding-bag (${name}) pools strided bags into strided outputs, sum/mean/weighted`, () => {
    const rows = 300, dim = 24, T = 3, samples = 17;
    const table = randomFloats(rows * dim, 1);
    const { offsets, indices } = randomBags(rows, samples, T, 6, 2);
    const weights = randomFloats(indices.length, 3);
    for (const [mean, w] of [[false, null], [true, null], [false, weights]] as const) {
      for (let t = 0; t < T; t++) {
        const outStride = (T + 1) * dim;
        const out = new Float32Array(samples * outStride).fill(NaN);
        kernel(table, dim, indices, offsets, w, mean, samples, t, T, out, (t + 1) * dim, outStride);
        for (let s = 0; s < samples; s++) {
          const bag = s * T + t;
          const want = poolBag(table, dim, indices.subarray(offsets[bag], offsets[bag + 1]), w?.subarray(offsets[bag], offsets[bag + 1]) ?? null, mean);
          const got = out.subarray(s * outStride + (t + 1) * dim, s * outStride + (t + 2) * dim);
          assert.ok(maxAbsDiff(got, want) < 1e-5, `${name} sample ${s} table ${t} mean=${mean}`);
        }
      }
    }
  });

  test(`embedding-bag (${name}) rejects an id outside the table instead of reading past it`, () => {
    const table = new Float32Array(10 * 4);
    const out = new Float32Array(4);
    assert.throws(() => kernel(table, 4, Int32Array.of(3, 10), Int32Array.of(0, 2), null, false, 1, 0, 1, out, 0, 4), RangeError);
    assert.throws(() => kernel(table, 4, Int32Array.of(-1), Int32Array.of(0, 1), null, false, 1, 0, 1, out, 0, 4), RangeError);
  });
}

test('native and TypeScript embedding-bag agree on a large skewed batch', { skip: !embeddingBagNative && 'native addon not built' }, () => {
  const rows = 50_000, dim = 64;
  const table = randomFloats(rows * dim, 4);
  const { offsets, indices } = randomBags(rows, 256, 1, 40, 5);
  const a = new Float32Array(256 * dim);
  const b = new Float32Array(256 * dim);
  embeddingBagTs(table, dim, indices, offsets, null, false, 256, 0, 1, a, 0, dim);
  embeddingBagNative!(table, dim, indices, offsets, null, false, 256, 0, 1, b, 0, dim);
  assert.ok(maxAbsDiff(a, b) < 1e-5);
});

const stampKernels = [['typescript', stampRowsTs], ...(stampRowsNative ? [['native', stampRowsNative] as const] : [])] as const;

for (const [name, kernel] of stampKernels) {
  test(`stamp-rows (${name}) marks each piece's rows of the (sample, piece) bags and counts the first touches in a window`, () => {
    const rows = 50, T = 3, samples = 9;
    const { offsets, indices } = randomBags(rows, samples, T, 5, 4);
    // Three pieces of 50 rows, stamped at 10.., 60.., 110.. (10 spare bytes in front).
    const pieceBase = Int32Array.of(10, 60, 110);
    const stamp = new Uint8Array(160);
    const want = new Set<number>();
    for (let j = 0; j < samples * T; j++) for (let k = offsets[j]; k < offsets[j + 1]; k++) want.add(pieceBase[j % T] + indices[k]);
    assert.equal(kernel(stamp, pieceBase, 7, indices, offsets, samples * T, T, 0), want.size);
    assert.deepEqual([...stamp].flatMap((v, i) => (v === 7 ? [i] : [])), [...want].sort((a, b) => a - b));
    assert.equal(kernel(stamp, pieceBase, 7, indices, offsets, samples * T, T, 0), 0, 'the same window counts a row once');
    assert.equal(kernel(stamp, pieceBase, 8, indices, offsets, samples * T, T, 0), want.size, 'a new window counts it again');
  });

  test(`stamp-rows (${name}) with a sample shift tracks the middle row of each block, at id >> shift`, () => {
    // Blocks of 4: rows 2, 6, 10 … are tracked, at stamp 0, 1, 2 …
    const ids = Int32Array.of(0, 1, 2, 3, 6, 6, 7, 10, 2);
    const offsets = Int32Array.of(0, 5, 9);
    const stamp = new Uint8Array(8);
    // Bag 0 is piece 0 (stamps from 0), bag 1 piece 1 (from 4).
    assert.equal(kernel(stamp, Int32Array.of(0, 4), 3, ids, offsets, 2, 2, 2), 5, 'piece 0: rows 2, 6; piece 1: rows 6, 10, 2');
    assert.deepEqual([...stamp], [3, 3, 0, 0, 3, 3, 3, 0]);
  });

  test(`stamp-rows (${name}) rejects a row outside the stamp array instead of writing past it`, () => {
    const stamp = new Uint8Array(4);
    assert.throws(() => kernel(stamp, Int32Array.of(1), 1, Int32Array.of(0, 3), Int32Array.of(0, 2), 1, 1, 0), RangeError);
    assert.throws(() => kernel(stamp, Int32Array.of(0), 1, Int32Array.of(-1), Int32Array.of(0, 1), 1, 1, 0), RangeError);
    assert.deepEqual([...stamp], [0, 1, 0, 0], 'rows before the bad one are stamped, nothing past the array');
  });
}

test('dot interaction emits x then the strictly lower Gram triangle in DLRM order', () => {
  // n = 11 (RM1's ten tables) takes the kernel's four-at-once path for rows 4 and on, n = 4 never does.
  for (const [dim, n] of [[3, 4], [5, 11]]) {
    const batch = 2;
    const v = randomFloats(batch * n * dim, 6);
    const width = dim + (n * (n - 1)) / 2;
    const out = new Float32Array(batch * width);
    interact('dot', v, batch, n, dim, out);
    const dot = (s: number, i: number, j: number) => {
      let a = 0;
      for (let k = 0; k < dim; k++) a += v[(s * n + i) * dim + k] * v[(s * n + j) * dim + k];
      return a;
    };
    for (let s = 0; s < batch; s++) {
      const want = [...v.subarray(s * n * dim, s * n * dim + dim)];
      for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) want.push(dot(s, i, j));
      assert.ok(maxAbsDiff(out.subarray(s * width, (s + 1) * width), want) < 1e-6, `dim ${dim}, n ${n}`);
    }
    const cat = new Float32Array(batch * n * dim);
    interact('cat', v, batch, n, dim, cat);
    assert.deepEqual(cat, v);
  }
});

function randomMlp(widths: number[], seed: number) {
  return widths.slice(1).map((out, i) => ({
    in: widths[i],
    out,
    weight: randomFloats(out * widths[i], seed + i, Math.sqrt(6 / (out + widths[i]))),
    bias: randomFloats(out, seed + 100 + i, 0.1),
  }));
}

test('linearForward matches the definition for batch sizes around the 4-sample block', () => {
  const [layer] = randomMlp([7, 5], 10);
  for (const batch of [1, 3, 4, 5, 9]) {
    const x = randomFloats(batch * 7, batch);
    const y = new Float32Array(batch * 5);
    linearForward(x, batch, layer, 'none', y);
    for (let s = 0; s < batch; s++) {
      for (let o = 0; o < 5; o++) {
        let a = layer.bias[o];
        for (let k = 0; k < 7; k++) a += x[s * 7 + k] * layer.weight[o * 7 + k];
        assert.ok(Math.abs(y[s * 5 + o] - a) < 1e-5);
      }
    }
  }
});

test('onnxruntime MLP equals the TypeScript MLP (ReLU hidden, sigmoid last)', async () => {
  const spec = { layers: randomMlp([13, 64, 32, 1], 20), finalActivation: 'sigmoid' as const };
  const ort = await OnnxMlp.create(spec);
  const ts = new TypeScriptMlp(spec);
  try {
    for (const batch of [1, 8, 33]) {
      const x = randomFloats(batch * 13, 30 + batch);
      const got = await ort.run(x, batch);
      const want = ts.runSync(x, batch);
      assert.equal(got.length, batch);
      assert.ok(maxAbsDiff(got, want) < 1e-5);
      assert.ok(got.every((v) => v > 0 && v < 1));
    }
  } finally {
    await ort.close();
  }
});

test("onnxruntime's telemetry stays off: no device id, event store or /tmp log from a process that runs a session", () => {
  const home = tempDir();
  const tmp = tempDir();
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: path.join(home, '.cache'), TMPDIR: tmp };
  // This test process imported mlp-onnx.ts already (and so set the variable): the child must start without it.
  delete env.ORT_DISABLE_TELEMETRY;
  const script = `import { OnnxMlp } from ${JSON.stringify(new URL('../src/kernels/mlp-onnx.ts', import.meta.url).href)};
const mlp = await OnnxMlp.create({ layers: [{ in: 2, out: 1, weight: new Float32Array(2), bias: new Float32Array(1) }], finalActivation: 'sigmoid' });
await mlp.run(new Float32Array(2), 1);
console.log(process.pid, process.env.ORT_DISABLE_TELEMETRY);`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const [pid, setting] = run.stdout.trim().split(' ');
  assert.equal(setting, '1');
  assert.deepEqual(fs.readdirSync(home), [], 'nothing written under HOME (onnxruntime 1.29+ writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime)');
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.startsWith('mat-debug')), []);
  assert.ok(!fs.existsSync(`/tmp/mat-debug-${pid}.log`), `/tmp/mat-debug-${pid}.log was written`);
});
