import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import { readManifest, readTableRows, readTableRowsInOrder } from '../src/model/store.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { planHotness, writeProfile } from '../src/profile/format.ts';
import { ensureOrderedTables, orderedTablesDir } from '../src/profile/ordered-tables.ts';
import { loadHotnessRanges } from '../src/serving/hotness.ts';
import { ShardwiseError } from '../src/util/errors.ts';
import { native } from '../src/util/native.ts';
import { mappedFileMemory } from '../src/util/process-stats.ts';
import { Bucketizer } from '../src/serving/bucketize.ts';
import { UtilityMeter } from '../src/serving/utility-meter.ts';
import { Rng } from '../src/util/rng.ts';
import { tempDir } from './helpers.ts';

test('rows read in a hotness order are the permuted rows, whatever the chunking', () => {
  const dir = path.join(tempDir(), 'm');
  const config = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 70_001, poolingFactor: 3 }] };
  generateModel(dir, config, 3);
  const manifest = readManifest(dir);
  const all = readTableRows(dir, manifest, 0, 0, 70_001).data;
  // A random permutation: position[id] is id's place in the order.
  const order = Int32Array.from({ length: 70_001 }, (_, i) => i);
  const rng = new Rng(9);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const position = new Int32Array(order.length);
  order.forEach((id, pos) => (position[id] = pos));
  const d = manifest.embeddingDim;
  const piece = readTableRowsInOrder(dir, manifest, 0, position, 65_000, 5_001);
  for (const r of [0, 1, 2_500, 5_000]) {
    const id = order[65_000 + r];
    assert.deepEqual(piece.data.subarray(r * d, (r + 1) * d), all.subarray(id * d, (id + 1) * d), `row at position ${65_000 + r}`);
  }
  assert.throws(() => readTableRowsInOrder(dir, manifest, 0, position.subarray(1), 0, 1), /the order has 70000 rows, the table 70001/);
});

test('the bucketizer maps ids to hotness positions before routing', () => {
  // One table of 6 rows; hotness order puts id 5 first and id 0 last. Shard a: positions 0–2, b: 3–5.
  const position = Int32Array.from([5, 3, 4, 1, 2, 0]);
  const shards = [
    { name: 'a', replicas: 1, pieces: [{ table: 0, rowStart: 0, rowEnd: 3 }] },
    { name: 'b', replicas: 1, pieces: [{ table: 0, rowStart: 3, rowEnd: 6 }] },
  ];
  const batch = { size: 1, dense: new Float32Array(0), indices: Int32Array.from([5, 0, 3, 1]), offsets: Int32Array.from([0, 4]), weights: null };
  const split = new Bucketizer(1, shards, 1, [position]).split(batch);
  assert.deepEqual([...split.cache.ids], [0], 'id 5 is position 0: the cache');
  assert.deepEqual([...split.shards[0].ids], [1], 'id 3 → position 1');
  assert.deepEqual([...split.shards[1].ids], [2, 0], 'ids 0, 1 → positions 5, 3 → local 2, 0');
});

test('the utility meter counts distinct rows touched per window of samples, idle samples included', () => {
  const windows: number[] = [];
  // Two pieces of 10 and 5 rows (15 held); a window is 4 samples.
  const meter = new UtilityMeter([10, 5], 4, (u) => windows.push(u));
  const req = (batch: number, bags: number[][], idleSamples = 0) => {
    const offsets = new Int32Array(bags.length + 1);
    bags.forEach((b, i) => (offsets[i + 1] = offsets[i] + b.length));
    return { batch, pieces: 2, offsets, ids: Int32Array.from(bags.flat()), weights: null, idleSamples };
  };
  // Sample 0: piece 0 rows 1, 1, 2; piece 1 row 1 (piece 0's row 1 is another row). Sample 1: piece 1 row 1 again.
  meter.record(req(2, [[1, 1, 2], [1], [], [1]]));
  assert.equal(windows.length, 0);
  meter.record(req(1, [[9], [4]], 1)); // 1 sample + 1 idle: the window closes at 4
  assert.deepEqual(windows, [5 / 15]);
  meter.record(req(4, [[1], [], [], [], [], [], [], []])); // a new window: rows count again
  assert.deepEqual(windows, [5 / 15, 1 / 15]);
  assert.equal(meter.rowsHeld, 15);
});

test('a large shard\'s meter tracks a sample of its rows and reads the utility of them all to within a point', () => {
  // Two hotness-ordered pieces of 300k and 100k rows; a skewed trace touches the hot head of each.
  const pieceRows = [300_000, 100_000];
  const rng = new Rng(7);
  const batch = 64, lookups = 40;
  const requests = Array.from({ length: 20 }, () => {
    const offsets = Int32Array.from({ length: batch * 2 + 1 }, (_, j) => j * lookups);
    const ids = Int32Array.from({ length: batch * 2 * lookups }, (_, k) => Math.floor(pieceRows[Math.floor(k / lookups) % 2] * rng.next() ** 3));
    return { batch, pieces: 2, offsets, ids, weights: null, idleSamples: 0 };
  });
  const read = (minTrackedRows?: number) => {
    const windows: number[] = [];
    const meter = new UtilityMeter(pieceRows, batch * requests.length, (u) => windows.push(u), minTrackedRows);
    for (const r of requests) meter.record(r);
    return { utility: windows[0], shift: meter.sampleShift };
  };
  const exact = read(Infinity);
  const sampled = read();
  assert.equal(exact.shift, 0);
  assert.equal(sampled.shift, 3, 'one row in 8: 50k of 400k tracked');
  assert.ok(exact.utility > 0.1 && exact.utility < 0.9, `exact utility ${exact.utility}`);
  assert.ok(Math.abs(sampled.utility - exact.utility) < 0.01, `sampled ${sampled.utility} vs exact ${exact.utility}`);
});

