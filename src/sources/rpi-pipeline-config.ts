import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { replaceFile } from '../storage/durable-file.ts';

/**
 * The Raspberry Pi pipeline handler's configuration file, for a triggered CSI camera's raised frame timeout.
 *
 * Read in raspberrypi/libcamera at 26bfadc66e8d (src/libcamera/pipeline/rpi/common/pipeline_base.cpp,
 * CameraData::loadPipelineConfiguration; vc4/vc4.cpp and pisp/pisp.cpp platformPipelineConfigure; data/example.yaml):
 * - the file is named by the environment variable LIBCAMERA_RPI_CONFIG_FILE (unset or empty: no file) and parsed
 *   as YAML (the shipped files are JSON with # comments);
 * - `version` must be 1.0 (else a warning and defaults), `target` must be the platform's pipeline: "bcm2835" (vc4:
 *   Pi 4 and older) or "pisp" (Pi 5). A wrong target fails the pipeline configuration and the camera is not
 *   registered at all ("no cameras available");
 * - `pipeline_handler.camera_timeout_value_ms` (unsigned, ms; 0: computed) replaces the frontend's dequeue timeout,
 *   otherwise max(1 s, 5 × the longest recent frame length). When it expires libcamera logs "Camera frontend has
 *   timed out!" and cancels the requests; rpicam-vid (apps/rpicam_vid.cpp) logs "Device timeout detected, attempting
 *   a restart!!!" and restarts the camera. A sensor in trigger mode makes no frame without a pulse, so without a raised
 *   value every pause of the pulses longer than ~1 s is such a timeout.
 * rpicam-apps (core/rpicam_app.cpp set_pipeline_configuration, at 9270b6013c45) respects a non-empty
 * LIBCAMERA_RPI_CONFIG_FILE; otherwise, on vc4 only, it points it at the first of RPI_APPS_CONFIG_FILES that exists.
 * So the file rigcam writes starts from what rpicam-vid would have used (the user's file, or rpi_apps.yaml on vc4),
 * keeps every key of it, and sets `target`, `version` and `camera_timeout_value_ms`.
 */

export type RpiPipelineTarget = 'bcm2835' | 'pisp';

/** Searched by rpicam-apps, in this order, on vc4 when LIBCAMERA_RPI_CONFIG_FILE is not set. */
export const RPI_APPS_CONFIG_FILES = ['/usr/local/share/libcamera/pipeline/rpi/vc4/rpi_apps.yaml', '/usr/share/libcamera/pipeline/rpi/vc4/rpi_apps.yaml'] as const;

/**
 * The pipeline of a camera from the path libcamera registers it by (`rpicam-hello --list-cameras`): the Pi 5's
 * cameras hang off the RP1 south bridge ("/base/axi/pcie@120000/rp1/i2c@88000/imx296@1a", CFE + PiSP); a Pi 4's
 * and older ones off the SoC ("/base/soc/i2c0mux/i2c@1/imx296@1a", Unicam + the VideoCore ISP).
 */
export function rpiTargetOf(cameraPath: string): RpiPipelineTarget {
  return /\/rp1\//.test(cameraPath) ? 'pisp' : 'bcm2835';
}

const baseSchema = z
  .object({
    version: z.number().optional(),
    target: z.string().optional(),
    pipeline_handler: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

/** The file rpicam-vid would read without rigcam, as rpicam-apps chooses it (null: none, libcamera's defaults). */
export function basePipelineConfigFile(target: RpiPipelineTarget, inherited: string | undefined, fsRoot = '/'): string | null {
  if (inherited) return inherited; // the user's, as rpicam-apps respects it (not under fsRoot: it is a path as given)
  if (target !== 'bcm2835') return null;
  return RPI_APPS_CONFIG_FILES.map((f) => path.join(fsRoot, f)).find((f) => existsSync(f)) ?? null;
}

/** The text of the file: the base's keys, with target, version 1.0 and the timeout set. Throws when the base is unusable. */
export function pipelineConfigText(baseText: string | null, baseName: string | null, target: RpiPipelineTarget, timeoutMs: number): string {
  let base: z.infer<typeof baseSchema> = {};
  if (baseText !== null) {
    let parsed: unknown;
    try {
      parsed = parseYaml(baseText);
    } catch (err) {
      throw new Error(`libcamera pipeline configuration ${baseName}: not YAML (${(err as Error).message.split('\n')[0]})`);
    }
    const r = baseSchema.safeParse(parsed ?? {});
    if (!r.success) throw new Error(`libcamera pipeline configuration ${baseName}: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
    base = r.data;
  }
  const out = { ...base, version: 1, target, pipeline_handler: { ...(base.pipeline_handler ?? {}), camera_timeout_value_ms: timeoutMs } };
  // JSON is YAML; "1.0" as upstream writes it (libcamera reads the version as a double either way).
  const json = JSON.stringify(out, null, 4).replace(/^ {4}"version": 1,$/m, '    "version": 1.0,');
  return `# Written by rigcam for an externally triggered camera: libcamera's frame timeout raised (camera_timeout_value_ms).\n# Based on: ${baseName ?? "libcamera's defaults"}\n${json}\n`;
}

export interface WrittenPipelineConfig {
  file: string;
  /** The file it was based on (null: libcamera's defaults). */
  base: string | null;
}

/**
 * Write a camera's file (`<data_dir>/libcamera/rpi-pipeline-<camera>.yaml`, replaced atomically: a temporary file
 * created exclusively, fsync, rename) and return its path for LIBCAMERA_RPI_CONFIG_FILE. Throws, with the reason, when
 * the base file cannot be read or parsed: the camera does not start rather than silently drop the user's settings.
 */
export function writeTriggerPipelineConfig(o: { dataDir: string; cameraId: string; target: RpiPipelineTarget; timeoutMs: number; inherited: string | undefined; fsRoot?: string }): WrittenPipelineConfig {
  if (!/^[A-Za-z0-9_.-]+$/.test(o.cameraId) || o.cameraId.startsWith('.')) throw new Error(`camera id ${JSON.stringify(o.cameraId)} cannot name a file`);
  const base = basePipelineConfigFile(o.target, o.inherited, o.fsRoot);
  let baseText: string | null = null;
  if (base !== null) {
    try {
      baseText = readFileSync(base, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new Error(`libcamera pipeline configuration ${base}${base === o.inherited ? ' (LIBCAMERA_RPI_CONFIG_FILE)' : ''} cannot be read: ${code}`);
    }
  }
  const text = pipelineConfigText(baseText, base, o.target, o.timeoutMs);
  const dir = path.join(o.dataDir, 'libcamera');
  mkdirSync(dir, { recursive: true });
  const file = path.resolve(dir, `rpi-pipeline-${o.cameraId}.yaml`);
  replaceFile(file, text);
  return { file, base };
}
