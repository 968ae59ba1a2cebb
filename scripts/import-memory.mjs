#!/usr/bin/env node
// What importing a module costs a node process in memory, by where the pages are: for each
// module named, a fresh node requires it and reports the growth of its resident pages per
// mapping (/proc/self/smaps) after 1.5 s, beside a process that requires nothing. Used for
// bench:replica's account of a shard's fixed memory (README). Linux only.
//   node scripts/import-memory.mjs @opentelemetry/api prom-client node:http
import { execFileSync } from 'node:child_process';

const probe = `
const fs = require('fs');
const rss = () => { const out = {}; let map = null;
  for (const l of fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
    const h = /^[0-9a-f]+-[0-9a-f]+ \\S+ \\S+ \\S+ \\S+\\s*(.*)$/.exec(l);
    if (h) { map = h[1] || '[anonymous]'; continue; }
    const r = /^Rss:\\s+(\\d+) kB/.exec(l);
    if (r && map) out[map] = (out[map] || 0) + Number(r[1]);
  }
  return out; };
const before = rss();
if (process.argv[1] !== '-') require(process.argv[1]);
setTimeout(() => { const after = rss(); const d = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) d[k] = (after[k] || 0) - (before[k] || 0);
  console.log(JSON.stringify(d)); }, 1500);`;

const growth = (module) => JSON.parse(execFileSync(process.execPath, ['-e', probe, module], { encoding: 'utf8', cwd: process.cwd() }));
const mib = (kb) => `${(kb / 1024).toFixed(1)} MiB`;
const base = growth('-');
for (const module of process.argv.slice(2)) {
  const d = growth(module);
  const total = Object.values(d).reduce((s, x) => s + x, 0) - Object.values(base).reduce((s, x) => s + x, 0);
  const byMapping = Object.entries(d)
    .map(([k, v]) => [k, v - (base[k] ?? 0)])
    .filter(([, v]) => Math.abs(v) >= 256)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${mib(v)}`);
  console.log(`${module}: +${mib(total)} resident (${byMapping.join(', ') || 'no mapping over 256 KiB'})`);
}
