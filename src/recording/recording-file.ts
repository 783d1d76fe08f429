import path from 'node:path';
import { wallMonoPair } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import type { CapturedFrame } from '../pipeline/captured-frame.ts';
import type { TimedTsFile } from '../pipeline/recording-sink.ts';
import type { Store } from '../storage/store.ts';
import { stampAccessUnit } from '../pipeline/au-sei.ts';
import { bootId, createSidecar, replaceSidecar, sidecarPathFor, type Sidecar } from '../storage/sidecar.ts';
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
  triggerSource: string | null;
  triggerMonoUs: number | null;
  fsyncIntervalMs: number;
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
  /** Frames handed to the file writer: the next one is frame `queued + 1` (its index in the SEI and the row). */
  private queued = 0;
  private warnedUnstamped = false;
  private firstUs: number | null = null;
  private lastUs: number | null = null;
  private closed: Promise<RecordingSummary> | null = null;
  private readonly syncTimer: NodeJS.Timeout;
  /** The JSON sidecar as written at start; completed at stop. */
  private readonly sidecar: Sidecar;
  readonly sidecarPath: string;

  constructor(private readonly o: RecordingFileOptions) {
    const { monoUs: mono0, wallUs: wall0 } = wallMonoPair();
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
    });
    this.sidecarPath = sidecarPathFor(o.file);
    this.sidecar = this.describe(mono0, wall0);
    try {
      createSidecar(this.sidecarPath, this.sidecar); // its directory fsync covers the .csv's new entry too
    } catch (err) {
      void this.ts.close();
      void this.csv.close();
      o.store.finishRecording(this.id, { state: 'interrupted', frames: 0, dropped: 0, bytes: 0, reason: `sidecar not written: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      throw err;
    }
    this.timer = new FrameTimer(this.id, o.fps, mono0, wall0, o.prevCaptureUs ?? null);
    this.flushTimer = setInterval(() => this.flushRows(), 250);
    this.flushTimer.unref();
    this.syncTimer = setInterval(() => void this.csv.sync(), o.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  /** What the sidecar says at start: everything needed to rebuild this recording's rows from the files alone. */
  private describe(mono0: number, wall0: number): Sidecar {
    const o = this.o;
    const trial = o.trialId !== null ? o.store.trial(o.trialId) : undefined;
    const session = trial ? o.store.session(trial.session_id) : undefined;
    const json = (s: string | undefined): Record<string, unknown> => (s ? (JSON.parse(s) as Record<string, unknown>) : {});
    return {
      format: 'rigcam-recording/1',
      recording: {
        camera_id: o.cameraId,
        segment: o.segment,
        codec: 'h264',
        encoder: o.encoder,
        width: o.width,
        height: o.height,
        fps_nominal: o.fps,
        clock: o.clock,
        mono0_us: mono0,
        wall0_us: wall0,
        trigger_source: o.triggerSource,
        trigger_mono_us: o.triggerMonoUs,
        started_at: new Date(wall0 / 1000).toISOString(),
      },
      camera: { backend: o.store.cameraRow(o.cameraId)?.backend ?? 'unknown' },
      session: { name: session?.name ?? path.basename(path.dirname(o.file)), metadata: json(session?.metadata) },
      trial: trial
        ? { number: trial.number, label: trial.label, metadata: json(trial.metadata), trigger_source: trial.trigger_source, trigger_mono_us: trial.trigger_mono_us }
        : null,
      owner: { pid: process.pid, boot_id: bootId() },
      state: 'recording',
      frames: null,
      dropped: null,
      stop_reason: null,
      stopped_at: null,
    };
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

  /**
   * Queue one frame, carrying its timing in an SEI (frame index, capture and wall time: the values of its row);
   * its timing row is made when it is on disk.
   */
  writeFrame(f: CapturedFrame, flags: string[], expectedGap: boolean): boolean {
    const index = this.queued + 1;
    const stamped = stampAccessUnit(f.au.packets, { frameIndex: index, captureUs: f.captureUs, wallUs: this.timer.wallUs(f.captureUs) });
    if (!stamped && !this.warnedUnstamped) {
      this.warnedUnstamped = true;
      this.o.log.warn({ recording: this.id, frame: index }, 'frame written without its timing SEI (access unit not readable)');
    }
    const ok = this.ts.write(
      stamped ?? f.au.packets,
      () => {
        const row = this.timer.next({
          captureUs: f.captureUs,
          pts: f.au.ptsRaw,
          keyframe: f.au.keyframe,
          bytes: f.au.payloadBytes,
          flags: f.au.discontinuity ? [...flags, 'discontinuity'] : flags,
          expectedGap,
        });
        if (row.index !== index) this.o.log.error({ recording: this.id, row: row.index, sei: index }, 'frame index of row and SEI differ');
        this.rows.push(row);
        this.firstUs ??= f.captureUs;
        this.lastUs = f.captureUs;
        if (this.triggerFrame === null && this.o.triggerMonoUs !== null && f.captureUs >= this.o.triggerMonoUs) {
          this.triggerFrame = row.index;
          this.o.store.setTriggerFrame(this.id, row.index);
        }
      },
      stamped !== null,
    );
    if (ok) this.queued += 1;
    return ok;
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
    clearInterval(this.syncTimer);
    await this.ts.close();
    this.flushRows();
    await this.csv.close();
    const err = this.ts.error;
    const finalState = err ? 'interrupted' : state;
    const finalReason = err ? `write failed: ${(err as NodeJS.ErrnoException).code ?? err.message}` : reason;
    this.o.store.finishRecording(this.id, {
      state: finalState,
      frames: this.timer.frames,
      dropped: this.timer.droppedFrames,
      bytes: this.ts.bytesWritten,
      reason: finalReason,
    });
    try {
      replaceSidecar(this.sidecarPath, {
        ...this.sidecar,
        state: finalState,
        frames: this.timer.frames,
        dropped: this.timer.droppedFrames,
        stop_reason: finalReason,
        stopped_at: new Date().toISOString(),
      });
    } catch (err) {
      // The database and CSV have it; a rebuild from the files then reads the frames from the video itself.
      this.o.log.error({ err, recording: this.id, sidecar: this.sidecarPath }, 'sidecar not completed');
    }
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
    };
  }
}
