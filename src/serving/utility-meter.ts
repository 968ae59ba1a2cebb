import type { LookupRequest } from './messages.ts';
import { stampRows, trackedPosition } from '../kernels/stamp-rows.ts';

/**
 * Rows a meter tracks at least, when it samples: the share touched, a proportion, is then
 * read to within 0.6 points (two standard errors) of the share over all rows.
 */
export const MIN_TRACKED_ROWS = 1 << 15;

/**
 * A shard's measured memory utility (ElasticRec's metric): the share of the rows it holds
 * that one window of queries touched. A row is stamped with the window's number on its first
 * touch, so the meter costs one byte per tracked row and a compare per lookup
 * (src/kernels/stamp-rows.ts), and a new window needs no clearing (except when the 8-bit stamp
 * wraps, every 255 windows). A shard of 2 × MIN_TRACKED_ROWS rows or more tracks a
 * systematic sample of them: one row in every 2^s of each piece, the middle of its block in
 * hotness order, so that the stamps' random writes (a hot shard's second pass over every id,
 * behind its gather) touch 2^s times fewer bytes; a 20M-row shard keeps 20k stamps, not 20 MB.
 */
export class UtilityMeter {
  private readonly stamp: Uint8Array;
  /** Piece p's tracked rows are stamp[pieceBase[p] ..]. */
  private readonly pieceBase: Int32Array;
  /** One row in 2^sampleShift is tracked. */
  readonly sampleShift: number;
  readonly rowsHeld: number;
  private window = 1;
  private touched = 0;
  private samples = 0;

  constructor(pieceRows: number[], private readonly windowSamples: number, private readonly onWindow: (utility: number) => void, minTrackedRows = MIN_TRACKED_ROWS) {
    this.rowsHeld = pieceRows.reduce((a, b) => a + b, 0);
    let shift = 0;
    while (this.rowsHeld / 2 ** (shift + 1) >= minTrackedRows && shift < 30) shift++;
    this.sampleShift = shift;
    const tracked = trackedPosition(shift);
    this.pieceBase = new Int32Array(pieceRows.length + 1);
    // Ids tracked in a piece of n rows: those ≡ tracked (mod 2^shift) below n.
    pieceRows.forEach((rows, p) => (this.pieceBase[p + 1] = this.pieceBase[p] + (rows > tracked ? Math.floor((rows - 1 - tracked) / 2 ** shift) + 1 : 0)));
    this.stamp = new Uint8Array(this.pieceBase[pieceRows.length]);
  }

  /** Counts a served request (its ids already checked by the gather) and the samples it stood for. */
  record(req: LookupRequest): void {
    this.touched += stampRows(this.stamp, this.pieceBase, this.window, req.ids, req.offsets, req.batch * req.pieces, req.pieces, this.sampleShift);
    this.samples += req.batch + req.idleSamples;
    if (this.samples >= this.windowSamples) this.closeWindow();
  }

  private closeWindow(): void {
    this.onWindow(this.stamp.length > 0 ? this.touched / this.stamp.length : 0);
    this.touched = 0;
    this.samples = 0;
    if (++this.window === 256) {
      this.stamp.fill(0);
      this.window = 1;
    }
  }
}
