import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { importDlrmSafetensors } from '../src/model/import-dlrm.ts';
import { loadModel } from '../src/model/store.ts';
import { ReferenceModel } from '../src/reference/reference-model.ts';
import { decodeRequest } from '../src/protocol/oip.ts';
import { ShardwiseError } from '../src/util/errors.ts';
import { ROOT, maxAbsDiff, tempDir } from './helpers.ts';

const FIXTURES = path.join(ROOT, 'test/fixtures');

interface Expected {
  interaction: string;
  request: unknown;
  per_sample_weights: number[];
  scores: { sum: number[]; mean: number[]; sum_weighted: number[] };
}

for (const name of ['dlrm-dot', 'dlrm-cat']) {
  test(`imported ${name} matches PyTorch's DLRM_Net to 1e-5 (sum, mean, per-sample weights)`, async () => {
    const expected: Expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.expected.json`), 'utf8'));
    const dir = tempDir();
    for (const pooling of ['sum', 'mean'] as const) {
      const out = path.join(dir, pooling);
      const manifest = importDlrmSafetensors(path.join(FIXTURES, `${name}.safetensors`), out, { name, pooling });
      assert.equal(manifest.interaction, expected.interaction, 'interaction inferred from the top MLP width');
      const model = loadModel(out);
      const ref = await ReferenceModel.create(model);
      try {
        const batch = decodeRequest(expected.request, model.config);
        assert.ok(maxAbsDiff(await ref.predict(batch), expected.scores[pooling]) < 1e-5, pooling);
        if (pooling === 'sum') {
          const weighted = { ...batch, weights: Float32Array.from(expected.per_sample_weights) };
          assert.ok(maxAbsDiff(await ref.predict(weighted), expected.scores.sum_weighted) < 1e-5, 'weighted');
        }
      } finally {
        await ref.close();
      }
    }
  });
}

/** Writes a safetensors file from a header and a data section. */
function writeSafetensors(file: string, header: object, data: Buffer) {
  const text = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  fs.writeFileSync(file, Buffer.concat([len, text, data]));
}

function expectImportError(file: string, ...fragments: string[]) {
  const out = tempDir();
  assert.throws(
    () => importDlrmSafetensors(file, out, { name: 'x' }),
    (e: unknown) => {
      assert.ok(e instanceof ShardwiseError && e.code === 'SW_IMPORT_FORMAT', String(e));
      for (const f of [file, ...fragments]) assert.ok(e.message.includes(f), `${e.message} lacks ${f}`);
      return true;
    },
  );
}

test('bad checkpoints fail naming the file, the tensor and what was expected', () => {
  const dir = tempDir();
  const good = fs.readFileSync(path.join(FIXTURES, 'dlrm-dot.safetensors'));
  const headerLen = Number(good.readBigUInt64LE(0));
  const header = JSON.parse(good.subarray(8, 8 + headerLen).toString());
  const data = good.subarray(8 + headerLen);

  const truncated = path.join(dir, 'truncated.safetensors');
  fs.writeFileSync(truncated, good.subarray(0, good.length - 40));
  expectImportError(truncated, "tensor 'top_l.2.weight'", 'claims bytes', 'truncated');

  const unknown = path.join(dir, 'unknown.safetensors');
  writeSafetensors(unknown, { ...header, 'v_W_l.0': header['top_l.2.bias'] }, data);
  expectImportError(unknown, "unexpected tensor 'v_W_l.0'");

  const noBias = path.join(dir, 'nobias.safetensors');
  const { ['bot_l.2.bias']: _drop, ...rest } = header;
  writeSafetensors(noBias, rest, data);
  expectImportError(noBias, "layer 'bot_l.2' needs both weight and bias");

  const badShape = path.join(dir, 'badshape.safetensors');
  writeSafetensors(badShape, { ...header, 'top_l.0.weight': { ...header['top_l.0.weight'], shape: [16, 13], data_offsets: [header['top_l.0.weight'].data_offsets[0], header['top_l.0.weight'].data_offsets[0] + 16 * 13 * 4] } }, data);
  expectImportError(badShape, 'top MLP takes width 13', 'dot: 14', 'cat: 32');

  const notSafetensors = path.join(dir, 'junk.safetensors');
  fs.writeFileSync(notSafetensors, 'hello');
  expectImportError(notSafetensors, '8-byte header length');
});
