import type { Logger } from '../log/logger.ts';
import { ChildSupervisor, type ChildSpec } from '../supervise/child-supervisor.ts';
import { runOnce } from '../supervise/run-once.ts';
import type { CameraPipeline } from './camera-pipeline.ts';

/** What a preview reads of a camera's live stream (the camera runtime hands out no more). */
export type LiveStream = Pick<CameraPipeline, 'cameraId' | 'psi' | 'ring' | 'on' | 'off'>;
import type { CapturedFrame } from './captured-frame.ts';
import { MpjpegParser } from './mpjpeg-parser.ts';
import { PreviewSink } from './preview-sink.ts';

export interface PreviewOptions {
  /** Preview images are scaled down to at most this width. */
  maxWidth: number;
  /** ffmpeg mjpeg -q:v (2 best .. 31 worst). */
  quality: number;
  maxViewersPerCamera: number;
  log: Logger;
}

const DEFAULTS = { maxWidth: 640, quality: 7, maxViewersPerCamera: 8 };

/** A decoder that makes no image for this long while fed is hung: the supervisor restarts it. */
const DECODER_STALL_MS = 20_000;

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

/** Someone watching a preview: gets every image, and `end` when the preview shuts down. */
export interface PreviewViewer {
  image(jpeg: Buffer): void;
  end(): void;
}

/**
 * One camera's live preview: a single supervised ffmpeg shared by every viewer, started with the first and
 * stopped with the last, so nobody watching costs nothing. It is fed the live stream through a PreviewSink and
 * decodes keyframes only (`-skip_frame nokey`): one image per GOP, for the price of parsing, not decoding.
 */
export class CameraPreview {
  private readonly viewerSet = new Set<PreviewViewer>();
  latest: { jpeg: Buffer; atMs: number } | null = null;
  private readonly decoder: ChildSupervisor;
  private fed: LiveStream | null = null;
  private sink: PreviewSink | null = null;
  private watch: NodeJS.Timeout | null = null;
  private switching: Promise<void> = Promise.resolve();
  private readonly onFrame = (f: CapturedFrame): void => this.sink?.feed(f);

  constructor(
    readonly cameraId: string,
    private readonly pipelineOf: () => LiveStream | null,
    private readonly o: PreviewOptions,
  ) {
    let parser: MpjpegParser | null = null;
    this.decoder = new ChildSupervisor({
      what: 'preview decoder',
      logFields: { camera: cameraId },
      makeSpec: (): ChildSpec => ({ command: 'ffmpeg', args: [...decodeArgs(o), '-f', 'mpjpeg', 'pipe:1'] }),
      stdin: 'pipe',
      backoff: { initialMs: 1000, maxMs: 10_000 },
      stallMs: DECODER_STALL_MS,
      stopGraceMs: 1000,
      log: o.log,
    });
    this.decoder.on('started', () => {
      parser = new MpjpegParser((jpeg) => this.broadcast(jpeg));
      this.attach();
    });
    this.decoder.on('data', (d) => {
      try {
        parser?.push(d);
      } catch (err) {
        parser = null;
        o.log.warn({ camera: cameraId, err: (err as Error).message }, 'preview: unreadable decoder output');
        this.decoder.kill('SIGKILL');
      }
    });
    this.decoder.on('exit', () => this.detach());
  }

  get viewers(): number {
    return this.viewerSet.size;
  }

  get running(): boolean {
    return this.decoder.running;
  }

  get pid(): number | null {
    return this.decoder.pid;
  }

  /** Add a viewer (a fresh image at once when there is one); null when the camera has too many. */
  subscribe(v: PreviewViewer): (() => void) | null {
    if (this.viewerSet.size >= this.o.maxViewersPerCamera) return null;
    this.viewerSet.add(v);
    // A fresh image at once, so a page shows something before the next keyframe is decoded.
    if (this.latest && Date.now() - this.latest.atMs < 3000) v.image(this.latest.jpeg);
    if (!this.watch) this.begin();
    return () => {
      if (!this.viewerSet.delete(v)) return;
      if (this.viewerSet.size === 0) this.end();
    };
  }

