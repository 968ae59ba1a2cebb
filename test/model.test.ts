import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateModel } from '../src/model/generate.ts';
import { presetConfig, PRESET_NAMES } from '../src/model/presets.ts';
import { loadModel, readManifest, readTableRows } from '../src/model/store.ts';
import { validateConfig } from '../src/model/manifest.ts';
import { embeddingBytes, topInputWidth } from '../src/model/types.ts';
import { ShardwiseError } from '../src/util/errors.ts';
import { tempDir } from './helpers.ts';

test('every preset has consistent shapes; RM1–RM3 follow ElasticRec', () => {
  for (const name of PRESET_NAMES) validateConfig(presetConfig(name), name);
  const rm1 = presetConfig('rm1');
  assert.equal(rm1.tables.length, 10);
  assert.equal(rm1.tables[0].rows, 20_000_000);
  assert.equal(rm1.tables[0].poolingFactor, 128);
  assert.deepEqual([rm1.numDense, ...rm1.bottomMlp], [256, 128, 32]);
  assert.deepEqual(rm1.topMlp, [256, 64, 1]);
  assert.equal(presetConfig('rm2').tables.length, 32);
  assert.equal(presetConfig('rm3').numDense, 2560);
  assert.equal(presetConfig('rm3').tables[0].poolingFactor, 32);
  const kaggle = presetConfig('criteo-kaggle');
  assert.equal(kaggle.tables.length, 26);
  assert.equal(topInputWidth(kaggle), 16 + (27 * 26) / 2);
  assert.equal(presetConfig('rm1', 1000).tables[0].rows, 1000);
  assert.equal(presetConfig('criteo-kaggle', 1000).tables[8].rows, 3, '--rows caps, never grows, a table');
  assert.equal(embeddingBytes(presetConfig('rm1')), 10 * 20e6 * 32 * 4);
});

test('generation is deterministic per seed and the model loads back', () => {
  const dir = tempDir();
  const config = presetConfig('tiny');
  generateModel(path.join(dir, 'a'), config, 7);
  generateModel(path.join(dir, 'b'), config, 7);
  generateModel(path.join(dir, 'c'), config, 8);
  const files = fs.readdirSync(path.join(dir, 'a'));
  for (const f of files) assert.deepEqual(fs.readFileSync(path.join(dir, 'a', f)), fs.readFileSync(path.join(dir, 'b', f)), f);
  assert.notDeepEqual(fs.readFileSync(path.join(dir, 'a', 'emb.0.f32')), fs.readFileSync(path.join(dir, 'c', 'emb.0.f32')));

  const model = loadModel(path.join(dir, 'a'));
  assert.equal(model.tables.length, 3);
  assert.equal(model.tables[2].data.length, 2000 * 8);
  assert.equal(model.bottom[0].in, 4);
  assert.equal(model.top[0].in, topInputWidth(config));
  // A row range reads exactly those rows.
  const slice = readTableRows(path.join(dir, 'a'), readManifest(path.join(dir, 'a')), 2, 100, 50);
  assert.deepEqual(slice.data, model.tables[2].data.subarray(100 * 8, 150 * 8));
});

function expectError(fn: () => unknown, code: string, ...fragments: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ShardwiseError, `expected a ShardwiseError, got ${e}`);
    assert.equal(e.code, code);
    for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

test('broken model directories fail with the file, the tensor and what was expected', () => {
  const dir = tempDir();
  generateModel(dir, presetConfig('tiny'), 1);
  const manifestFile = path.join(dir, 'model.json');
  const good = fs.readFileSync(manifestFile, 'utf8');

  // Truncated tensor file.
  const emb = path.join(dir, 'emb.1.f32');
  const bytes = fs.readFileSync(emb);
  fs.writeFileSync(emb, bytes.subarray(0, 100));
  expectError(() => loadModel(dir), 'SW_MODEL_TENSOR', 'emb.1.f32', "'emb.1'", 'has 100 bytes, expected 16000');
  // Missing tensor file.
  fs.rmSync(emb);
  expectError(() => loadModel(dir), 'SW_MODEL_TENSOR', "'emb.1'", 'cannot be opened');
  fs.writeFileSync(emb, bytes);

  // Manifest shape disagrees with the config.
  const m = JSON.parse(good);
  m.tensors['top.0.weight'].shape = [16, 99];
  fs.writeFileSync(manifestFile, JSON.stringify(m));
  expectError(() => loadModel(dir), 'SW_MODEL_MANIFEST', 'model.json', "'top.0.weight'", '[16,99]', '[16,14]');
  // Inconsistent shapes.
  fs.writeFileSync(manifestFile, JSON.stringify({ ...JSON.parse(good), embeddingDim: 7 }));
  expectError(() => loadModel(dir), 'SW_MODEL_MANIFEST', 'bottom MLP ends at width 8 but embeddingDim is 7');
  // Not JSON, wrong format, missing.
  fs.writeFileSync(manifestFile, '{oops');
  expectError(() => loadModel(dir), 'SW_MODEL_MANIFEST', 'not valid JSON');
  fs.writeFileSync(manifestFile, '{"format":"other"}');
  expectError(() => loadModel(dir), 'SW_MODEL_MANIFEST', "'format' must be 'shardwise-model'");
  fs.rmSync(manifestFile);
  expectError(() => loadModel(dir), 'SW_MODEL_MANIFEST', 'not found');
  // A tensor entry pointing outside the directory.
  fs.writeFileSync(manifestFile, good.replace('"emb.0.f32"', '"../emb.0.f32"'));
  expectError(() => loadModel(dir), 'SW_MODEL_MANIFEST', 'plain name inside the model directory');
});
