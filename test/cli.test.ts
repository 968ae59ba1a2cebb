import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRequest } from '../src/protocol/oip.ts';
import { readQueries } from '../src/workload/trace-format.ts';
import { ROOT, assertCliFails, cli, tempDir, unusedPort } from './helpers.ts';

test('every command has --help', () => {
  const top = cli(['--help']);
  assert.equal(top.code, 0);
  for (const cmd of ['demo', 'generate', 'import', 'trace', 'trace-stats', 'predict', 'plan', 'serve', 'bench', 'order']) {
    assert.ok(top.stdout.includes(cmd), `top-level help lists ${cmd}`);
    const r = cli([cmd, '--help']);
    assert.equal(r.code, 0, cmd);
    assert.match(r.stdout, /Usage: shardwise/);
  }
});

test('generate → trace → trace-stats → predict through the CLI', () => {
  const dir = tempDir();
  const model = path.join(dir, 'model');
  const gen = cli(['generate', '--preset', 'criteo-kaggle', '--rows', '2000', '--seed', '3', '--out', model]);
  assert.equal(gen.code, 0, gen.stderr);
  assert.match(gen.stdout, /26 tables/);
  const again = cli(['generate', '--preset', 'tiny', '--out', model]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already holds a model[\s\S]*--force/);

  const trace = path.join(dir, 't.bin');
  const tr = cli(['trace', '--model', model, '--queries', '50', '--batch', '4', '--locality', '0.9', '--out', trace]);
  assert.equal(tr.code, 0, tr.stderr);
  const stats = JSON.parse(cli(['trace-stats', trace, '--json']).stdout);
  assert.equal(stats.queries, 50);
  assert.equal(stats.tables.length, 26);

  const q = readQueries(trace, 1).queries[0];
  const req = path.join(dir, 'req.json');
  fs.writeFileSync(req, JSON.stringify(encodeRequest(q, 13, 'abc')));
  const out = path.join(dir, 'resp.json');
  const pr = cli(['predict', '--model', model, '--input', req, '--output', out]);
  assert.equal(pr.code, 0, pr.stderr);
  const resp = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.equal(resp.model_name, 'criteo-kaggle');
  assert.equal(resp.id, 'abc');
  assert.deepEqual(resp.outputs[0].shape, [4, 1]);
  assert.ok(resp.outputs[0].data.every((s: number) => s > 0 && s < 1));
  // The TypeScript kernels give the same scores as the native/onnxruntime ones.
  const ts = cli(['predict', '--model', model, '--input', req], { env: { SHARDWISE_NATIVE: '0', SHARDWISE_MLP: 'typescript' } });
  const tsScores = JSON.parse(ts.stdout).outputs[0].data as number[];
  tsScores.forEach((s, i) => assert.ok(Math.abs(s - resp.outputs[0].data[i]) < 1e-5));
});