  /** End every viewer and the decoder (service shutdown). */
  close(): void {
    const viewers = [...this.viewerSet];
    this.viewerSet.clear();
    for (const v of viewers) v.end();
    this.end();
  }

  private begin(): void {
    // The camera's pipeline changes on re-assignment or apply_config: follow it.
    this.watch = setInterval(() => {
      if (this.pipelineOf() !== this.fed) this.follow();
    }, 1000);
    this.watch.unref();
    this.follow();
  }

  private end(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    this.switching = this.switching.then(() => this.decoder.stop());
  }

  /** (Re)start the decoder on the camera's current pipeline, or stop it while the camera has none. */
  private follow(): void {
    this.switching = this.switching.then(async () => {
      await this.decoder.stop();
      this.fed = this.pipelineOf();
      if (this.fed && this.watch) this.decoder.start();
    });
  }

  /** A decoder run began: feed it from the newest keyframe held, so the first image comes at once. */
  private attach(): void {
    const pipeline = this.fed;
    const stdin = this.decoder.stdin;
    if (!pipeline || !stdin) return;
    this.sink = new PreviewSink(stdin, () => pipeline.psi);
    for (const f of pipeline.ring.fromKeyframeAtOrBefore(Number.POSITIVE_INFINITY)) this.sink.feed(f);
    pipeline.on('frame', this.onFrame);
  }

  private detach(): void {
    this.fed?.off('frame', this.onFrame);
    this.sink = null;
  }

  private broadcast(jpeg: Buffer): void {
    this.latest = { jpeg, atMs: Date.now() };
    for (const v of this.viewerSet) v.image(jpeg);
  }
}

/** What a camera's preview costs right now. */
export interface PreviewState {
  viewers: number;
  running: boolean;
  pid: number | null;
}

/** Every camera's preview, plus one-shot snapshots. */
export class PreviewHub {
  private readonly previews = new Map<string, CameraPreview>();
  private readonly snapshots = new Map<string, Promise<Buffer>>();
  readonly options: PreviewOptions;

  constructor(
    private readonly pipelineOf: (cameraId: string) => LiveStream | null,
    opts: Partial<PreviewOptions> & { log: Logger },
  ) {
    this.options = { ...DEFAULTS, ...opts };
  }

  preview(cameraId: string): CameraPreview {
    let p = this.previews.get(cameraId);
    if (!p) {
      p = new CameraPreview(cameraId, () => this.pipelineOf(cameraId), this.options);
      this.previews.set(cameraId, p);
    }
    return p;
  }

  /** What the preview of a camera costs right now (for status and tests). */
  state(cameraId: string): PreviewState {
    const p = this.previews.get(cameraId);
    return { viewers: p?.viewers ?? 0, running: p?.running ?? false, pid: p?.pid ?? null };
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

  private async decodeNewestKeyframe(cameraId: string, timeoutMs: number): Promise<Buffer> {
    const pipeline = this.pipelineOf(cameraId);
    const psi = pipeline?.psi;
    const key = pipeline?.ring.fromKeyframeAtOrBefore(Number.POSITIVE_INFINITY)[0];
    if (!pipeline || !psi || !key?.au.keyframe) throw new Error(`camera ${cameraId} has no video yet`);
    const r = await runOnce('ffmpeg', [...decodeArgs(this.options), '-frames:v', '1', '-f', 'image2pipe', 'pipe:1'], {
      input: Buffer.concat([psi, key.au.packets]),
      timeoutMs,
    });
    if (r.code === 0 && r.stdout.length > 0) return r.stdout;
    throw new Error(`snapshot decoder failed (exit ${r.code}): ${r.stderr.trim().slice(-300)}`);
  }

  close(): void {
    for (const p of this.previews.values()) p.close();
  }
}
