import type { ClockSource } from './source-spec.ts';
import type { RelativePts, SourceSpec } from './source-spec.ts';
import { gopFrames } from './ffmpeg-common.ts';
import { wallMinusMonoUs } from '../clock.ts';
import { rpicamControlArgs, type RpicamControls } from './rpicam-controls.ts';

/**
 * A CSI camera through `rpicam-vid` (libcamera), writing H.264 in MPEG-TS to stdout through its libav
 * output: the Pi 4's hardware encoder (h264_v4l2m2m) or, on a Pi 5 which has none, libx264.
 *
 * What rpicam-vid puts in the PTS (rpicam-apps encoder/libav_encoder.cpp, core/rpicam_encoder.hpp):
 * every frame gets `timestamp − timestamp of the first frame` in µs, rescaled to the TS 90 kHz clock, so the
 * first frame has PTS 0 and the PTS are relative. `timestamp` is libcamera's FrameWallClock (the sensor
 * timestamp mapped onto CLOCK_REALTIME) in rpicam-apps ≥ 1.8 when libcamera provides it, else the sensor /
 * buffer timestamp (the kernel's frame-start time, CLOCK_BOOTTIME = CLOCK_MONOTONIC on a box that never
 * suspends). `--save-pts` and `--metadata` cannot anchor them: libav refuses --save-pts with a container and
 * never writes --metadata for one. What anchors them is the line rpicam-vid ≥ 1.8 prints at --verbose=2 when
 * the first frame enters the encoder: `Video start timestamp : <µs> us`, the exact value the PTS count from.
 * So this source carries `relativePts`: the pipeline holds frames until that line was read on stderr, then
 * places frame N at origin + PTS(N).
 */

export type RpicamEncoder = 'h264_v4l2m2m' | 'libx264';

export interface RpicamSourceOptions {
  /** Index as listed by `rpicam-hello --list-cameras`. */
  camera: number;
  width: number;
  height: number;
  fps: number;
  gopSeconds: number;
  bitrateKbps: number;
  /** h264_v4l2m2m: the hardware encoder of a Pi 4 (and older); libx264: software, the only H.264 encoder on a Pi 5. */
  encoder: RpicamEncoder;
  /** CLOCK_REALTIME − CLOCK_MONOTONIC in µs, measured when the origin is announced (tests may pin it). */
  wallMinusMonoUs?: () => number;
  /** Image controls (fixed at start: rpicam-vid takes them only on its command line). */
  controls?: RpicamControls;
  /** rpicam-vid --sync role; 'off' or absent: no sync. */
  sync?: RpicamSync;
  /**
   * Frames come from external pulses (trigger mode): none at all until the pulses start, none while they pause. The
   * run gets LIBCAMERA_RPI_CONFIG_FILE (the file raising libcamera's frame timeout, see rpi-pipeline-config.ts) and a
   * stall limit 5 s beyond that timeout, so a pause up to `cameraTimeoutMs` restarts nothing.
   */
  triggered?: { cameraTimeoutMs: number; pipelineConfigFile: string | null };
  /** Told, per run, when the camera runs but waits for sync and when sync is achieved (sync cameras only). */
  onSync?: (e: RpicamSyncEvent) => void;
}

export type RpicamSync = 'off' | 'server' | 'client';

/**
 * A sync camera's progress within one rpicam-vid run. With --sync, rpicam-vid runs the camera but encodes (and so
 * writes) nothing until libcamera's sync algorithm reports SyncReady (rpicam-apps core/rpicam_encoder.hpp,
 * EncodeBuffer); meanwhile apps/rpicam_vid.cpp still logs "Viewfinder frame 0" per frame (the count is reset while
 * waiting). libcamera logs the moment at INFO (src/ipa/rpi/controller/rpi/sync.cpp, server and client alike):
 * "*** Sync achieved! Difference <µs>us" — the server's distance to the agreed ready time, the client's timer value.
 */
/**
 * A sync camera's progress in its current rpicam-vid run: `starting` (the camera not yet running), `waiting`
 * (running, nothing encoded until the boxes are in step), `achieved` (frames flow). `difference_us`: what libcamera
 * logged at sync (null when the line was not seen: frames flowing is proof enough of the sync).
 */
export interface RpicamSyncState {
  mode: 'server' | 'client';
  state: 'starting' | 'waiting' | 'achieved';
  difference_us: number | null;
  achieved_mono_us: number | null;
}

export type RpicamSyncEvent = { kind: 'waiting' } | { kind: 'achieved'; differenceUs: number };