test('bad input exits 2 with a message naming what was wrong', async () => {
  const dir = tempDir();
  const model = path.join(dir, 'm');
  assert.equal(cli(['generate', '--preset', 'tiny', '--out', model]).code, 0);
  const req = path.join(dir, 'bad.json');
  fs.writeFileSync(req, JSON.stringify({ inputs: [
    { name: 'dense', datatype: 'FP32', shape: [1, 4], data: [0, 0, 0, 0] },
    { name: 'indices', datatype: 'INT64', shape: [3], data: [1, 2, 99999] },
    { name: 'offsets', datatype: 'INT64', shape: [4], data: [0, 1, 2, 3] },
  ] }));
  const r = cli(['predict', '--model', model, '--input', req]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /SW_BAD_REQUEST.*'indices' has id 99999 at position 2 \(sample 0, table 2\)/);

  const missing = cli(['predict', '--model', path.join(dir, 'nope'), '--input', req]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /model\.json: not found[\s\S]*hint/);

  const badPreset = cli(['generate', '--preset', 'rm9', '--out', dir]);
  assert.notEqual(badPreset.code, 0);
  assert.match(badPreset.stderr, /expected one of tiny, rm1/);

  const both = cli(['trace', '--model', model, '--queries', '1', '--locality', '0.5', '--zipf', '1.1', '--out', path.join(dir, 'x.bin')]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /either --locality or --zipf/);

  // A path that cannot be written, an option out of its range: a message, not a stack.
  const cases: [string[], number, RegExp][] = [
    [['trace', '--model', model, '--queries', '1', '--out', path.join(dir, 'no-such-folder', 't.bin')], 2, /SW_FILE_SYSTEM.*no-such-folder\/t\.bin: no such file or folder \(ENOENT\)\n  hint: .*folder to exist/],
    [['trace', '--model', model, '--queries', '1', '--out', dir], 2, /SW_FILE_SYSTEM.*: it is a folder \(EISDIR\)/],
    [['plan', '--model', model, '--strategy', 'rows', '--out', path.join(dir, 'p.json')], 1, /expected one of model-wise, .*elastic, all, got 'rows'/],
    [['serve', '--model', model, '--monolithic', '--port', '99999'], 1, /expected a TCP port from 0 \(any free one\) to 65535, got '99999'/],
  ];
  const trace = path.join(dir, 't.bin');
  assert.equal(cli(['trace', '--model', model, '--queries', '5', '--out', trace]).code, 0);
  const nobody = `http://127.0.0.1:${await unusedPort()}`;
  cases.push(
    [['bench', '--url', 'localhost:8080', '--model-name', 'tiny', '--trace', trace, '--qps', '5'], 1, /expected an http:\/\/ URL such as http:\/\/127\.0\.0\.1:8080, got 'localhost:8080'/],
    // A run that reached nobody measured nothing: its table, then an error.
    [['bench', '--url', nobody, '--model-name', 'tiny', '--trace', trace, '--qps', '20', '--duration', '1', '--warmup', '0'], 2, new RegExp(`none of \\d+ queries was answered by ${nobody} \\(first failure: connect ECONNREFUSED`)],
  );
  for (const [args, code, message] of cases) assertCliFails(args, code, message);

  const imp = cli(['import', '--format', 'dlrm-safetensors', '--file', path.join(ROOT, 'test/fixtures/dlrm-dot.safetensors'), '--interaction', 'cat', '--out', path.join(dir, 'imp')]);
  assert.equal(imp.code, 2);
  assert.match(imp.stderr, /matches no supported interaction 'cat'/);
});

test('demo serves a generated model disaggregated, checks parity and reports latency under load', () => {
  const dir = tempDir();
  const r = cli(['demo', '--dir', dir, '--rows', '3000', '--queries', '100', '--shards', '3', '--qps', '40', '--duration', '2']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /=== shardwise demo report ===/);
  assert.match(r.stdout, /within 1e-5/);
  assert.equal((r.stdout.match(/\bshard-\d\b/g) ?? []).length >= 3, true, 'replica table lists the shards');
  assert.match(r.stdout, /p99 ms/);
  assert.ok(fs.existsSync(path.join(dir, 'plan.json')));
});

test('profile → plan (records the profile checksum) → order writes the hotness-ordered copies once; a plan without hotness is refused', () => {
  const dir = tempDir();
  const model = path.join(dir, 'model');
  assert.equal(cli(['generate', '--preset', 'tiny', '--out', model]).code, 0);
  const trace = path.join(dir, 't.bin');
  assert.equal(cli(['trace', '--model', model, '--queries', '50', '--locality', '0.9', '--out', trace]).code, 0);
  const profile = path.join(dir, 'p.bin');
  assert.equal(cli(['profile', '--model', model, '--trace', trace, '--out', profile]).code, 0);
  const planFile = path.join(dir, 'plan.json');
  const planned = cli(['plan', '--model', model, '--profile', profile, '--strategy', 'row-wise', '--shards', '2', '--replicas', '1', '--out', planFile]);
  assert.equal(planned.code, 0, planned.stderr);
  const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'));
  assert.match(plan.hotness.checksum, /^[0-9a-f]{64}$/);
  const first = cli(['order', '--model', model, '--plan', planFile]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /written in [\d.]+ s/);
  assert.ok(fs.existsSync(path.join(model, 'ordered', plan.hotness.checksum, 'ordered.json')));
  assert.match(cli(['order', '--model', model, '--plan', planFile]).stdout, /already there/);
  const plain = path.join(dir, 'plain.json');
  fs.writeFileSync(plain, JSON.stringify({ ...plan, hotness: undefined }));
  const refused = cli(['order', '--model', model, '--plan', plain]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /has no hotness profile/);
});
