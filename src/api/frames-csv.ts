import { CSV_HEADER, csvField, csvLine, type CsvContext } from '../timing/csv-format.ts';
import { toFrameRow, type FrameDbRow, type Store } from '../storage/store.ts';

/** The sidecar's columns plus the trial's markers that fall on each frame. */
export const FRAMES_CSV_HEADER = `${CSV_HEADER},markers`;
const FRAME_COLUMNS = CSV_HEADER.split(',').length;

export interface Marker {
  name: string;
  mono_us: number;
}

type DbFrame = FrameDbRow;

/** A line that carries markers but no frame (before the first or after the last frame). */
function markerOnlyLine(ctx: CsvContext, labels: string[]): string {
  const fixed = [String(ctx.trial), csvField(ctx.module), csvField(ctx.deviceId), csvField(ctx.label)];
  return [...fixed, ...Array<string>(FRAME_COLUMNS - fixed.length).fill(''), csvField(labels.join(';'))].join(',');
}

/**
 * Places markers on frames: a marker goes on the first frame captured at or after it, i.e. on frame N when
 * capture(N-1) < marker <= capture(N). Markers before the first frame go on a frame-less line before it,
 * markers after the last frame on a frame-less line at the end, so none is lost or moved onto a wrong frame.
 * Frames arrive in pages (long recordings are never held whole); the placer keeps only its position.
 */
export class MarkerPlacer {
  private next = 0;
  private seenFrame = false;

  constructor(private readonly markers: readonly Marker[]) {}

  /** Lines for one page of frames, in order. */
  lines(ctx: CsvContext, recordingId: number, frames: readonly DbFrame[]): string[] {
    const out: string[] = [];
    for (const f of frames) {
      const labels: string[] = [];
      while (this.next < this.markers.length && this.markers[this.next]!.mono_us <= f.capture_us) labels.push(this.markers[this.next++]!.name);
      if (!this.seenFrame && labels.length) {
        // Strictly before the first frame: its own line; exactly at the first frame's capture: on that frame.
        const before = labels.splice(0, labels.length - this.countAt(f.capture_us));
        if (before.length) out.push(markerOnlyLine(ctx, before));
      }
      this.seenFrame = true;
      out.push(`${csvLine(ctx, toFrameRow(recordingId, f))},${csvField(labels.join(';'))}`);
    }
    return out;
  }

  /** The line for markers after the last frame, if any. */
  tail(ctx: CsvContext): string | null {
    const rest = this.markers.slice(this.next).map((m) => m.name);
    this.next = this.markers.length;
    return rest.length ? markerOnlyLine(ctx, rest) : null;
  }

  /** How many of the markers just taken have exactly this capture time (they belong on the frame). */
  private countAt(captureUs: number): number {
    let n = 0;
    for (let i = this.next - 1; i >= 0 && this.markers[i]!.mono_us === captureUs; i--) n++;
    return n;
  }
}

/** Yields the CSV text of a recording in chunks of at most `pageSize` frames, reading SQLite page by page. */
export function* framesCsvChunks(store: Store, recordingId: number, ctx: CsvContext, markers: readonly Marker[], pageSize = 5000): Generator<string> {
  const placer = new MarkerPlacer(markers);
  yield FRAMES_CSV_HEADER + '\n';
  let after = 0;
  for (;;) {
    const page = store.framesAfter(recordingId, after, pageSize);
    if (!page.length) break;
    after = page[page.length - 1]!.frame_index;
    yield placer.lines(ctx, recordingId, page).join('\n') + '\n';
    if (page.length < pageSize) break;
  }
  const tail = placer.tail(ctx);
  if (tail) yield tail + '\n';
}
