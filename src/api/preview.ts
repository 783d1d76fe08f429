import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Response } from 'express';
import type { Logger } from '../log/logger.ts';
import type { CapturedFrame } from '../pipeline/captured-frame.ts';
import type { CameraRuntime, FrameSource } from '../runtime/camera-runtime.ts';
import { MpjpegParser } from './mpjpeg-parser.ts';

export const MJPEG_BOUNDARY = 'rigcamframe';

export interface PreviewOptions {
  /** Preview images are scaled down to at most this width. */
  maxWidth: number;
  /** ffmpeg mjpeg -q:v (2 best .. 31 worst). */
  quality: number;
  maxViewersPerCamera: number;
  log: Logger;
}

const DEFAULTS = { maxWidth: 640, quality: 7, maxViewersPerCamera: 8 };

/** Decoder side shared by the live preview and the snapshot: H.264 in MPEG-TS on stdin, keyframes only. */
function decodeArgs(o: { maxWidth: number; quality: number }): string[] {
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    '-probesize', '2048', '-analyzeduration', '0',
    '-skip_frame', 'nokey', '-threads', '1',
    '-f', 'mpegts', '-i', 'pipe:0',
    '-an', '-vf', `scale='min(${o.maxWidth},iw)':-2,format=yuvj420p`,
    '-fps_mode', 'passthrough',
    '-c:v', 'mjpeg', '-q:v', String(o.quality),
  ];
}

function part(jpeg: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`--${MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`), jpeg, Buffer.from('\r\n')]);
}

interface Viewer {
  res: Response;
  /** The socket is full: skip images until it drains (a slow phone must not pile up memory). */
  choked: boolean;
}

/**
 * One camera's live preview: a single ffmpeg shared by every viewer, started with the first and stopped with the
 * last, so nobody watching costs nothing. It is fed the live stream (PSI, then access units from a keyframe on)
 * and decodes keyframes only (`-skip_frame nokey`): one image per GOP, for the price of parsing, not decoding.
 */
export class CameraPreview {
  readonly viewers = new Set<Viewer>();
  latest: { jpeg: Buffer; atMs: number } | null = null;
  private ff: ChildProcessWithoutNullStreams | null = null;
  private fed: FrameSource | null = null;
  private source: FrameSource | null = null;
  /** Set while viewers watch: detaches from the camera's stream changes. */
  private detach: (() => void) | null = null;
  private waitingKey = true;
  private run = -1;
  private choked = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private stderrTail = '';
  private readonly onFrame = (f: CapturedFrame): void => this.feed(f);

  constructor(
    readonly cameraId: string,
    private readonly camera: () => CameraRuntime | undefined,
    private readonly o: PreviewOptions,
  ) {}

  get running(): boolean {
    return this.ff !== null;
  }

  get pid(): number | null {
    return this.ff?.pid ?? null;
  }

  add(res: Response): boolean {
    if (this.viewers.size >= this.o.maxViewersPerCamera) return false;
    const v: Viewer = { res, choked: false };
    this.viewers.add(v);
    res.on('close', () => this.remove(v));
    // A fresh image at once, so a page shows something before the next keyframe is decoded.
    if (this.latest && Date.now() - this.latest.atMs < 3000) this.send(v, part(this.latest.jpeg));
    if (!this.detach) this.begin();
    return true;
  }

  private remove(v: Viewer): void {
    this.viewers.delete(v);
    if (this.viewers.size === 0) this.end();
  }

  /** End every viewer and the decoder (service shutdown). */
  close(): void {
    for (const v of this.viewers) v.res.end();
    this.viewers.clear();
    this.end();
  }

  private begin(): void {
    // The camera's stream changes on re-assignment or apply_config: the camera tells, the decoder follows.
    const cam = this.camera();
    if (!cam) return;
    this.detach = cam.attachSink({
      setSource: (s) => {
        this.source = s;
        if (s !== this.fed) this.restart();
      },
    });
  }

  private end(): void {
    this.detach?.();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.detach = this.restartTimer = null;
    this.source = null;
    this.stopDecoder();
  }

