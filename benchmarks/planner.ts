/**
 * npm run bench:planner — ElasticRec's evaluation table from the paper's own inputs: RM1–RM3
 * shapes (20M rows per table, dim 32, locality 90%), the Fig 9 shard curve (1/QPS = 10 ms +
 * 1.6 ms·x), the Fig 5 layer QPS, targets 100 QPS (CPU-only) and 200 QPS (CPU-GPU). Prints
 * model-wise vs elastic memory and nodes next to the paper's figures, and geometric means.
 *
 * Inputs the paper does not give are assumptions, printed with the results: the idle memory
 * of a replica (IDLE_GB, default 0.5), node size (32 CPUs, 384 GiB) and per-replica CPUs
 * (model-wise 8, dense 4 on CPU-only or 1 CPU + its GPU's node on CPU-GPU, shard 1).
 */
import { presetConfig } from '../src/model/presets.ts';
import { syntheticProfile } from '../src/profile/build.ts';
import { COST_FORMAT, COST_VERSION, type CostModel } from '../src/planner/cost-model.ts';
import { runPlanner } from '../src/planner/planner.ts';
import { strategyNamed } from '../src/planner/strategies.ts';
import { renderTable } from '../src/util/format.ts';

const GiB = 2 ** 30;
const IDLE = Number(process.env.IDLE_GB ?? 0.5) * GiB;
const node = { cpus: 32, memBytes: 384 * GiB };

interface PaperRow {
  setup: 'CPU-only' | 'CPU-GPU';
  model: 'rm1' | 'rm2' | 'rm3';
  dense: number;
  sparse: number;
  target: number;
  memory: [number, number];
  servers: [number, number];
}
const rows: PaperRow[] = [
  { setup: 'CPU-only', model: 'rm1', dense: 21, sparse: 25, target: 100, memory: [310, 145], servers: [5, 3] },
  { setup: 'CPU-only', model: 'rm2', dense: 6.5, sparse: 10.5, target: 100, memory: [1000, 370], servers: [5, 3] },
  { setup: 'CPU-only', model: 'rm3', dense: 5, sparse: 36, target: 100, memory: [670, 80], servers: [4, 2] },
  { setup: 'CPU-GPU', model: 'rm1', dense: 325, sparse: 70, target: 200, memory: [205, 80], servers: [7, 5] },
  { setup: 'CPU-GPU', model: 'rm2', dense: 322, sparse: 20, target: 200, memory: [1055, 290], servers: [11, 7] },
  { setup: 'CPU-GPU', model: 'rm3', dense: 165, sparse: 197, target: 200, memory: [170, 65], servers: [6, 5] },
];

function costFor(r: PaperRow): CostModel {
  const gpu = r.setup === 'CPU-GPU';
  return {
    format: COST_FORMAT,
    version: COST_VERSION,
    source: `ElasticRec Fig 9 / Fig 5 (${r.setup})`,
    shard: { curves: [{ dim: 32, alphaMs: 10, betaMs: 1.6 }], replica: { cpus: 1, memBytes: IDLE }, tablesInParallel: true },
    dense: { qps: r.dense, replica: { cpus: gpu ? 8 : 4, memBytes: IDLE } },
    modelWise: { sparseQps: r.sparse, replica: { cpus: gpu ? 8 : 8, memBytes: IDLE } },
    // The paper's dense shard is the front end: no separate router cost.
    router: { qps: 1e9, replica: { cpus: 0.1, memBytes: 0 } },
  };
}

const out: (string | number)[][] = [];
const memRatios: number[] = [];
const paperMemRatios: number[] = [];
const nodeRatios: number[] = [];
const paperNodeRatios: number[] = [];
for (const r of rows) {
  const base = presetConfig(r.model);
  const config = { ...base, tables: base.tables.map((t) => ({ ...t, rows: 20_000_000 })) };
  const input = { config, profile: syntheticProfile(config, { kind: 'locality', p: 0.9 }), hotness: null, cost: costFor(r), targetQps: r.target, batch: 1, shards: 4, maxShards: 16, cacheRows: 0 };
  const [mw, el] = runPlanner(input, [strategyNamed('model-wise'), strategyNamed('elastic')], node);
  const gb = (b: number) => b / 1e9;
  const memRatio = mw.estimate.memBytes / el.estimate.memBytes;
  const nodes = [mw.estimate.placement!.nodes.length, el.estimate.placement!.nodes.length];
  memRatios.push(memRatio);
  paperMemRatios.push(r.memory[0] / r.memory[1]);
  nodeRatios.push(nodes[0] / nodes[1]);
  paperNodeRatios.push(r.servers[0] / r.servers[1]);
  const shardsPerTable = el.plan.shards.filter((s) => s.pieces.some((p) => p.table === 0)).length;
  const replicasT0 = el.plan.shards.filter((s) => s.pieces.some((p) => p.table === 0)).map((s) => s.replicas).join('/');
  out.push([
    `${r.setup} ${r.model.toUpperCase()}`,
    `${gb(mw.estimate.memBytes).toFixed(0)} → ${gb(el.estimate.memBytes).toFixed(0)}`,
    `${memRatio.toFixed(1)}×`,
    `${r.memory[0]} → ${r.memory[1]} (${(r.memory[0] / r.memory[1]).toFixed(1)}×)`,
    `${(100 * (memRatio / (r.memory[0] / r.memory[1]) - 1)).toFixed(0)}%`,
    `${nodes[0]} → ${nodes[1]}`,
    `${r.servers[0]} → ${r.servers[1]}`,
    `${shardsPerTable} (${replicasT0})`,
  ]);
}
const geo = (xs: number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`bench:planner — ElasticRec's table from the paper's inputs (idle replica ${(IDLE / GiB).toFixed(2)} GiB, nodes ${node.cpus} CPUs / ${node.memBytes / GiB} GiB)`);
console.log(renderTable(['config', 'memory GB (ours)', 'ratio', 'paper GB', 'ratio vs paper', 'nodes (ours)', 'paper servers', 'elastic shards/table (replicas)'], out));
console.log(`\ngeometric-mean memory reduction: ours ${geo(memRatios).toFixed(2)}×, paper ${geo(paperMemRatios).toFixed(2)}×`);
console.log(`mean node reduction: ours ${mean(nodeRatios).toFixed(2)}×, paper ${mean(paperNodeRatios).toFixed(2)}×`);
