import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { presetConfig } from '../src/model/presets.ts';
import { generateModel } from '../src/model/generate.ts';
import { loadModel } from '../src/model/store.ts';
import type { ModelConfig } from '../src/model/types.ts';
import { rowWisePlan } from '../src/planner/row-wise.ts';
import { QueryGenerator } from '../src/workload/generate-trace.ts';
import { ReferenceModel } from '../src/reference/reference-model.ts';
import { inferBinary } from '../src/protocol/oip-client.ts';
import { badInputBattery } from './bad-inputs.ts';
import { maxAbsDiff, tempDir } from './helpers.ts';
import { testDeployments } from './deployments.ts';
import { sendRaw } from './raw-http.ts';

const dir = tempDir();
const config: ModelConfig = { ...presetConfig('tiny'), tables: [{ name: 'a', rows: 1001, poolingFactor: 5 }, { name: 'b', rows: 37, poolingFactor: 2 }, { name: 'c', rows: 2003, poolingFactor: 9 }] };
const modelDir = path.join(dir, 'model');
generateModel(modelDir, config, 5);

const deployments = testDeployments({ deadlineMs: 5000 });

test('a seeded battery of 500+ bad requests against serve --plan: every answer a 4xx with a JSON reason, no process dies, good queries keep their scores', async () => {
  const plan = rowWisePlan(config, { shards: 2, replicas: 2, cacheRows: 16, dense: 'service', denseReplicas: 1 });
  const sup = await deployments.serve({ modelDir, plan });
  const reference = await ReferenceModel.create(loadModel(modelDir));
  try {
    const gen = new QueryGenerator(config, { queries: 100, batch: 3, access: { kind: 'zipf', s: 1.05 }, pooling: 'poisson', seed: 9 });
    const good = Array.from({ length: 40 }, () => gen.next());
    const pids = sup.replicas().map((r) => r.pid);
    const battery = badInputBattery(config, good[0], 20261201);
    assert.ok(battery.length >= 500, `${battery.length} cases`);
    const byClass = new Map<string, { cases: number; statuses: Map<number, number> }>();
    const port = sup.routerPort;
    for (const [i, c] of battery.entries()) {
      const res = await sendRaw(port, c.bytes).catch((e: Error) => assert.fail(`case ${i} [${c.cls}] ${c.label}: ${e.message}`));
      const what = `case ${i} [${c.cls}] ${c.label}: ${res.status} ${res.body.slice(0, 200)}`;
      assert.ok(res.status >= 400 && res.status < 500, what);
      const body = JSON.parse(res.body);
      assert.equal(typeof body.error, 'string', what);
      assert.match(body.code, /^SW_/, what);
      const k = byClass.get(c.cls) ?? { cases: 0, statuses: new Map() };
      k.cases++;
      k.statuses.set(res.status, (k.statuses.get(res.status) ?? 0) + 1);
      byClass.set(c.cls, k);
      // Good queries in between are served, with the reference's scores.
      if (i % 25 === 0) {
        const q = good[(i / 25) % good.length];
        assert.ok(maxAbsDiff(await inferBinary(`http://127.0.0.1:${port}`, config.name, q, config.numDense), await reference.predict(q)) < 1e-5, `good query after ${what}`);
      }
    }
    for (const [cls, k] of byClass) {
      // For the closing note: the battery's counts per class and the statuses it got.
      console.log(`# bad-input battery: ${cls}: ${k.cases} cases → ${[...k.statuses].sort().map(([s, n]) => `${s}×${n}`).join(' ')}`);
    }
    const after = sup.replicas();
    assert.deepEqual(after.map((r) => r.pid), pids, 'no replica died');
    assert.ok(after.every((r) => r.restarts === 0));
    assert.equal((await fetch(`http://127.0.0.1:${port}/v2/health/ready`)).status, 200);
  } finally {
    await reference.close();
    await deployments.stop(sup);
  }
});
