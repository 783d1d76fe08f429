import { EventEmitter } from 'node:events';
import { monoNowUs, type WallMonoPair } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import type { CameraPipeline } from '../pipeline/camera-pipeline.ts';
import type { CapturedFrame } from '../pipeline/captured-frame.ts';
import { RecordingSink } from '../pipeline/recording-sink.ts';
import type { ControlChangeNote } from '../storage/sidecar.ts';
import type { Store } from '../storage/store.ts';
import { RecordingFile, type RecordingSummary } from './recording-file.ts';
import { StartSyncs } from './start-syncs.ts';
import type { CsvContext } from '../timing/csv-format.ts';
import type { RpicamSyncState } from '../sources/rpicam-source.ts';
import type { HwTrigger } from '../sources/rpicam-controls.ts';

/** Stop reason of a segment closed because its source restarted: the trial has a gap there. */
export const SOURCE_RESTARTED = 'source restarted';

export type RecorderState = 'idle' | 'waiting_keyframe' | 'recording' | 'paused';

export interface RecorderStart {
  trialId: number | null;
  /** Absolute path of the file of a segment (0 = the first), already confined to the recordings root. */
  fileFor: (segment: number) => string;
  root: string;
  csv: CsvContext;
  triggerSource: string;
  triggerMonoUs: number;
  prerollUs: number;
  /** The trial's wall↔monotonic pair, shared by all its cameras and segments. */
  pair?: WallMonoPair;
  /** The camera's control values as the recording starts (V4L2 values, CSI options), for the sidecar. */
  controls?: Record<string, number | string>;
  /** The start's batch of fsyncs for the first file (see StartSyncs); a later segment runs its own batch. */
  syncs?: StartSyncs;
}

export interface RecorderOptions {
  store: Store;
  log: Logger;
  fsyncIntervalMs: number;
  stopWaitMs: number;
  /** Frames are held this long after capture before they are written (see stop-hold.ts; default 0: none). */
  stopHoldMs?: number;
  /** Memory bound of the hold: beyond it the oldest held frames are written early (logged). */
  holdMaxBytes?: number;
  /** A CSI sync camera's rpicam-vid --sync state, recorded with every segment file as it opens (null: no sync). */
  cameraSync?: () => RpicamSyncState | null;
  /** An externally triggered camera's trigger settings, stored with every segment file. */
  hwTrigger?: () => HwTrigger | null;
}

const HOLD_MAX_BYTES = 64 * 1024 * 1024;
/** How late after its hold the fallback timer releases a frame when no next frame comes to release it. */
const HOLD_SLACK_MS = 20;

interface RecorderEvents {
  /** A file could not be written (disk full...): the recording has been stopped. */
  failed: [{ error: Error; summaries: RecordingSummary[] }];
  /** The source restarted mid-recording: a new segment file began. */
  segment: [{ segment: number; recordingId: number; gapUs: number | null }];
}

/**
 * Writes one camera's part of a trial. Capture never stops; recording only decides which frames of the live
 * stream go to the file, by capture time: from the keyframe at or before (trigger − pre-roll) at start, up to
 * the last frame captured before the stop instant, skipping what was captured during a pause. Because frames
 * arrive after their capture (encoder latency), pause and stop act when the first frame captured at or after
 * their instant arrives, so no frame captured before it is lost. Because a stop or pause may itself be known only
 * after its instant (GPIO minimum pulse width), frames are held `stopHoldMs` after capture before they are
 * decided and written: one that arrives within the hold still cuts exactly at its instant, and nothing is ever
 * taken back from a file.
 */
export class CameraRecorder extends EventEmitter<RecorderEvents> {
  /** 'recording' includes waiting for a keyframe: that gate is the sink's. */
  private st: Exclude<RecorderState, 'waiting_keyframe'> = 'idle';
  private file: RecordingFile | null = null;
  private sink: RecordingSink | null = null;
  private segment = 0;
  private summaries: RecordingSummary[] = [];
  private segmentCloses: Array<Promise<RecordingSummary>> = [];
  private resumeAt: number | null = null;
  private finished = false;
  private start_: RecorderStart | null = null;
  private last: { run: number; seq: number; captureUs: number } | null = null;
  private pauseAt: number | null = null;
  private stopAt: number | null = null;
  private stopReason: string | null = null;
  private nextFlags: string[] = [];
  private nextExpectedGap = false;
  private finishing: Promise<RecordingSummary[]> | null = null;
  private resolveFinish: ((s: RecordingSummary[]) => void) | null = null;
  private stopTimer: NodeJS.Timeout | null = null;
  /** Frames received but not yet decided (captured less than the hold ago), oldest first. */
  private held: CapturedFrame[] = [];
  private heldBytes = 0;
  private lastQueued: { run: number; seq: number } | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private holdOverflowLogged = false;
  /** The start is not announced yet: frames are queued in `held` but not written (see start). */
  private deferWrites = false;
  private readonly onFrame = (f: CapturedFrame): void => this.frame(f);
  /** Control values now (start values plus changes): what a new segment's sidecar starts from. */
  private controlsNow: Record<string, number | string> | null = null;