const SYNC_ACHIEVED = /\bRPiSync\b.*\*\*\* Sync achieved! Difference (-?\d+)\s*us\s*$/;

/** The difference (µs) of a libcamera "Sync achieved" log line, or null for any other line. */
export function parseSyncAchievedLine(line: string): number | null {
  const m = SYNC_ACHIEVED.exec(line.trim());
  return m ? Number(m[1]) : null;
}

export type RpicamSourceSpec = SourceSpec & { relativePts: RelativePts };

/** A triggered camera's stall limit is its libcamera timeout plus this: libcamera notices a dead camera first. */
export const TRIGGER_STALL_MARGIN_MS = 5000;

/**
 * rpicam-vid links the system's libavcodec, whose h264_v4l2m2m needs the VideoCore encoder node
 * (bcm2835-codec-encode, `findHardwareEncoderDevice()`): present on a Pi 4 / 3 / Zero 2, absent on a Pi 5.
 */
export function rpicamEncoderFor(hardwareEncoderDevice: string | null): RpicamEncoder {
  return hardwareEncoderDevice ? 'h264_v4l2m2m' : 'libx264';
}

/** rpicam-apps 1.8.0 is the first to print the start timestamp the libav PTS count from. */
export const RPICAM_MIN_VERSION: readonly [number, number, number] = [1, 8, 0];

const START_LINE = /^Video start timestamp\s*:\s*(\d+)\s*us\s*$/;
const CHATTER = /^Viewfinder frame \d+\s*$/;

/**
 * µs values at or above this are CLOCK_REALTIME (FrameWallClock: 1e15 µs is 2001-09-09), below it time since
 * boot (1e15 µs of uptime is 31 years).
 */
const WALLCLOCK_FLOOR_US = 1e15;

/** The value of a `Video start timestamp : <µs> us` line, or null for any other line. */
export function parseStartTimestampLine(line: string): number | null {
  const m = START_LINE.exec(line.trim());
  if (!m) return null;
  const us = Number(m[1]);
  return Number.isSafeInteger(us) && us > 0 ? us : null;
}

/**
 * The announced start timestamp on CLOCK_MONOTONIC. A FrameWallClock value is moved by the current
 * realtime−monotonic offset: the two clocks advance together (NTP slews both), so the offset only changes when
 * the wall clock is stepped.
 */
export function originFromAnnounced(announcedUs: number, wallMinusMonoUs: () => number): { originUs: number; clock: 'wallclock' | 'sensor' } {
  if (announcedUs >= WALLCLOCK_FLOOR_US) return { originUs: announcedUs - wallMinusMonoUs(), clock: 'wallclock' };
  return { originUs: announcedUs, clock: 'sensor' };
}


/** The rpicam-vid command line for one camera: continuous, no preview, MPEG-TS on stdout, verbose enough to announce the origin. */
export function rpicamVidArgs(o: RpicamSourceOptions): string[] {
  if (!Number.isInteger(o.camera) || o.camera < 0) throw new Error(`rpicam camera index must be a whole number ≥ 0, not ${o.camera}`);
  const encoderArgs =
    o.encoder === 'libx264'
      ? // Without --low-latency rpicam-vid gives libx264 one B-frame, and PTS would leave decode order.
        ['--libav-video-codec', 'libx264', '--low-latency']
      : // Level 4.2 lets the Pi 4 encoder take 1080p above 30 fps; it signals, it does not limit.
        ['--libav-video-codec', 'h264_v4l2m2m', '--level', '4.2'];
  return [
    '--camera', String(o.camera),
    '--width', String(o.width),
    '--height', String(o.height),
    '--framerate', String(o.fps),
    '--codec', 'libav',
    '--libav-format', 'mpegts',
    ...encoderArgs,
    '--intra', String(gopFrames(o.fps, o.gopSeconds)),
    '--inline',
    '--bitrate', `${o.bitrateKbps}kbps`,
    '--timeout', '0',
    '--nopreview',
    // An implicit-value option: "--verbose 2" would leave "2" as a stray positional argument.
    '--verbose=2',
    ...rpicamControlArgs(o.controls),
    ...(o.sync && o.sync !== 'off' ? ['--sync', o.sync] : []),
    '--output', '-',
  ];
}

