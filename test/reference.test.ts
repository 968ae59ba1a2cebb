import { test } from 'node:test';
import assert from 'node:assert/strict';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import { loadModel } from '../src/model/store.ts';
import { validateBatch, type Batch } from '../src/model/batch.ts';
import { ReferenceModel } from '../src/reference/reference-model.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { decodeRequest, encodeRequest, encodeResponse, decodeScores } from '../src/protocol/oip.ts';
import { ShardwiseError } from '../src/util/errors.ts';
import { maxAbsDiff, tempDir } from './helpers.ts';

const tiny = presetConfig('tiny');
const sample = (): Batch => new QueryGenerator(tiny, { queries: 1, batch: 3, access: { kind: 'uniform' }, pooling: 'fixed', seed: 1 }).next();

function rejects(batch: Batch, ...fragments: string[]) {
  assert.throws(
    () => validateBatch(tiny, batch),
    (e: unknown) => {
      assert.ok(e instanceof ShardwiseError && e.code === 'SW_BAD_REQUEST', String(e));
      for (const f of fragments) assert.ok(e.message.includes(f), `${e.message} lacks ${f}`);
      return true;
    },
  );
}

test('invalid batches are rejected naming the tensor and the position', () => {
  const b = sample();
  validateBatch(tiny, b);
  rejects({ ...b, dense: b.dense.subarray(1) }, "'dense'", 'expected [3, 4]');
  const nan = b.dense.slice();
  nan[5] = NaN;
  rejects({ ...b, dense: nan }, "'dense'", 'non-finite', '[1, 1]');
  const bad = b.indices.slice();
  bad[4] = 500;
  rejects({ ...b, indices: bad }, "'indices'", 'id 500 at position 4', 'table 1', 'rows 0..499');
  const dec = b.offsets.slice();
  dec[2] = dec[3] + 1;
  rejects({ ...b, offsets: dec }, "'offsets'", 'decreases at position');
  rejects({ ...b, offsets: b.offsets.subarray(1) }, "'offsets'", 'expected batch·tables + 1');
  rejects({ ...b, indices: b.indices.subarray(1) }, "last offset must equal the number of indices");
  rejects({ ...b, weights: new Float32Array(2) }, "'per_sample_weights'", 'one per index');
});

test('OIP JSON decoding checks names, datatypes and shapes, and round-trips', () => {
  const b = sample();
  const req = encodeRequest(b, tiny.numDense, 'q1');
  assert.deepEqual(decodeRequest(JSON.parse(JSON.stringify(req)), tiny), b);
  const withInput = (name: string, patch: object) => ({ inputs: req.inputs.map((t) => (t.name === name ? { ...t, ...patch } : t)) });
  assert.throws(() => decodeRequest(withInput('dense', { datatype: 'BYTES' }), tiny), /'dense' has datatype "BYTES", expected FP32/);
  assert.throws(() => decodeRequest(withInput('dense', { shape: [4, 4] }), tiny), /'dense' has 12 values but shape \[4,4\] holds 16/);
  assert.throws(() => decodeRequest(withInput('dense', { shape: [3, 5] }), tiny), /'dense' has shape \[3,5\], expected \[B, 4\]/);
  assert.throws(() => decodeRequest(withInput('indices', { data: req.inputs[1].data!.map((v, i) => (i === 2 ? 1.5 : v)) }), tiny), /'indices' has 1.5 at position 2/);
  assert.throws(() => decodeRequest({ inputs: req.inputs.slice(0, 2) }, tiny), /'offsets' is missing/);
  assert.throws(() => decodeRequest({ inputs: [...req.inputs, { name: 'extra', datatype: 'FP32', shape: [0], data: [] }] }, tiny), /unknown input tensor 'extra'/);
  assert.throws(() => decodeRequest('nope', tiny), /'inputs' array/);
  const nested = withInput('dense', { data: [[...b.dense.subarray(0, 4)], [...b.dense.subarray(4, 8)], [...b.dense.subarray(8)]] });
  assert.deepEqual(decodeRequest(nested, tiny).dense, b.dense);
  const scores = Float32Array.of(0.25, 0.5);
  assert.deepEqual(decodeScores(JSON.parse(JSON.stringify(encodeResponse('tiny', scores)))), scores);
});

test('reference scores are in (0,1), deterministic, independent of batching, and use the tables', async () => {
  const dir = tempDir();
  generateModel(dir, tiny, 3);
  const model = loadModel(dir);
  const ref = await ReferenceModel.create(model);
  const ts = await ReferenceModel.create(model, 'typescript');
  try {
    const b = sample();
    const scores = await ref.predict(b);
    assert.equal(scores.length, 3);
    assert.ok(scores.every((s) => s > 0 && s < 1));
    assert.ok(maxAbsDiff(scores, await ts.predict(b)) < 1e-5, 'onnxruntime and TypeScript MLPs agree');
    // Sample by sample gives the same scores as the batch.
    const T = tiny.tables.length;
    for (let s = 0; s < 3; s++) {
      const o = b.offsets.subarray(s * T, (s + 1) * T + 1);
      const one: Batch = {
        size: 1,
        dense: b.dense.subarray(s * 4, (s + 1) * 4),
        indices: b.indices.subarray(o[0], o[T]),
        offsets: Int32Array.from(o, (v) => v - o[0]),
        weights: null,
      };
      assert.ok(Math.abs((await ref.predict(one))[0] - scores[s]) < 1e-6);
    }
    // Another row changes the score: the tables are really read.
    const moved = b.indices.slice();
    moved[0] = (moved[0] + 1) % 1000;
    const changed = await ref.predict({ ...b, indices: moved });
    assert.ok(Math.abs(changed[0] - scores[0]) > 1e-6);
  } finally {
    await ref.close();
    await ts.close();
  }
});
