import path from 'node:path';
import { wallMonoPair, type WallMonoPair } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import type { CapturedFrame } from '../pipeline/captured-frame.ts';
import type { TimedTsFile } from '../pipeline/recording-sink.ts';
import type { Store } from '../storage/store.ts';
import { FrameTimer, type FrameRow } from '../timing/frame-row.ts';
import type { CsvContext } from '../timing/csv-format.ts';
import { TimingCsvWriter } from './timing-csv.ts';
import { TsFileWriter } from './ts-file-writer.ts';

export interface RecordingFileOptions {
  store: Store;
  log: Logger;
  root: string;
  /** Absolute path of the .ts file (already checked to be inside the root). */
  file: string;
  trialId: number | null;
  cameraId: string;
  segment: number;
  csv: CsvContext;
  encoder: string;
  width: number;
  height: number;
  fps: number;
  clock: string;
  /** Where the capture times come from (v4l2-monotonic, rpicam-sensor, rpicam-wallclock, synthetic). */
  clockSource?: string | null;
  triggerSource: string | null;
  triggerMonoUs: number | null;
  fsyncIntervalMs: number;
  /** The trial's wall↔monotonic pair (all its cameras share it); default: one taken now. */
  pair?: WallMonoPair;
  /** The recorder's stop hold (stored: what it adds to write latency). */
  stopHoldMs?: number;
  /** Continuing segment: capture time of the previous segment's last frame (the gap shows on the first row). */
  prevCaptureUs?: number | null;
  /** Called once when writing fails (disk full, I/O error). */
  onWriteError: (err: Error) => void;
}

export interface RecordingSummary {
  recordingId: number;
  path: string;
  csv: string;
  frames: number;
  dropped: number;
  bytes: number;
  triggerFrameIndex: number | null;
  durationS: number;
  state: 'complete' | 'interrupted';
  reason: string | null;
  clockSource: string | null;
  /** Video before the trigger, seconds. */
  prerollS: number;
  /** The first frame came more than a frame period after the trigger: by this much (µs); else null. */
  lateStartUs: number | null;
}

/**
 * One video file with its frame timing: the .ts, its CSV sidecar and its rows in SQLite. A frame's row is made
 * when its last byte is in the file, so rows, CSV and file agree even when the disk fills mid-frame.
 * Frames reach it through a RecordingSink (pipeline/recording-sink.ts), which owns the keyframe/PSI gate.
 */
export class RecordingFile implements TimedTsFile {
  readonly id: number;
  readonly relPath: string;
  readonly csvPath: string;
  private readonly ts: TsFileWriter;
  private readonly csv: TimingCsvWriter;
  private readonly timer: FrameTimer;
  private rows: FrameRow[] = [];
  private readonly flushTimer: NodeJS.Timeout;
  private triggerFrame: number | null = null;
  private firstUs: number | null = null;
  private lastUs: number | null = null;
  private lateStartUs: number | null = null;
  private closed: Promise<RecordingSummary> | null = null;

  constructor(private readonly o: RecordingFileOptions) {
    const { monoUs: mono0, wallUs: wall0 } = o.pair ?? wallMonoPair();
    const csvFile = o.file.replace(/\.ts$/, '.csv');
    this.relPath = path.relative(o.root, o.file);
    this.csvPath = path.relative(o.root, csvFile);
    this.ts = new TsFileWriter(o.file, { fsyncIntervalMs: o.fsyncIntervalMs, onError: (e) => o.onWriteError(e) });
    try {
      this.csv = new TimingCsvWriter(csvFile, o.csv);
    } catch (err) {
      void this.ts.close();
      throw err;
    }
    this.id = o.store.createRecording({
      trialId: o.trialId,
      cameraId: o.cameraId,
      segment: o.segment,
      path: this.relPath,
      csvPath: this.csvPath,
      codec: 'h264',
      encoder: o.encoder,
      width: o.width,
      height: o.height,
      fpsNominal: o.fps,
      clock: o.clock,
      mono0Us: mono0,
      wall0Us: wall0,
      triggerSource: o.triggerSource,
      triggerMonoUs: o.triggerMonoUs,
      stopHoldMs: o.stopHoldMs ?? null,
      clockSource: o.clockSource ?? null,
    });
    this.timer = new FrameTimer(this.id, o.fps, mono0, wall0, o.prevCaptureUs ?? null);
    this.flushTimer = setInterval(() => this.flushRows(), 250);
    this.flushTimer.unref();
  }