test('hotness-ordered copies: ranges mapped or read from them equal the rows streamed through the permutation; a changed profile or a broken copy is never served', () => {
  const dir = path.join(tempDir(), 'm');
  const config = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 3_001, poolingFactor: 3 }, { name: 'b', rows: 500, poolingFactor: 2 }] };
  generateModel(dir, config, 5);
  const manifest = readManifest(dir);
  const rng = new Rng(11);
  const profile = {
    source: 'test',
    tables: config.tables.map(({ rows }) => {
      const order = Int32Array.from({ length: rows }, (_, i) => i);
      for (let i = rows - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      const permutation = new Int32Array(rows);
      order.forEach((id, pos) => (permutation[id] = pos));
      return { rows, lookups: 0, knotPos: Int32Array.from([0, rows]), knotCdf: Float64Array.from([0, 1]), permutation };
    }),
  };
  const profileFile = path.join(dir, '..', 'profile.bin');
  writeProfile(profileFile, profile);
  const plan = { ...rowWisePlan(config, { shards: 3, replicas: 1, cacheRows: 0, dense: 'router', denseReplicas: 1 }), hotness: planHotness(profileFile) };
  const ranges = plan.shards[1].pieces;

  // No copies yet: the tables are streamed through the permutation (the oracle).
  const streamed = loadHotnessRanges(dir, manifest, plan, config, ranges, 'read');
  assert.equal(streamed.source, 'tables streamed through the permutation');
  const { written, tables } = ensureOrderedTables(dir, manifest, plan.hotness);
  assert.ok(written);
  assert.equal(tables.dir, orderedTablesDir(dir, plan.hotness.checksum));
  assert.equal(ensureOrderedTables(dir, manifest, plan.hotness).written, false, 'written once');
  for (const loading of native ? (['map', 'read'] as const) : (['read'] as const)) {
    const fromCopy = loadHotnessRanges(dir, manifest, plan, config, ranges, loading);
    assert.equal(fromCopy.source, 'hotness-ordered copies');
    fromCopy.tables.forEach((t, i) => assert.deepEqual(t.data, streamed.tables[i].data, `${loading}: piece ${i}`));
  }
  // Without a checksum in the plan, the profile is hashed and the same copies found.
  assert.equal(loadHotnessRanges(dir, manifest, { ...plan, hotness: { profile: profileFile } }, config, ranges, 'read').source, 'hotness-ordered copies');

  // A model written again in the same folder makes the copies stale: not served, and written anew.
  const newer = path.join(dir, '..', 'newer');
  generateModel(newer, config, 99);
  for (const t of [0, 1]) {
    const file = manifest.tensors[`emb.${t}`].file;
    fs.copyFileSync(path.join(newer, file), path.join(dir, file));
  }
  assert.equal(loadHotnessRanges(dir, manifest, plan, config, ranges, 'read').source, 'tables streamed through the permutation');
  const fresh = loadHotnessRanges(dir, manifest, plan, config, ranges, 'read').tables;
  assert.equal(ensureOrderedTables(dir, manifest, plan.hotness).written, true);
  loadHotnessRanges(dir, manifest, plan, config, ranges, 'read').tables.forEach((t, i) => assert.deepEqual(t.data, fresh[i].data, `rewritten model: piece ${i}`));
  assert.notDeepEqual(fresh[0].data, streamed.tables[0].data);

  // A truncated copy is not served: the ranges are streamed again.
  const copy = path.join(tables.dir, 'table-0.f32');
  fs.truncateSync(copy, 100);
  assert.equal(loadHotnessRanges(dir, manifest, plan, config, ranges, 'read').source, 'tables streamed through the permutation');
  fs.rmSync(tables.dir, { recursive: true });

  // A profile that changed since planning is refused when the copies are written.
  profile.tables[0].permutation.reverse();
  writeProfile(profileFile, profile);
  assert.throws(() => ensureOrderedTables(dir, manifest, plan.hotness), (e: unknown) => e instanceof ShardwiseError && /has changed since the plan was made/.test(e.message));
});

test('mapped rows are read-only views of the file, the same values as read rows; mapping needs the addon', { skip: !native && 'native addon not built' }, () => {
  const dir = path.join(tempDir(), 'm');
  const config = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 5_000, poolingFactor: 3 }] };
  generateModel(dir, config, 6);
  const manifest = readManifest(dir);
  const read = readTableRows(dir, manifest, 0, 1_234, 2_000, 'read');
  const mapped = readTableRows(dir, manifest, 0, 1_234, 2_000, 'map');
  assert.deepEqual(mapped.data, read.data);
  const table = path.join(dir, manifest.tensors['emb.0'].file);
  const memory = mappedFileMemory(process.pid, dir);
  assert.ok(memory.rss >= 2_000 * manifest.embeddingDim * 4 * 0.9, `the mapped rows are resident in this process (${memory.rss} bytes mapped from ${table})`);
  assert.deepEqual(readTableRows(dir, manifest, 0, 0, 0, 'map').data, new Float32Array(0));
});
