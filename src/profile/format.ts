import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { ModelConfig } from '../model/types.ts';
import { profileError } from '../util/errors.ts';
import type { HotnessProfile, TableProfile } from './types.ts';

/**
 * The shardwise profile format (version 1), little-endian:
 *
 *   magic "SWPROF01" (8 bytes) | u32 version | u32 headerBytes | header JSON
 *     { source, tables: [{ rows, lookups, knots, permutation: bool }] }
 *   then per table: i32 knotPos[knots] | f64 knotCdf[knots] | i32 permutation[rows] if present
 *
 * A 20M-row table costs 80 MB of permutation and a few tens of KB of CDF.
 */
export const PROFILE_MAGIC = 'SWPROF01';
export const PROFILE_VERSION = 1;

interface HeaderTable {
  rows: number;
  lookups: number;
  knots: number;
  permutation: boolean;
}

function bytesOf(a: Int32Array | Float64Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export function writeProfile(file: string, profile: HotnessProfile): void {
  const header = Buffer.from(
    JSON.stringify({
      source: profile.source,
      tables: profile.tables.map((t): HeaderTable => ({ rows: t.rows, lookups: t.lookups, knots: t.knotPos.length, permutation: t.permutation !== null })),
    }),
  );
  const head = Buffer.alloc(16);
  head.write(PROFILE_MAGIC, 0, 'latin1');
  head.writeUInt32LE(PROFILE_VERSION, 8);
  head.writeUInt32LE(header.length, 12);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, head);
    fs.writeSync(fd, header);
    for (const t of profile.tables) {
      fs.writeSync(fd, bytesOf(t.knotPos));
      fs.writeSync(fd, bytesOf(t.knotCdf));
      if (t.permutation) fs.writeSync(fd, bytesOf(t.permutation));
    }
  } finally {
    fs.closeSync(fd);
  }
}

export interface ProfileHeader {
  source: string;
  tables: HeaderTable[];
}

export interface ReadProfileOptions {
  /** Which tables' permutations to read (default: all); the others come back null. */
  permutationsOf?: (table: number) => boolean;
}

/** An open profile file: reads sections in order, checking each fits. */
class ProfileReader {
  at = 0;
  readonly size: number;
  constructor(readonly file: string, readonly fd: number) {
    this.size = fs.fstatSync(fd).size;
  }
  read(target: Uint8Array, what: string): void {
    this.need(target.byteLength, what);
    fs.readSync(this.fd, target, 0, target.byteLength, this.at);
    this.at += target.byteLength;
  }
  skip(bytes: number, what: string): void {
    this.need(bytes, what);
    this.at += bytes;
  }
  private need(bytes: number, what: string): void {
    if (this.at + bytes > this.size) throw profileError(this.file, `is truncated: ${what} needs ${bytes} bytes at offset ${this.at}, the file ends at ${this.size}`);
  }
}

function readHeader(r: ProfileReader, config?: ModelConfig): ProfileHeader {
  const { file } = r;
  const head = Buffer.alloc(16);
  r.read(head, 'the header');
  if (head.toString('latin1', 0, 8) !== PROFILE_MAGIC) throw profileError(file, 'is not a shardwise profile (bad magic)');
  const version = head.readUInt32LE(8);
  if (version !== PROFILE_VERSION) throw profileError(file, `has profile version ${version}; this build reads version ${PROFILE_VERSION}`);
  const json = Buffer.alloc(head.readUInt32LE(12));
  r.read(json, 'the JSON header');
  let header: ProfileHeader;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch (e) {
    throw profileError(file, `has an unreadable header: ${(e as Error).message}`);
  }
  if (config) {
    const { tables } = header;
    if (tables.length !== config.tables.length) throw profileError(file, `has ${tables.length} tables but model '${config.name}' has ${config.tables.length}`);
    tables.forEach((t, i) => {
      if (t.rows !== config.tables[i].rows) throw profileError(file, `table ${i} has ${t.rows} rows but model '${config.name}' has ${config.tables[i].rows}`, 'profile a trace of this model');
    });
  }
  return header;
}

function withProfile<T>(file: string, body: (r: ProfileReader) => T): T {
  if (!fs.existsSync(file)) throw profileError(file, 'does not exist', 'make one with `shardwise profile --model DIR --trace T --out FILE`');
  const fd = fs.openSync(file, 'r');
  try {
    return body(new ProfileReader(file, fd));
  } finally {
    fs.closeSync(fd);
  }
}

/** The header alone (sizes, lookups, which tables have permutations); with `config`, checked against the model. */
export const readProfileHeader = (file: string, config?: ModelConfig): ProfileHeader => withProfile(file, (r) => readHeader(r, config));

/** Reads a profile; with `config`, also checks it was made for a model of these table sizes. */
export function readProfile(file: string, config?: ModelConfig, opts: ReadProfileOptions = {}): HotnessProfile {
  return withProfile(file, (r) => {
    const header = readHeader(r, config);
    const tables = header.tables.map((h, t): TableProfile => {
      const knotPos = new Int32Array(h.knots);
      const knotCdf = new Float64Array(h.knots);
      r.read(new Uint8Array(knotPos.buffer), `table ${t}'s CDF knots`);
      r.read(new Uint8Array(knotCdf.buffer), `table ${t}'s CDF values`);
      let permutation: Int32Array | null = null;
      if (h.permutation && (opts.permutationsOf?.(t) ?? true)) {
        permutation = new Int32Array(h.rows);
        r.read(new Uint8Array(permutation.buffer), `table ${t}'s permutation`);
      } else if (h.permutation) {
        r.skip(4 * h.rows, `table ${t}'s permutation`);
      }
      if (knotPos[0] !== 0 || knotPos[h.knots - 1] !== h.rows) throw profileError(file, `table ${t}: CDF knots must run from 0 to ${h.rows}`);
      return { rows: h.rows, lookups: h.lookups, knotPos, knotCdf, permutation };
    });
    return { source: header.source, tables };
  });
}

/** Bytes hashed per read. */
const CHECKSUM_CHUNK_BYTES = 16 << 20;

/** A plan's record of the profile it serves in the hotness order of: its absolute path and checksum. */
export const planHotness = (file: string): { profile: string; checksum: string } => ({ profile: path.resolve(file), checksum: profileChecksum(file) });

/** sha256 of a profile file, hex: what a plan and the hotness-ordered copies of its tables are keyed by. */
export function profileChecksum(file: string): string {
  return withProfile(file, (r) => {
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(Math.min(CHECKSUM_CHUNK_BYTES, r.size));
    for (let at = 0; at < r.size; ) {
      const got = fs.readSync(r.fd, chunk, 0, Math.min(chunk.length, r.size - at), at);
      if (got === 0) break;
      hash.update(chunk.subarray(0, got));
      at += got;
    }
    return hash.digest('hex');
  });
}