  constructor(
    private readonly pipeline: CameraPipeline,
    private readonly opts: RecorderOptions,
  ) {
    super();
  }

  get state(): RecorderState {
    return this.st === 'recording' && this.sink?.waitingKeyframe ? 'waiting_keyframe' : this.st;
  }

  get active(): boolean {
    return this.st !== 'idle';
  }

  get current(): { recordingId: number; path: string; segment: number; frames: number; dropped: number; bytes: number; pending: { bytes: number; frames: number } } | null {
    const f = this.file;
    return f ? { recordingId: f.id, path: f.relPath, segment: this.segment, frames: f.frames, dropped: f.dropped, bytes: f.bytes, pending: f.pending } : null;
  }

  /** Open the file (synchronously: a trigger never waits on the event loop) and queue the pre-roll (see StartSyncs.afterAnnounce). */
  start(s: RecorderStart): { recordingId: number; path: string } {
    if (this.st !== 'idle') throw new Error(`camera ${this.pipeline.cameraId} is already recording`);
    this.start_ = s;
    this.segment = 0;
    this.summaries = [];
    this.segmentCloses = [];
    this.last = null;
    this.resumeAt = null;
    this.nextFlags = [];
    this.nextExpectedGap = false;
    this.pauseAt = this.stopAt = null;
    this.stopReason = null;
    this.finishing = null;
    this.held = [];
    this.heldBytes = 0;
    this.lastQueued = null;
    this.holdOverflowLogged = false;
    this.deferWrites = false;
    this.controlsNow = s.controls ? { ...s.controls } : null;
    this.openFile(null, s.syncs);
    this.st = 'recording';
    this.pipeline.on('frame', this.onFrame);
    const backlog = this.pipeline.ring.fromKeyframeAtOrBefore(s.triggerMonoUs - s.prerollUs);
    // With a start's batch of fsyncs, the pre-roll is queued now, in order before any live frame, and written once
    // the start is announced: writing it (~1–2 s of frames copied into the file with their SEI and rows) is CPU and
    // garbage the acknowledgement does not need (issue 17). A failed start's abort writes what is queued, as a stop.
    if (s.syncs) {
      this.deferWrites = true;
      s.syncs.afterAnnounce(() => {
        if (this.start_ !== s) return; // stopped and started again meanwhile: that start owns the queue
        this.deferWrites = false;
        try {
          this.releaseHeld(false);
        } catch (err) {
          void this.fail(err);
        }
      });
    }
    for (const f of backlog) this.frame(f);
    return { recordingId: this.file!.id, path: this.file!.relPath };
  }

  /** A camera control changed during the recording: noted in the current file's sidecar. */
  noteControlChange(c: ControlChangeNote): void {
    if (this.st === 'idle' || !this.file) return;
    if (this.controlsNow) this.controlsNow[c.control] = c.value;
    this.file.noteControlChange(c);
  }

  pause(atUs: number): void {
    if (this.st === 'idle') throw new Error('not recording');
    if (this.st === 'paused' || this.pauseAt !== null) throw new Error('already paused');
    this.pauseAt = atUs;
    if (this.sink?.waitingKeyframe && this.held.length === 0) {
      this.pauseAt = null;
      this.st = 'paused';
    }
  }

  /** Continue the same file from the newest keyframe at or before the resume instant (or seamlessly). */
  resume(atUs: number): void {
    if (this.st === 'idle') throw new Error('not recording');
    // Decide what is held first: frames before the pause go in, those after it are skipped (and come back from
    // the ring below when they are at or after the resume's keyframe).
    this.releaseHeld(true);
    this.lastQueued = this.last ? { run: this.last.run, seq: this.last.seq } : null;
    if (this.pauseAt !== null) {
      // Paused and resumed before the pause took effect: nothing was skipped.
      this.pauseAt = null;
      return;
    }
    if (this.st !== 'paused') throw new Error('not paused');
    this.st = 'recording';
    const backlog = this.pipeline.ring
      .fromKeyframeAtOrBefore(atUs)
      .filter((f) => !this.last || f.run !== this.last.run || f.au.seq > this.last.seq);
    const continuous = this.last && backlog[0] && backlog[0].run === this.last.run && backlog[0].au.seq === this.last.seq + 1;
    if (!continuous) {
      this.sink!.resync();
      this.nextFlags = ['resume'];
      this.nextExpectedGap = true;
    }
    this.resumeAt = atUs;
    for (const f of backlog) this.frame(f);
  }

