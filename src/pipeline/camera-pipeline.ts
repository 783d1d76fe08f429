import { EventEmitter } from 'node:events';
import type { Logger } from '../log/logger.ts';
import type { ClockSource, SourceSpec } from '../sources/source-spec.ts';
import type { BackoffOptions } from '../supervise/backoff.ts';
import { ChildSupervisor, type ChildExit, type ChildSpec } from '../supervise/child-supervisor.ts';
import { monoNowUs } from '../clock.ts';
import { CaptureClock } from './capture-clock.ts';
import type { AccessUnit } from './access-unit.ts';
import type { CapturedFrame } from './captured-frame.ts';
import { ParameterSets } from './parameter-sets.ts';
import { ByteRateMeter, FpsMeter } from './fps-meter.ts';
import { PrerollRing } from './preroll-ring.ts';
import { TsDemuxer, type DemuxWarning } from './ts-demux.ts';

/** How a camera's source process ended (see ChildSupervisor). */
export type SourceExit = ChildExit;

type SupervisedSource = SourceSpec & ChildSpec;

/**
 * A source that writes nothing for this long while alive is stalled (a camera that hangs with its process up):
 * a few frame periods plus a margin for encoder start, pipe buffering and a loaded machine.
 */
export function sourceStallMs(fps: number): number {
  return Math.ceil((4 * 1000) / Math.max(fps, 0.1)) + 5000;
}
/** Before its first output a source may take longer (device open, encoder start, rpicam's camera start). */
export const SOURCE_FIRST_OUTPUT_MS = 20_000;

export interface PipelineEvents {
  frame: [CapturedFrame];
  started: [{ pid: number; run: number; spec: SourceSpec }];
  exit: [SourceExit];
  warning: [DemuxWarning];
}

export interface PipelineStats {
  running: boolean;
  run: number;
  framesCaptured: number;
  captureFps: number;
  /** Live bitrate of the stream, bytes per second. */
  bytesPerSecond: number;
  lastCaptureUs: number | null;
  /** Arrival minus capture time of the latest frame, µs: encoder + pipe latency. */
  latencyUs: number | null;
  ringFrames: number;
  ringBytes: number;
  continuityErrors: number;
}

/**
 * One camera's continuous capture: the supervised source process, the demuxer (a new one per process run),
 * capture-clock placement, the pre-roll ring and fps measurement. Recorders subscribe to `frame`.
 */
export class CameraPipeline extends EventEmitter<PipelineEvents> {
  readonly ring: PrerollRing;
  private readonly supervisor: ChildSupervisor<SupervisedSource>;
  private demux: TsDemuxer | null = null;
  private clock = new CaptureClock();
  private run = 0;
  private frames = 0;
  private lastCapture: number | null = null;
  private latency: number | null = null;
  private ccErrors = 0;
  private readonly meter = new FpsMeter();
  private readonly byteMeter = new ByteRateMeter();
  private currentSpec: SourceSpec | null = null;
  private runClockSource: ClockSource | null = null;
  private onStderr: ((line: string) => void) | null = null;
  private readonly log: Logger;

  constructor(
    readonly cameraId: string,
    makeSpec: () => SourceSpec,
    opts: { backoff: Partial<BackoffOptions>; ringWindowUs: number; ringMaxBytes: number; log: Logger; stallMs?: number | null },
  ) {
    super();
    this.log = opts.log;
    this.ring = new PrerollRing(opts.ringWindowUs, opts.ringMaxBytes);
    this.supervisor = new ChildSupervisor<SupervisedSource>({
      what: 'source',
      logFields: { camera: cameraId },
      makeSpec: () => {
        const spec = makeSpec();
        return {
          ...spec,
          isChatter: spec.relativePts?.isChatter,
          // The stall limit follows the frame rate of the spec in use.
          stallMs: opts.stallMs === undefined ? (spec.stallMs ?? sourceStallMs(spec.fps)) : opts.stallMs,
          firstOutputMs: opts.stallMs === null ? null : spec.firstOutputMs !== undefined ? spec.firstOutputMs : SOURCE_FIRST_OUTPUT_MS,
        };
      },
      backoff: opts.backoff,
      log: opts.log,
      stopSignal: 'SIGINT', // lets ffmpeg flush
    });
    this.supervisor.on('started', (s) => {
      this.run = s.run;
      this.currentSpec = s.spec;
      this.runClockSource = s.spec.relativePts ? null : s.spec.clockSource;
      const clock = new CaptureClock();
      this.clock = clock;
      let checked = 0;
      let refused = false;
      const place = (au: AccessUnit, arrivalUs: number): void => {
        if (refused) return;
        const captureUs = clock.toCaptureUs(au.pts, arrivalUs);
        // The first frames of every run must have been captured shortly before they arrived: otherwise the
        // source's timestamps are not on CLOCK_MONOTONIC and no frame of the run can be placed against triggers.
        if (checked < CLOCK_CHECK_FRAMES) {
          checked += 1;
          const problem = clockProblem(captureUs, arrivalUs, this.runClockSource ?? s.spec.clockSource);
          if (problem) {
            refused = true;
            this.log.error({ camera: this.cameraId, captureUs, arrivalUs }, problem);
            this.supervisor.refuse(problem);
            return;
          }
        }
        const frame: CapturedFrame = { au, captureUs, arrivalUs, run: s.run };
        this.frames += 1;
        this.lastCapture = captureUs;
        this.latency = arrivalUs - captureUs;
        this.meter.add(captureUs);
        this.byteMeter.add(captureUs, au.packets.length);
        this.ring.push(frame);
        this.emit('frame', frame);
      };
      // Relative PTS: frames wait, in arrival order, until the source announced the capture time of PTS 0.
      const rel = s.spec.relativePts;
      let held: Array<{ au: AccessUnit; arrivalUs: number }> | null = rel ? [] : null;
      this.onStderr = rel
        ? (line) => {
            if (!held) return;
            const origin = rel.originFromStderr(line);
            if (origin === null) return;
            clock.setOriginUs(origin.originUs);
            this.runClockSource = origin.clockSource;
            const waiting = held;
            held = null;
            for (const h of waiting) place(h.au, h.arrivalUs);
          }
        : null;
      const params = new ParameterSets();
      this.demux = new TsDemuxer({
        onAccessUnit: (raw) => {
          const arrivalUs = monoNowUs();
          const au = params.complete(raw); // every keyframe carries SPS/PPS: recordings, segments, preview
          if (!held) return place(au, arrivalUs);
          held.push({ au, arrivalUs });
          if (held.length > rel!.maxHeldFrames) {
            held = [];
            this.log.error({ camera: this.cameraId }, rel!.missingOriginMessage);
            this.supervisor.kill('SIGTERM');
          }
        },
        onWarning: (w) => {
          if (w.kind === 'continuity') this.ccErrors += 1;
          this.emit('warning', w);
        },
      });
      this.emit('started', s);
    });
    this.supervisor.on('data', (chunk) => this.demux?.push(chunk));
    this.supervisor.on('stderr', (line) => this.onStderr?.(line));
    this.supervisor.on('exit', (e) => {
      this.demux?.end(); // the last frame of the run is complete when the process has exited
      this.demux = null;
      // Frames of a dead run cannot continue the next run's stream: a recording restarts from a new keyframe.
      this.ring.clear();
      this.meter.reset();
      this.byteMeter.reset();
      this.emit('exit', e);
    });
  }

