import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log/logger.ts';
import { parseRpicamControl, RPICAM_CONTROL_NAMES, type RpicamControlName, type RpicamControls } from '../sources/rpicam-controls.ts';
import { replaceFile } from '../storage/durable-file.ts';

/**
 * The box's remembered camera controls (`<data_dir>/camera-controls.json`): every `control_change` that did not ask
 * `persist: false`, by camera id (the configured id, or the one derived from the host's stable id), so it is applied
 * again at every source start — after a restart of rigcam, a crash of the source or a replug — on top of the
 * config's `cameras[].controls`. Values are the integers the driver took (menus by index). A CSI camera's changes
 * (`rpicam`: shutter, gain, AWB, ... as control_change reports them) go on every rpicam-vid command line instead,
 * overriding the config's `cameras[].rpicam` option by option. Written atomically
 * (temporary file created exclusively, fsync, rename, directory fsync): a power cut leaves the old or the new file.
 * A file that cannot be read or parsed is set aside (`.corrupt-<time>`) with a warning: the config's controls apply,
 * and the next change starts a new file; it never stops the box.
 */

const FORMAT = 'rigcam-camera-controls/1';
const controlName = z.string().regex(/^[A-Za-z0-9_]{1,64}$/);
const fileSchema = z.strictObject({
  format: z.literal(FORMAT),
  cameras: z.record(
    z.string().min(1).max(64),
    z.strictObject({
      device: z.string().nullable(),
      controls: z.record(controlName, z.number().int()),
      /** CSI options (control_change's reported form: numbers, names, "r,b" gains); checked again when read. */
      rpicam: z.partialRecord(z.enum(RPICAM_CONTROL_NAMES as [RpicamControlName, ...RpicamControlName[]]), z.union([z.number(), z.string()])).optional(),
      updated_at: z.string(),
    }),
  ),
});
type StateFile = z.infer<typeof fileSchema>;

export class ControlStateStore {
  readonly file: string;
  private data: StateFile = { format: FORMAT, cameras: {} };
  /** Why the file on disk was not used (null: it was, or there was none). */
  readonly problem: string | null = null;

  constructor(dataDir: string, private readonly log: Logger) {
    this.file = path.join(dataDir, 'camera-controls.json');
    if (!existsSync(this.file)) return;
    try {
      this.data = fileSchema.parse(JSON.parse(readFileSync(this.file, 'utf8')));
    } catch (err) {
      const why = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).slice(0, 3).join('; ') : (err as Error).message;
      const aside = `${this.file}.corrupt-${Date.now()}`;
      try {
        renameSync(this.file, aside);
      } catch {
        /* unreadable and unmovable: it is replaced at the next change */
      }
      this.problem = `camera controls state ${this.file} is unreadable (${why}); set aside as ${path.basename(aside)}, the config's controls apply`;
      this.log.warn({ file: this.file, aside }, this.problem);
    }
  }

  /** The remembered controls of a camera (empty when none). */
  get(cameraId: string): Record<string, number> {
    return { ...(this.data.cameras[cameraId]?.controls ?? {}) };
  }

  /** Remember one control of a camera, durably, before the change is reported. Throws when it cannot be written. */
  set(cameraId: string, device: string | null, name: string, value: number): void {
    const prev = this.data.cameras[cameraId];
    this.write(cameraId, { ...prev, device, controls: { ...(prev?.controls ?? {}), [name]: value }, updated_at: new Date().toISOString() });
  }

  /** The remembered CSI options of a camera (a value no longer valid is dropped with a warning: the config's applies). */
  getRpicam(cameraId: string): RpicamControls {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(this.data.cameras[cameraId]?.rpicam ?? {})) {
      const p = parseRpicamControl(name, value);
      if (p.ok) out[p.name] = p.value;
      else this.log.warn({ file: this.file, camera: cameraId, control: name }, `remembered CSI control not applied: ${p.error}`);
    }
    return out as RpicamControls;
  }

  /** Remember one CSI option of a camera (its reported form), durably. Throws when it cannot be written. */
  setRpicam(cameraId: string, name: RpicamControlName, value: number | string): void {
    const prev = this.data.cameras[cameraId];
    this.write(cameraId, { device: prev?.device ?? null, controls: prev?.controls ?? {}, rpicam: { ...(prev?.rpicam ?? {}), [name]: value }, updated_at: new Date().toISOString() });
  }

  private write(cameraId: string, entry: StateFile['cameras'][string]): void {
    const next: StateFile = { format: FORMAT, cameras: { ...this.data.cameras, [cameraId]: entry } };
    mkdirSync(path.dirname(this.file), { recursive: true });
    replaceFile(this.file, JSON.stringify(next, null, 2) + '\n');
    this.data = next;
  }
}