  private restart(): void {
    this.stopDecoder();
    const pipeline = this.source;
    this.fed = pipeline;
    if (!pipeline) return; // unassigned: the camera tells when it has a stream again
    const ff = spawn('ffmpeg', [...decodeArgs(this.o), '-f', 'mpjpeg', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.ff = ff;
    this.waitingKey = true;
    this.choked = false;
    this.stderrTail = '';
    const parser = new MpjpegParser((jpeg) => this.broadcast(jpeg));
    ff.stdout.on('data', (d: Buffer) => {
      try {
        parser.push(d);
      } catch (err) {
        this.o.log.warn({ camera: this.cameraId, err: (err as Error).message }, 'preview: unreadable decoder output');
        ff.kill('SIGKILL');
      }
    });
    ff.stderr.on('data', (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-2000)));
    ff.stdin.on('error', () => undefined); // EPIPE when the decoder dies; its exit is handled below
    ff.on('error', (err) => this.o.log.warn({ camera: this.cameraId, err: err.message }, 'preview: cannot run ffmpeg'));
    ff.on('close', (code, signal) => {
      if (this.ff !== ff) return;
      this.ff = null;
      this.fed?.off('frame', this.onFrame);
      this.o.log.warn({ camera: this.cameraId, code, signal, stderr: this.stderrTail.trim().slice(-500) }, 'preview decoder exited');
      // Viewers still watching: try again shortly (not in a tight loop).
      if (this.viewers.size && this.detach) this.restartTimer = setTimeout(() => this.restart(), 1000);
    });
    // Start from the newest keyframe already held, so the first image comes at once, not at the next GOP.
    const held = pipeline.ring.fromKeyframeAtOrBefore(Number.POSITIVE_INFINITY);
    const psi = pipeline.psi;
    if (psi && held[0]?.au.keyframe) {
      ff.stdin.write(psi);
      for (const f of held) ff.stdin.write(f.au.packets);
      this.waitingKey = false;
      this.run = held[0].run;
    }
    pipeline.on('frame', this.onFrame);
  }

  private stopDecoder(): void {
    this.fed?.off('frame', this.onFrame);
    const ff = this.ff;
    this.ff = null;
    if (!ff) return;
    ff.stdin.end();
    ff.kill('SIGTERM');
    const t = setTimeout(() => ff.kill('SIGKILL'), 1000);
    t.unref();
    ff.once('close', () => clearTimeout(t));
  }

  private feed(f: CapturedFrame): void {
    const ff = this.ff;
    if (!ff || this.choked) return;
    if (f.run !== this.run) this.waitingKey = true; // a restarted source: new PSI, new keyframe
    if (this.waitingKey) {
      const psi = this.fed?.psi;
      if (!f.au.keyframe || !psi) return;
      ff.stdin.write(psi);
      this.waitingKey = false;
      this.run = f.run;
    }
    if (!ff.stdin.write(f.au.packets)) {
      // The decoder is behind (slow machine): drop whole frames and start again at a keyframe.
      this.choked = true;
      ff.stdin.once('drain', () => {
        this.choked = false;
        this.waitingKey = true;
      });
    }
  }

  private broadcast(jpeg: Buffer): void {
    this.latest = { jpeg, atMs: Date.now() };
    const p = part(jpeg);
    for (const v of this.viewers) this.send(v, p);
  }

  private send(v: Viewer, p: Buffer): void {
    if (v.choked || v.res.writableEnded) return;
    if (!v.res.write(p)) {
      v.choked = true;
      v.res.once('drain', () => (v.choked = false));
    }
  }
}

export interface PreviewState {
  viewers: number;
  running: boolean;
  pid: number | null;
}

/** Every camera's preview, plus one-shot snapshots. */
export class PreviewHub {
  private readonly previews = new Map<string, CameraPreview>();
  private readonly snapshots = new Map<string, Promise<Buffer>>();
  private readonly o: PreviewOptions;

  constructor(
    private readonly cameras: ReadonlyMap<string, CameraRuntime>,
    opts: Partial<PreviewOptions> & { log: Logger },
  ) {
    this.o = { ...DEFAULTS, ...opts };
  }

  preview(cameraId: string): CameraPreview {
    let p = this.previews.get(cameraId);
    if (!p) {
      p = new CameraPreview(cameraId, () => this.cameras.get(cameraId), this.o);
      this.previews.set(cameraId, p);
    }
    return p;
  }

  /** What the preview of a camera costs right now (for status and tests). */
  state(cameraId: string): PreviewState {
    const p = this.previews.get(cameraId);
    return { viewers: p?.viewers.size ?? 0, running: p?.running ?? false, pid: p?.pid ?? null };
  }

  /**
   * A JPEG of the newest keyframe: the live preview's latest image when one is running, else the newest keyframe
   * held in the pre-roll ring decoded by a one-shot ffmpeg (concurrent requests share it).
   */
  snapshot(cameraId: string, timeoutMs = 5000): Promise<Buffer> {
    const live = this.previews.get(cameraId)?.latest;
    if (live && Date.now() - live.atMs < 1500) return Promise.resolve(live.jpeg);
    let pending = this.snapshots.get(cameraId);
    if (!pending) {
      pending = this.decodeNewestKeyframe(cameraId, timeoutMs).finally(() => this.snapshots.delete(cameraId));
      this.snapshots.set(cameraId, pending);
    }
    return pending;
  }

  private decodeNewestKeyframe(cameraId: string, timeoutMs: number): Promise<Buffer> {
    const pipeline = this.cameras.get(cameraId)?.frameSource();
    const psi = pipeline?.psi;
    const key = pipeline?.ring.fromKeyframeAtOrBefore(Number.POSITIVE_INFINITY)[0];
    if (!pipeline || !psi || !key?.au.keyframe) return Promise.reject(new Error(`camera ${cameraId} has no video yet`));
    return new Promise((resolve, reject) => {
      const ff = spawn('ffmpeg', [...decodeArgs(this.o), '-frames:v', '1', '-f', 'image2pipe', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      const timer = setTimeout(() => ff.kill('SIGKILL'), timeoutMs);
      ff.stdout.on('data', (d: Buffer) => out.push(d));
      ff.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-1000)));
      ff.stdin.on('error', () => undefined);
      ff.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      ff.on('close', (code) => {
        clearTimeout(timer);
        const jpeg = Buffer.concat(out);
        if (code === 0 && jpeg.length > 0) resolve(jpeg);
        else reject(new Error(`snapshot decoder failed (exit ${code}): ${err.trim().slice(-300)}`));
      });
      ff.stdin.end(Buffer.concat([psi, key.au.packets]));
    });
  }

  close(): void {
    for (const p of this.previews.values()) p.close();
  }
}