export function rpicamSourceSpec(o: RpicamSourceOptions): RpicamSourceSpec {
  const measure = o.wallMinusMonoUs ?? wallMinusMonoUs;
  const syncing = o.sync === 'server' || o.sync === 'client';
  let syncState: 'starting' | 'waiting' | 'achieved' = 'starting';
  // Every stderr line before the origin passes here (the pipeline stops asking once the origin is known, and with
  // --sync the origin only comes after the sync): this is where a sync camera's progress is read.
  const watchSync = (line: string): void => {
    if (!syncing || syncState === 'achieved') return;
    const diff = parseSyncAchievedLine(line);
    if (diff !== null) {
      syncState = 'achieved';
      o.onSync?.({ kind: 'achieved', differenceUs: diff });
    } else if (syncState === 'starting' && CHATTER.test(line)) {
      syncState = 'waiting';
      o.onSync?.({ kind: 'waiting' });
    }
  };
  return {
    kind: 'rpicam',
    command: 'rpicam-vid',
    args: rpicamVidArgs(o),
    clock: 'boottime',
    clockSource: 'rpicam-sensor',
    fps: o.fps,
    width: o.width,
    height: o.height,
    encoder: o.encoder === 'libx264' ? 'rpicam-sw' : 'rpicam-hw',
    ...(syncing || o.triggered ? { firstOutputMs: null } : {}),
    ...(o.triggered ? { stallMs: o.triggered.cameraTimeoutMs + TRIGGER_STALL_MARGIN_MS } : {}),
    ...(o.triggered?.pipelineConfigFile ? { env: { ...process.env, LIBCAMERA_RPI_CONFIG_FILE: o.triggered.pipelineConfigFile } } : {}),
    relativePts: {
      originFromStderr(line: string): { originUs: number; clockSource: ClockSource } | null {
        watchSync(line);
        const announced = parseStartTimestampLine(line);
        if (announced === null) return null;
        const o = originFromAnnounced(announced, measure);
        return { originUs: o.originUs, clockSource: o.clock === 'wallclock' ? 'rpicam-wallclock' : 'rpicam-sensor' };
      },
      isChatter: (line: string): boolean => CHATTER.test(line),
      maxHeldFrames: Math.max(30, Math.ceil(o.fps * 3)),
      missingOriginMessage:
        'rpicam-vid did not announce the capture time of its first frame ("Video start timestamp" at --verbose=2): ' +
        `rpicam-apps ${RPICAM_MIN_VERSION.join('.')} or newer is needed (sudo apt update && sudo apt full-upgrade)`,
    },
  };
}

export interface RpicamVersion {
  /** [major, minor, patch] of rpicam-apps, or null when the build line carries none (libcamera-apps before 1.0). */
  apps: [number, number, number] | null;
  /** The build line as printed, e.g. "rpicam-apps build: v1.11.0 18-12-2025 (13:45:58)". */
  buildLine: string;
  /** The old "libcamera-apps" name. */
  oldName: boolean;
  /** From "capabilites: … libav:1" (1.6 and later); null when not printed. */
  libav: boolean | null;
  /** e.g. "v0.6.0+rpt20251202". */
  libcamera: string | null;
}

/**
 * `rpicam-vid --version`:
 *   rpicam-apps build: v1.11.0 18-12-2025 (13:45:58)
 *   rpicam-apps capabilites: egl:1 qt:1 drm:1 libav:1      (sic, since 1.6)
 *   libcamera build: v0.6.0+rpt20251202
 */
export function parseRpicamVersion(text: string): RpicamVersion | null {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const build = lines.find((l) => /^(rpicam|libcamera)-apps build:/.test(l.trim()));
  if (!build) return null;
  const v = /build:\s*v(\d+)\.(\d+)\.(\d+)/.exec(build);
  const caps = lines.find((l) => /capabilit(?:i)?es:/.test(l));
  const libcamera = lines.map((l) => /^libcamera build:\s*(\S+)/.exec(l.trim())?.[1]).find((x) => x !== undefined) ?? null;
  return {
    apps: v ? [Number(v[1]), Number(v[2]), Number(v[3])] : null,
    buildLine: build.trim(),
    oldName: build.trim().startsWith('libcamera-apps'),
    libav: caps ? /\blibav:1\b/.test(caps) : null,
    libcamera,
  };
}

function versionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  }
  return true;
}

/** Why this rpicam-apps cannot be the CSI source, or null when it can. */
export function rpicamVersionProblem(v: RpicamVersion): string | null {
  if (!v.apps || !versionAtLeast(v.apps, RPICAM_MIN_VERSION))
    return `${v.apps ? `rpicam-apps v${v.apps.join('.')}` : 'this libcamera-apps'} does not report frame capture times (needs ${RPICAM_MIN_VERSION.join('.')} or newer)`;
  if (v.libav === false) return 'this rpicam-apps has no libav output (the -lite package)';
  return null;
}
