import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Manifest } from '../model/manifest.ts';
import { FLOAT_BYTES } from '../model/types.ts';
import { readTableRowsInOrder, tableFile } from '../model/store.ts';
import { profileError } from '../util/errors.ts';
import { profileChecksum, readProfile } from './format.ts';

/**
 * Hotness-ordered copies of a model's tables: each table's rows rewritten in the order of a
 * profile's permutation, so any range of hotness positions (a shard's piece, the router's
 * cache) is one contiguous byte range of one file, which a replica maps or reads in one call
 * instead of streaming the whole table through the permutation. Written once per model and
 * profile under `<model>/ordered/<profile sha256>/`; `ordered.json` is written last and the
 * folder renamed into place, so a half-written copy is never found.
 */
export const ORDERED_DIR = 'ordered';
const ORDERED_MANIFEST = 'ordered.json';
/** Rows placed per pass over a table while writing: each pass streams the whole table once. */
const WRITE_CHUNK_BYTES = 256 << 20;

interface OrderedManifest {
  profileChecksum: string;
  embeddingDim: number;
  /**
   * Per table: its rows, its file in this folder (null where the profile keeps the model's
   * order), and the model file it was copied from as it was then (size, mtime): a model
   * written again in the same folder (`generate --force`, a new import) makes the copy stale.
   */
  tables: { rows: number; file: string | null; source: FileStamp }[];
}

interface FileStamp {
  size: number;
  mtimeMs: number;
}

function stampOf(file: string): FileStamp | null {
  try {
    const st = fs.statSync(file);
    return { size: st.size, mtimeMs: st.mtimeMs };
  } catch {
    return null;
  }
}

/** Per table, the float32 file whose row i is the table's hotness position i. */
export interface OrderedTables {
  dir: string;
  files: string[];
}

export const orderedTablesDir = (modelDir: string, checksum: string): string => path.join(modelDir, ORDERED_DIR, checksum);

/** The copies for this profile checksum, or null when there are none (or they do not match the model: never served). */
export function findOrderedTables(modelDir: string, manifest: Manifest, checksum: string): OrderedTables | null {
  const dir = orderedTablesDir(modelDir, checksum);
  let stored: OrderedManifest;
  try {
    stored = JSON.parse(fs.readFileSync(path.join(dir, ORDERED_MANIFEST), 'utf8'));
  } catch {
    return null;
  }
  const d = manifest.embeddingDim;
  const sameSource = (t: OrderedManifest['tables'][number], i: number) => {
    const now = stampOf(tableFile(modelDir, manifest, i));
    return now !== null && now.size === t.source?.size && now.mtimeMs === t.source?.mtimeMs;
  };
  const fits =
    stored.profileChecksum === checksum &&
    stored.embeddingDim === d &&
    stored.tables?.length === manifest.tables.length &&
    stored.tables.every((t, i) => t.rows === manifest.tables[i].rows && sameSource(t, i) && (t.file === null || stampOf(path.join(dir, t.file))?.size === t.rows * d * FLOAT_BYTES));
  if (!fits) return null;
  return { dir, files: stored.tables.map((t, i) => (t.file === null ? tableFile(modelDir, manifest, i) : path.join(dir, t.file))) };
}

/** Writes the copies for `profileFile`, whose sha256 is `checksum`. Memory: one chunk of rows and one table's permutation. */
function writeOrderedTables(modelDir: string, manifest: Manifest, profileFile: string, checksum: string, onTable?: (table: number, bytes: number) => void): OrderedTables {
  const dir = orderedTablesDir(modelDir, checksum);
  const temp = `${dir}.partial-${process.pid}`;
  fs.rmSync(temp, { recursive: true, force: true });
  fs.mkdirSync(temp, { recursive: true });
  const d = manifest.embeddingDim;
  const chunkRows = Math.max(1, Math.floor(WRITE_CHUNK_BYTES / (d * FLOAT_BYTES)));
  try {
    const tables = manifest.tables.map(({ rows }, t): OrderedManifest['tables'][number] => {
      // Stamped before reading: a table rewritten meanwhile leaves a stamp that no longer matches.
      const source = stampOf(tableFile(modelDir, manifest, t))!;
      const position = readProfile(profileFile, undefined, { permutationsOf: (i) => i === t }).tables[t].permutation;
      if (!position) return { rows, file: null, source };
      const file = `table-${t}.f32`;
      const fd = fs.openSync(path.join(temp, file), 'w');
      try {
        for (let start = 0; start < rows; start += chunkRows) {
          const { data } = readTableRowsInOrder(modelDir, manifest, t, position, start, Math.min(chunkRows, rows - start));
          fs.writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        }
      } finally {
        fs.closeSync(fd);
      }
      onTable?.(t, rows * d * FLOAT_BYTES);
      return { rows, file, source };
    });
    const stored: OrderedManifest = { profileChecksum: checksum, embeddingDim: d, tables };
    fs.writeFileSync(path.join(temp, ORDERED_MANIFEST), JSON.stringify(stored, null, 2) + '\n');
    // A stale copy (the model rewritten since) gives way; a good one another process just wrote stays.
    if (fs.existsSync(dir) && !findOrderedTables(modelDir, manifest, checksum)) fs.rmSync(dir, { recursive: true, force: true });
    try {
      fs.renameSync(temp, dir);
    } catch (e) {
      // Another process wrote the same copy first: its copy is as good as this one.
      if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
  const written = findOrderedTables(modelDir, manifest, checksum);
  if (!written) throw profileError(dir, 'was written but does not read back', 'check the disk, then remove the folder and serve again');
  return written;
}

/**
 * The copies for a plan's profile, written first if there are none. Throws when the profile
 * no longer matches the plan's checksum; a model folder that cannot be written is the
 * caller's to report (replicas then stream their tables).
 */
export function ensureOrderedTables(modelDir: string, manifest: Manifest, hotness: { profile: string; checksum?: string }, onTable?: (table: number, bytes: number) => void): { tables: OrderedTables; checksum: string; written: boolean } {
  const checksum = hotness.checksum ?? profileChecksum(hotness.profile);
  const found = findOrderedTables(modelDir, manifest, checksum);
  if (found) return { tables: found, checksum, written: false };
  // The profile must still be the one the plan's ranges were cut from (hashed just now when the plan recorded no checksum).
  const actual = hotness.checksum === undefined ? checksum : profileChecksum(hotness.profile);
  if (actual !== checksum) {
    throw profileError(hotness.profile, `has changed since the plan was made (sha256 ${actual.slice(0, 12)}…, the plan records ${checksum.slice(0, 12)}…)`, 'plan again with this profile, or restore the one the plan was made from');
  }
  return { tables: writeOrderedTables(modelDir, manifest, hotness.profile, checksum, onTable), checksum, written: true };
}