  get frames(): number {
    return this.timer.frames;
  }

  get dropped(): number {
    return this.timer.droppedFrames;
  }

  get pending(): { bytes: number; frames: number } {
    return this.ts.pending;
  }

  get bytes(): number {
    return this.ts.bytesWritten;
  }

  get failed(): boolean {
    return this.ts.error !== null;
  }

  writePsi(psi: Buffer): void {
    this.ts.write(psi);
  }

  /** Queue one frame; its timing row is made when it is on disk. */
  writeFrame(f: CapturedFrame, flags: string[], expectedGap: boolean): boolean {
    return this.ts.write(f.au.packets, () => {
      const rowFlags = f.au.discontinuity ? [...flags, 'discontinuity'] : [...flags];
      // A first segment's file that begins more than a frame period after its trigger started late (the camera
      // was being assigned or restarted): never silently.
      const trigger = this.o.triggerMonoUs;
      const late = this.firstUs === null && this.o.segment === 0 && trigger !== null && f.captureUs - trigger > 1e6 / (this.o.fps || 30);
      if (late) rowFlags.push('late_start');
      const row = this.timer.next({
        captureUs: f.captureUs,
        pts: f.au.ptsRaw,
        keyframe: f.au.keyframe,
        bytes: f.au.payloadBytes,
        flags: rowFlags,
        expectedGap,
      });
      if (late) {
        this.lateStartUs = f.captureUs - trigger;
        this.o.store.setRecordingBounds(this.id, { lateStartUs: this.lateStartUs });
        this.o.log.warn({ recording: this.id, camera: this.o.cameraId, lateStartUs: this.lateStartUs }, 'recording started late: its first frame came after the trigger');
      }
      this.rows.push(row);
      this.firstUs ??= f.captureUs;
      this.lastUs = f.captureUs;
      if (this.triggerFrame === null && this.o.triggerMonoUs !== null && f.captureUs >= this.o.triggerMonoUs) {
        this.triggerFrame = row.index;
        this.o.store.setTriggerFrame(this.id, row.index);
      }
    });
  }

  private flushRows(): void {
    if (!this.rows.length) return;
    const rows = this.rows;
    this.rows = [];
    try {
      this.o.store.insertFrames(rows);
      this.o.store.updateRecordingProgress(this.id, { frames: this.timer.frames, dropped: this.timer.droppedFrames, bytes: this.ts.bytesWritten });
    } catch (err) {
      this.o.log.error({ err, recording: this.id }, 'frame timing insert failed');
    }
    this.csv.append(rows);
  }

  /** Flush everything, fsync, mark the recording in the database. Idempotent. */
  close(state: 'complete' | 'interrupted', reason: string | null): Promise<RecordingSummary> {
    this.closed ??= this.doClose(state, reason);
    return this.closed;
  }

  private async doClose(state: 'complete' | 'interrupted', reason: string | null): Promise<RecordingSummary> {
    clearInterval(this.flushTimer);
    await this.ts.close();
    this.flushRows();
    await this.csv.close();
    const err = this.ts.error;
    const trigger = this.o.triggerMonoUs;
    const prerollS = trigger !== null && this.firstUs !== null ? Math.max(0, trigger - this.firstUs) / 1e6 : 0;
    this.o.store.setRecordingBounds(this.id, { prerollS });
    const finalState = err ? 'interrupted' : state;
    const finalReason = err ? `write failed: ${(err as NodeJS.ErrnoException).code ?? err.message}` : reason;
    this.o.store.finishRecording(this.id, {
      state: finalState,
      frames: this.timer.frames,
      dropped: this.timer.droppedFrames,
      bytes: this.ts.bytesWritten,
      reason: finalReason,
    });
    return {
      recordingId: this.id,
      path: this.o.file,
      csv: this.o.file.replace(/\.ts$/, '.csv'),
      frames: this.timer.frames,
      dropped: this.timer.droppedFrames,
      bytes: this.ts.bytesWritten,
      triggerFrameIndex: this.triggerFrame,
      durationS: this.firstUs !== null && this.lastUs !== null ? (this.lastUs - this.firstUs) / 1e6 + 1 / this.o.fps : 0,
      state: finalState,
      reason: finalReason,
      clockSource: this.o.clockSource ?? null,
      prerollS,
      lateStartUs: this.lateStartUs,
    };
  }
}