  /**
   * Stop at `atUs`: frames captured before it are still written as they arrive (bounded by stopWaitMs), then
   * the file is flushed, fsynced and marked complete.
   */
  stop(atUs: number, reason: string | null = null): Promise<RecordingSummary[]> {
    if (this.st === 'idle') return Promise.resolve(this.summaries);
    if (this.finishing) return this.finishing;
    this.stopAt = atUs;
    this.stopReason = reason;
    this.finishing = new Promise((r) => (this.resolveFinish = r));
    const lastSeen = this.pipeline.stats().lastCaptureUs;
    const heldPast = this.held.length > 0 && this.held[this.held.length - 1]!.captureUs >= atUs;
    if (this.st === 'paused' || !this.pipeline.stats().running || heldPast || (lastSeen !== null && lastSeen >= atUs)) void this.finish('complete');
    else this.stopTimer = setTimeout(() => void this.finish('complete'), this.opts.stopWaitMs);
    return this.finishing;
  }

  /** Stop now, whatever is still in flight (camera unplugged, start failed). */
  abort(reason: string, state: 'complete' | 'interrupted' = 'complete'): Promise<RecordingSummary[]> {
    if (this.st === 'idle') return Promise.resolve(this.summaries);
    this.stopReason = reason;
    this.finishing ??= new Promise((r) => (this.resolveFinish = r));
    void this.finish(state);
    return this.finishing;
  }

  private openFile(prevCaptureUs: number | null = null, syncs?: StartSyncs): void {
    const s = this.start_!;
    this.file = new RecordingFile({
      store: this.opts.store,
      log: this.opts.log,
      root: s.root,
      file: s.fileFor(this.segment),
      trialId: s.trialId,
      cameraId: this.pipeline.cameraId,
      segment: this.segment,
      csv: s.csv,
      encoder: this.pipeline.spec?.encoder ?? 'unknown',
      width: this.pipeline.spec?.width ?? 0,
      height: this.pipeline.spec?.height ?? 0,
      fps: this.pipeline.spec?.fps ?? 0,
      clock: this.pipeline.spec?.clock ?? 'monotonic',
      clockSource: this.pipeline.clockSource ?? this.pipeline.spec?.clockSource ?? null,
      cameraSync: this.opts.cameraSync?.() ?? null,
      hwTrigger: this.opts.hwTrigger?.() ?? null,
      triggerSource: s.triggerSource,
      triggerMonoUs: s.triggerMonoUs,
      fsyncIntervalMs: this.opts.fsyncIntervalMs,
      stopHoldMs: this.opts.stopHoldMs ?? 0,
      pair: s.pair,
      ...(this.controlsNow ? { controls: this.controlsNow } : {}),
      prevCaptureUs,
      syncs,
      onWriteError: (error) => void this.fail(error),
    });
    this.sink = new RecordingSink(this.file, () => this.pipeline.psi);
  }

  /** A frame of the live stream (or of the ring's backlog): held until the hold has passed. */
  private frame(f: CapturedFrame): void {
    if (this.st === 'idle' || this.finished) return;
    const q = this.lastQueued;
    if (q && f.run === q.run && f.au.seq <= q.seq) return; // already held or decided
    this.lastQueued = { run: f.run, seq: f.au.seq };
    this.held.push(f);
    this.heldBytes += f.au.payloadBytes;
    // A frame at or after a pending stop instant: everything before it is known, no need to wait out the hold.
    if (this.stopAt !== null && f.captureUs >= this.stopAt) {
      void this.finish('complete');
      return;
    }
    this.releaseHeld(false);
  }

