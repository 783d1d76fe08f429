import { unlinkSync } from 'node:fs';
import path from 'node:path';
import { wallMonoPair, type WallMonoPair } from '../clock.ts';
import type { RpicamSyncState } from '../sources/rpicam-source.ts';
import type { HwTrigger } from '../sources/rpicam-controls.ts';
import type { Logger } from '../log/logger.ts';
import type { CapturedFrame } from '../pipeline/captured-frame.ts';
import type { TimedTsFile } from '../pipeline/recording-sink.ts';
import type { Store } from '../storage/store.ts';
import { stampAccessUnitParts } from '../pipeline/au-sei.ts';
import { bootId, createSidecar, replaceSidecarAsync, sidecarPathFor, type ControlChangeNote, type Sidecar } from '../storage/sidecar.ts';
import { FrameTimer, type FrameRow } from '../timing/frame-row.ts';
import type { CsvContext } from '../timing/csv-format.ts';
import { TimingCsvWriter } from './timing-csv.ts';
import type { StartSyncs } from './start-syncs.ts';
import { TsFileWriter } from './ts-file-writer.ts';

/** Remove a file this recording created itself (exclusively) when its start fails; nothing else is ever removed. */
function removeOwn(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    /* already gone */
  }
}

/** How long a close keeps retrying rows and the final update the database refuses (a lock held elsewhere). */
const CLOSE_RETRY_MS = 3000;