  get spec(): SourceSpec | null {
    return this.currentSpec;
  }

  /** Where the running source's capture times come from (null: a relative-PTS source before its origin). */
  get clockSource(): ClockSource | null {
    return this.runClockSource;
  }

  get runNumber(): number {
    return this.run;
  }

  /** PAT and PMT of the running stream, to begin a file with. */
  get psi(): Buffer | null {
    const p = this.demux?.psiPackets;
    return p ? Buffer.concat([p.pat, p.pmt]) : null;
  }

  get sourcePid(): number | null {
    return this.supervisor.pid;
  }

  start(): void {
    this.supervisor.start();
  }

  async stop(timeoutMs = 3000): Promise<void> {
    await this.supervisor.stop(timeoutMs);
  }

  /** Kill the source process as a crash would; the supervisor restarts it. */
  killSource(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.supervisor.kill(signal);
  }

  stats(): PipelineStats {
    return {
      running: this.supervisor.running,
      run: this.run,
      framesCaptured: this.frames,
      captureFps: Math.round(this.meter.fps(monoNowUs()) * 10) / 10,
      bytesPerSecond: Math.round(this.byteMeter.rate(this.lastCapture ?? 0)),
      lastCaptureUs: this.lastCapture,
      latencyUs: this.latency,
      ringFrames: this.ring.size,
      ringBytes: this.ring.byteSize,
      continuityErrors: this.ccErrors,
    };
  }
}

/** How many frames of each run are checked against their arrival. */
const CLOCK_CHECK_FRAMES = 5;
/** A frame may arrive this long after its capture (encoder start, pipe, a loaded box) ... */
export const MAX_CAPTURE_LAG_US = 2_000_000;
/** ... and never before it, but for clock granularity (the test source's ms-resolution wall/mono offset). */
export const MAX_CAPTURE_LEAD_US = 5_000;

/**
 * Null when a frame's capture time is plausible against its arrival, else what is wrong, for a person. A camera
 * stamping CLOCK_REALTIME (some UVC drivers, TIMESTAMP_COPY sources) lands hours away once placed on the monotonic
 * timeline.
 */
export function clockProblem(captureUs: number, arrivalUs: number, source: ClockSource): string | null {
  const lag = arrivalUs - captureUs;
  if (lag >= -MAX_CAPTURE_LEAD_US && lag <= MAX_CAPTURE_LAG_US) return null;
  const h = (us: number): string => (Math.abs(us) >= 3.6e9 ? `${(Math.abs(us) / 3.6e9).toFixed(1)} h` : Math.abs(us) >= 1e6 ? `${(Math.abs(us) / 1e6).toFixed(1)} s` : `${(Math.abs(us) / 1e3).toFixed(1)} ms`);
  const where = lag < 0 ? `${h(lag)} after it arrived` : `${h(lag)} before it arrived`;
  return (
    `capture clock refused: the first frames are stamped ${where} (timestamps "${source}", expected CLOCK_MONOTONIC within ` +
    `[-${MAX_CAPTURE_LEAD_US / 1000} ms, ${MAX_CAPTURE_LAG_US / 1e6} s] of arrival); the camera's timestamps are on another clock ` +
    '(CLOCK_REALTIME from some UVC drivers or a TIMESTAMP_COPY source), so its frames cannot be aligned with triggers'
  );
}

/** Resolve at the source's first keyframe; reject with the source's own reason if it fails first. */
export function firstKeyframe(pipeline: CameraPipeline, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no video from the camera within ${timeoutMs / 1000} s`)), timeoutMs);
    const onFrame = (f: { au: { keyframe: boolean } }): void => {
      if (f.au.keyframe) done();
    };
    const onExit = (e: SourceExit): void => done(new Error(e.message));
    const done = (err?: Error): void => {
      clearTimeout(timer);
      pipeline.off('frame', onFrame);
      pipeline.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    pipeline.on('frame', onFrame);
    pipeline.on('exit', onExit);
  });
}
