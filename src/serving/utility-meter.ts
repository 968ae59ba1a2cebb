import type { LookupRequest } from './messages.ts';
import { stampRows } from '../kernels/stamp-rows.ts';

/**
 * A shard's measured memory utility (ElasticRec's metric): the share of the rows it holds
 * that one window of queries touched. A row is stamped with the window's number on its first
 * touch, so the meter costs one byte per held row and a compare per lookup (src/kernels/stamp-rows.ts), and a new window
 * needs no clearing (except when the 8-bit stamp wraps, every 255 windows).
 */
export class UtilityMeter {
  private readonly stamp: Uint8Array;
  /** Piece p's rows are stamp[pieceBase[p] ..]. */
  private readonly pieceBase: Int32Array;
  private window = 1;
  private touched = 0;
  private samples = 0;

  constructor(pieceRows: number[], private readonly windowSamples: number, private readonly onWindow: (utility: number) => void) {
    this.pieceBase = new Int32Array(pieceRows.length + 1);
    pieceRows.forEach((rows, p) => (this.pieceBase[p + 1] = this.pieceBase[p] + rows));
    this.stamp = new Uint8Array(this.pieceBase[pieceRows.length]);
  }

  get rowsHeld(): number {
    return this.stamp.length;
  }

  /** Counts a served request (its ids already checked by the gather) and the samples it stood for. */
  record(req: LookupRequest): void {
    const { batch, pieces, offsets, ids } = req;
    let touched = 0;
    for (let p = 0; p < pieces; p++) touched += stampRows(this.stamp, this.pieceBase[p], this.window, ids, offsets, batch, p, pieces);
    this.touched += touched;
    this.samples += batch + req.idleSamples;
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
