import { formatBytes, formatCount, renderTable } from '../util/format.ts';
import type { PlanEstimate } from './estimate.ts';

const pctOf = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The report stage: one table per plan, then totals. */
export function renderEstimate(e: PlanEstimate, pricePerNodeHour?: number): string {
  const rows = e.services.map((s) => [
    s.service,
    s.kind,
    s.replicas,
    formatCount(s.rows),
    formatBytes(s.memPerReplica),
    s.lookupsPerQuery ? s.lookupsPerQuery.toFixed(1) : '-',
    s.qpsPerReplica.toFixed(1),
    s.utility === null ? '-' : pctOf(s.utility),
    formatBytes(s.replicas * s.memPerReplica),
  ]);
  // Each replica is charged its rows in full, as on a node of its own (the RSS a cluster
  // reserves); replicas mapping the same rows on one machine share them (PSS), never counted here.
  const totals = [`memory allocated ${formatBytes(e.memBytes)} (per replica as on its own node: RSS, not PSS)`, `memory utility ${pctOf(e.utility)} (replica-weighted)`];
  if (e.placement) {
    const n = e.placement.nodes.length;
    totals.push(`${n} node${n === 1 ? '' : 's'} of ${e.placement.node.cpus} CPUs / ${formatBytes(e.placement.node.memBytes)}`);
    if (pricePerNodeHour !== undefined) totals.push(`$${(n * pricePerNodeHour).toFixed(2)}/hour`);
  }
  return [
    `strategy ${e.strategy}`,
    renderTable(['service', 'kind', 'replicas', 'rows', 'memory/replica', 'lookups/query', 'qps/replica', 'utility', 'memory'], rows),
    `  ${totals.join(', ')}`,
  ].join('\n');
}

/** `--strategy all`: one line per strategy with ratios against model-wise. */
export function renderComparison(estimates: PlanEstimate[], pricePerNodeHour?: number): string {
  const base = estimates.find((e) => e.strategy === 'model-wise');
  const rows = estimates.map((e) => {
    const nodes = e.placement?.nodes.length;
    const baseNodes = base?.placement?.nodes.length;
    return [
      e.strategy,
      e.services.filter((s) => s.kind === 'shard').length || '-',
      e.services.reduce((n, s) => n + s.replicas, 0),
      formatBytes(e.memBytes),
      base ? `${(base.memBytes / e.memBytes).toFixed(2)}×` : '-',
      pctOf(e.utility),
      nodes ?? '-',
      nodes && baseNodes ? `${(baseNodes / nodes).toFixed(2)}×` : '-',
      nodes && pricePerNodeHour !== undefined ? `$${(nodes * pricePerNodeHour).toFixed(2)}` : '-',
    ];
  });
  return renderTable(['strategy', 'shards', 'replicas', 'memory', 'memory saved vs model-wise', 'utility', 'nodes', 'nodes saved', 'cost/hour'], rows);
}