/** Run `fn` until it does not throw or the deadline passes; true when it succeeded. */
async function retryUntil(deadline: number, fn: () => void): Promise<boolean> {
  for (;;) {
    try {
      fn();
      return true;
    } catch {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

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
  /** A CSI sync camera's rpicam-vid --sync state when the file opened (null: not a sync camera). */
  cameraSync?: RpicamSyncState | null;
  /** An externally triggered camera's trigger settings (stored to check its frames against the pulses). */
  hwTrigger?: HwTrigger | null;
  triggerSource: string | null;
  triggerMonoUs: number | null;
  fsyncIntervalMs: number;
  /**
   * The start's batch of fsyncs: the files, their directory entries and the database row are synced there (before
   * the start is announced) instead of one by one here. Without it, everything is durable when this returns.
   */
  syncs?: StartSyncs;
  /** The trial's wall↔monotonic pair (all its cameras share it); default: one taken now. */
  pair?: WallMonoPair;
  /** The recorder's stop hold (stored: what it adds to write latency). */
  stopHoldMs?: number;
  /** Continuing segment: capture time of the previous segment's last frame (the gap shows on the first row). */
  prevCaptureUs?: number | null;
  /** Called once when writing fails (disk full, I/O error). */
  onWriteError: (err: Error) => void;
  /** The camera's control values as this file starts (V4L2 values, CSI options), for the sidecar. */
  controls?: Record<string, number | string>;
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
  /** Rows in the CSV but not yet in the database (kept across failed inserts). */
  private unsaved: FrameRow[] = [];
  private unsavedTrigger: number | null = null;
  private dbFailing = false;
  private writeErrorSent = false;
  private readonly flushTimer: NodeJS.Timeout;
  private triggerFrame: number | null = null;
  /** Frames handed to the file writer: the next one is frame `queued + 1` (its index in the SEI and the row). */
  private queued = 0;
  private warnedUnstamped = false;
  private firstUs: number | null = null;
  private lastUs: number | null = null;
  private lateStartUs: number | null = null;
  private closed: Promise<RecordingSummary> | null = null;
  private readonly syncTimer: NodeJS.Timeout;
  /** The JSON sidecar as written at start; completed at stop. */
  private readonly sidecar: Sidecar;
  /** Control changes while this file was written: in the sidecar at stop. */
  private readonly controlChanges: ControlChangeNote[] = [];
  readonly sidecarPath: string;

  constructor(private readonly o: RecordingFileOptions) {
    const { monoUs: mono0, wallUs: wall0 } = o.pair ?? wallMonoPair();
    const csvFile = o.file.replace(/\.ts$/, '.csv');
    this.relPath = path.relative(o.root, o.file);
    this.csvPath = path.relative(o.root, csvFile);
    this.ts = new TsFileWriter(o.file, { fsyncIntervalMs: o.fsyncIntervalMs, onError: (e) => this.writeError(e), syncs: o.syncs });
    try {
      this.csv = new TimingCsvWriter(csvFile, o.csv);
    } catch (err) {
      // A failed start removes what it made: the .ts was created exclusively just now, so it is ours and empty.
      void this.ts.close().finally(() => removeOwn(o.file));
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
      cameraSync: o.cameraSync ? JSON.stringify(o.cameraSync) : null,
      hwTrigger: o.hwTrigger ? JSON.stringify(o.hwTrigger) : null,
    }, !o.syncs);
    if (o.syncs) o.syncs.also('database', () => o.store.syncCommitted());
    this.sidecarPath = sidecarPathFor(o.file);
    this.sidecar = this.describe(mono0, wall0);
    try {
      createSidecar(this.sidecarPath, this.sidecar, !o.syncs); // its directory fsync covers the .csv's new entry too
      if (o.syncs) {
        o.syncs.file(this.sidecarPath);
        o.syncs.entryOf(this.sidecarPath);
      }
    } catch (err) {
      // The .ts and .csv were created exclusively just now (ours, no frame yet): removed; the sidecar is not ours.
      void this.ts.close().finally(() => removeOwn(o.file));
      void this.csv.close().finally(() => removeOwn(csvFile));
      o.store.finishRecording(this.id, { state: 'interrupted', frames: 0, dropped: 0, bytes: 0, reason: `sidecar not written: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      throw err;
    }
    this.timer = new FrameTimer(this.id, o.fps, mono0, wall0, o.prevCaptureUs ?? null);
    this.flushTimer = setInterval(() => this.flushRows(), 250);
    this.flushTimer.unref();
    this.syncTimer = setInterval(() => void this.csv.sync(), o.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  /** A control changed while this file is written: kept for the sidecar's `controls.changes` at stop. */
  noteControlChange(c: ControlChangeNote): void {
    this.controlChanges.push(c);
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
      camera: { backend: o.store.cameraRow(o.cameraId)?.backend ?? 'unknown', ...(o.cameraSync ? { sync: o.cameraSync } : {}) },
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
      ...(o.controls ? { controls: { at_start: { ...o.controls }, changes: [] } } : {}),
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
    const stamped = stampAccessUnitParts(f.au.packets, { frameIndex: index, captureUs: f.captureUs, wallUs: this.timer.wallUs(f.captureUs) });
    if (!stamped && !this.warnedUnstamped) {
      this.warnedUnstamped = true;
      this.o.log.warn({ recording: this.id, frame: index }, 'frame written without its timing SEI (access unit not readable)');
    }
    const ok = this.ts.write(
      stamped ?? f.au.packets,
      () => {
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
          this.o.log.warn({ recording: this.id, camera: this.o.cameraId, lateStartUs: this.lateStartUs }, 'recording started late: its first frame came after the trigger');
          try {
            this.o.store.setRecordingBounds(this.id, { lateStartUs: this.lateStartUs });
          } catch {
            /* a held lock: written again at close */
          }
        }
        if (row.index !== index) this.o.log.error({ recording: this.id, row: row.index, sei: index }, 'frame index of row and SEI differ');
        this.rows.push(row);
        this.firstUs ??= f.captureUs;
        this.lastUs = f.captureUs;
        if (this.triggerFrame === null && this.o.triggerMonoUs !== null && f.captureUs >= this.o.triggerMonoUs) {
          this.triggerFrame = row.index;
          this.unsavedTrigger = row.index;
        }
      },
    );
    if (ok) this.queued += 1;
    return ok;
  }

  /**
   * Rows go to the CSV at once and to the database in one transaction; rows the database refused (a lock held by
   * another process, a full disk) are kept and retried at the next flush, never dropped. True when nothing is
   * left unsaved.
   */
  private flushRows(): boolean {
    if (this.rows.length) {
      this.csv.append(this.rows);
      this.unsaved = this.unsaved.length ? this.unsaved.concat(this.rows) : this.rows;
      this.rows = [];
    }
    if (!this.unsaved.length && this.unsavedTrigger === null) return true;
    try {
      this.o.store.transactionNoWait(() => {
        this.o.store.insertFrames(this.unsaved);
        if (this.unsavedTrigger !== null) this.o.store.setTriggerFrame(this.id, this.unsavedTrigger);
        this.o.store.updateRecordingProgress(this.id, { frames: this.timer.frames, dropped: this.timer.droppedFrames, bytes: this.ts.bytesWritten });
      });
      this.unsaved = [];
      this.unsavedTrigger = null;
      if (this.dbFailing) this.o.log.warn({ recording: this.id }, 'frame timing insert works again; kept rows saved');
      this.dbFailing = false;
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!this.dbFailing) this.o.log.error({ err: (err as Error).message, code, recording: this.id, unsaved: this.unsaved.length }, 'frame timing insert failed; rows kept for retry');
      this.dbFailing = true;
      // A full or failing database stops the recording like a full disk; a busy one is only retried.
      if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR')) this.writeError(err as Error);
      return false;
    }
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
    // Kept rows get a few more seconds (a lock held elsewhere); what still fails is left to the reconcile.
    const deadline = Date.now() + CLOSE_RETRY_MS;
    while (!this.flushRows() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await this.csv.close();
    const err = this.ts.error;
    const trigger = this.o.triggerMonoUs;
    const prerollS = trigger !== null && this.firstUs !== null ? Math.max(0, trigger - this.firstUs) / 1e6 : 0;
    await retryUntil(deadline + CLOSE_RETRY_MS, () => this.o.store.setRecordingBounds(this.id, { prerollS, ...(this.lateStartUs !== null ? { lateStartUs: this.lateStartUs } : {}) }));
    let finalState: 'complete' | 'interrupted' = err ? 'interrupted' : state;
    let finalReason = err ? `write failed: ${(err as NodeJS.ErrnoException).code ?? err.message}` : reason;
    const counts = { file: this.timer.frames, database: this.dbRows(), csv: this.csv.rowsWritten };
    let finished = false;
    let unsynced: string | null = null;
    if (counts.database === counts.file && counts.csv === counts.file) {
      // Committed without an fsync on the event loop (a stop's fsyncs were 3 blocking calls per trial, each 10-60 ms
      // on an SD card, with every camera's pipe unread meanwhile): the WAL is synced on the threadpool before the
      // close resolves, so nothing reports the recording finished before its row is on disk.
      finished = await retryUntil(deadline + CLOSE_RETRY_MS, () =>
        this.o.store.finishRecording(this.id, { state: finalState, frames: counts.file, dropped: this.timer.droppedFrames, bytes: this.ts.bytesWritten, reason: finalReason }, false),
      );
      if (finished)
        await this.o.store.syncCommitted().catch((e: NodeJS.ErrnoException) => {
          finished = false;
          unsynced = e.code ?? e.message;
        });
    }
    if (!finished) {
      // File, database and CSV disagree (or the row cannot be closed): the recording stays in state `recording`
      // with the counts as its reason, so the next start reconciles rows and CSV from the file.
      finalState = 'interrupted';
      const what = unsynced !== null ? `database not synced (${unsynced})` : `timing incomplete (file ${counts.file} frames, database ${counts.database} rows, CSV ${counts.csv} rows)`;
      finalReason = `${what}: reconciled from the file at the next start${finalReason ? `; ${finalReason}` : ''}`;
      this.o.log.error({ recording: this.id, ...counts, unsynced }, 'recording not closed cleanly; marked for reconcile');
      try {
        this.o.store.markForReconcile(this.id, finalReason);
      } catch {
        /* still state `recording` in the database: reconciled at the next start all the same */
      }
    }
    try {
      await replaceSidecarAsync(this.sidecarPath, {
        ...this.sidecar,
        ...(this.sidecar.controls ? { controls: { ...this.sidecar.controls, changes: [...this.controlChanges] } } : {}),
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
      clockSource: this.o.clockSource ?? null,
      prerollS,
      lateStartUs: this.lateStartUs,
    };
  }

  private writeError(err: Error): void {
    if (this.writeErrorSent) return;
    this.writeErrorSent = true;
    this.o.onWriteError(err);
  }

  /** The recording's rows in the database, or -1 when it cannot be read. */
  private dbRows(): number {
    try {
      return this.o.store.frameCount(this.id);
    } catch {
      return -1;
    }
  }
}
