#!/usr/bin/env node
// Runs the compiled CLI (dist/, which `npm install` builds with tsc). A missing or stale build
// is refused with what to do: silently running old code is worse than not running.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');

/** The newest .ts under src/ (path, mtime), or null where the package ships without sources. */
function newestSource(dir) {
  let newest = null;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    const found = entry.isDirectory() ? newestSource(p) : p.endsWith('.ts') ? { file: p, mtimeMs: fs.statSync(p).mtimeMs } : null;
    if (found && (!newest || found.mtimeMs > newest.mtimeMs)) newest = found;
  }
  return newest;
}

function refuse(why) {
  process.stderr.write(`shardwise: error [SW_BUILD]: ${why}\n  hint: run \`npm run build\` (npm install runs it)\n`);
  process.exit(2);
}

if (!fs.existsSync(stamp)) refuse(`the compiled CLI (${path.join(root, 'dist')}) is missing`);
const src = path.join(root, 'src');
if (fs.existsSync(src)) {
  const newest = newestSource(src);
  if (newest && newest.mtimeMs > fs.statSync(stamp).mtimeMs) refuse(`the compiled CLI is older than ${path.relative(root, newest.file)}`);
}
await import('../dist/cli/main.js');