  /**
   * Decide the held frames whose hold has passed (all of them with `all`). Each frame's arrival calls this, so
   * while the stream flows the frames are released by the next frame's wake-up; the timer is only the fallback
   * for a stream that pauses or stops, armed once and never re-armed per frame (it used to be reset per frame and
   * fire per frame: a second wake-up per frame, issue 17). A frame is written at most HOLD_SLACK_MS or one frame
   * interval after its hold, which only keeps it longer where a late stop can still drop it.
   */
  private releaseHeld(all: boolean): void {
    if (this.deferWrites && !all) return;
    const dueUs = monoNowUs() - (this.opts.stopHoldMs ?? 0) * 1000;
    const maxBytes = this.opts.holdMaxBytes ?? HOLD_MAX_BYTES;
    while (this.held.length && !this.finished) {
      const f = this.held[0]!;
      const over = this.heldBytes > maxBytes;
      if (!all && f.captureUs > dueUs && !over) break;
      if (over && !this.holdOverflowLogged) {
        this.holdOverflowLogged = true;
        this.opts.log.warn({ camera: this.pipeline.cameraId, maxBytes }, 'stop hold over its memory bound: writing the oldest held frames early');
      }
      this.held.shift();
      this.heldBytes -= f.au.payloadBytes;
      this.decide(f);
    }
    if (this.held.length && !this.finished) {
      if (!this.holdTimer) {
        const waitMs = Math.max(1, (this.held[0]!.captureUs - dueUs) / 1000 + HOLD_SLACK_MS);
        this.holdTimer = setTimeout(() => {
          this.holdTimer = null;
          this.releaseHeld(false);
        }, waitMs);
        this.holdTimer.unref();
      }
    } else if (this.holdTimer) {
      clearTimeout(this.holdTimer);
      this.holdTimer = null;
    }
  }

  /** Whether a frame whose hold has passed goes to the file. */
  private decide(f: CapturedFrame): void {
    if (this.last && f.run !== this.last.run) this.newSegment(f);
    if (this.st === 'paused') return;
    if (this.pauseAt !== null && f.captureUs >= this.pauseAt) {
      this.pauseAt = null;
      this.st = 'paused';
      return;
    }
    const s = this.start_!;
    const written = this.sink!.offer(f, () => {
      const flags = [...this.nextFlags];
      if (f.captureUs < s.triggerMonoUs) flags.push('preroll');
      if (this.resumeAt !== null) {
        if (f.captureUs < this.resumeAt) flags.push('paused');
        else this.resumeAt = null;
      }
      return { flags, expectedGap: this.nextExpectedGap };
    });
    if (!written) return;
    this.nextFlags = [];
    this.nextExpectedGap = false;
    this.last = { run: f.run, seq: f.au.seq, captureUs: f.captureUs };
  }

  /** The source restarted: close this file as it is and continue the trial in a new segment. */
  private newSegment(f: CapturedFrame): void {
    const gapUs = this.last ? f.captureUs - this.last.captureUs : null;
    const old = this.file!;
    this.segmentCloses.push(old.close('complete', SOURCE_RESTARTED));
    this.segment += 1;
    // The new file's fsyncs (sidecar, directory entries, its row in the WAL) run on the threadpool as a start's do,
    // never on the event loop, where they would hold every camera's pipe; the segment is announced once they are done.
    const syncs = new StartSyncs();
    this.openFile(this.last?.captureUs ?? null, syncs);
    const file = this.file!;
    const announced = { segment: this.segment, recordingId: file.id, gapUs };
    this.last = null; // the new file's sink waits for a keyframe
    // The frames the camera captured while its source was down are lost: they count as missing, not as a pause.
    this.nextFlags = ['segment'];
    this.nextExpectedGap = false;
    syncs.run().then(
      () => this.emit('segment', announced),
      (err: unknown) => {
        // The disk refused to make the new file durable: the recording stops, interrupted (as a write error).
        if (this.file === file) void this.fail(err);
      },
    );
  }

  /** Stop, interrupted, on a failure to write (or make durable) the current file: anything thrown is taken. */
  private async fail(thrown: unknown): Promise<void> {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    this.opts.log.error({ camera: this.pipeline.cameraId, err: error.message }, 'recording write failed; stopping');
    this.stopReason = `write failed: ${(error as NodeJS.ErrnoException).code ?? error.message}`;
    this.finishing ??= new Promise((r) => (this.resolveFinish = r));
    const summaries = await this.finish('interrupted');
    this.emit('failed', { error, summaries });
  }

  private async finish(state: 'complete' | 'interrupted'): Promise<RecordingSummary[]> {
    if (this.finished) return this.finishing ?? this.summaries;
    if (this.stopTimer) clearTimeout(this.stopTimer);
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    this.pipeline.off('frame', this.onFrame);
    // What is held and was captured before the stop instant goes in; the rest never reaches the file.
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    if (this.file && !this.file.failed) for (const f of held) if (this.stopAt === null || f.captureUs < this.stopAt) this.decide(f);
    this.finished = true;
    const file = this.file;
    this.file = null;
    this.sink = null;
    // Segments closed earlier (source restarts) may still be closing.
    const earlier = await Promise.all(this.segmentCloses);
    const last = file ? [await file.close(state, this.stopReason)] : [];
    const all = [...earlier, ...last];
    this.summaries = all;
    this.st = 'idle';
    this.finished = false;
    this.resolveFinish?.(all);
    this.resolveFinish = null;
    return all;
  }
}
