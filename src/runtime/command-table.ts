import path from 'node:path';
import { z } from 'zod';
import type { CameraRegistry } from './camera-registry.ts';
import { defineCommand, type CommandSpec, type ExecContext } from './command-bus.ts';
import {
  applyConfigSchema,
  assignDeviceSchema,
  cameraTargetSchema,
  controlChangeSchema,
  emptySchema,
  instantSchema,
  markSchema,
  startRecordingSchema,
  startSessionSchema,
} from './commands.ts';
import { ERROR_CODES } from './errors.ts';
import type { EventBus } from './event-bus.ts';
import type { BoxStatus } from './status.ts';
import type { TrialController } from './trial-controller.ts';

export interface TableDeps {
  cameras: CameraRegistry;
  trials: TrialController;
  bus: EventBus;
  root: string;
  status: () => BoxStatus;
}

const cameraEvent = z.object({ camera_id: z.string(), message: z.string() });
const segmentEvent = z.object({ camera_id: z.string(), segment: z.number(), recording_id: z.number(), gap_us: z.number().nullable() });
const failedEvent = cameraEvent.extend({ code: z.enum(ERROR_CODES) });
const reasonEvent = z.object({ reason: z.string() });

/**
 * The command table: every command of the protocol (names of the seed; aliases are resolved by the bus) and the
 * box's internal ones, each with its payload schema and handler. Internal commands carry what happens to the box
 * by itself — a camera unplugged, a recording that failed, a new segment, the disk full — so those change the
 * trial in the same one-at-a-time order as the commands of the transports.
 */
export function commandTable(d: TableDeps): Map<string, CommandSpec> {
  const { cameras, trials, bus } = d;

  async function release(id: string, ctx: ExecContext): Promise<void> {
    const rt = cameras.resolve(id);
    await trials.releaseCamera(id, ctx.triggerMonoUs, 'camera unassigned');
    await cameras.release(rt);
  }

  return new Map<string, CommandSpec>([
    ['assign_device', defineCommand(assignDeviceSchema, (p, ctx) => cameras.assign(p, ctx.commandId))],
    [
      'unassign_device',
      defineCommand(cameraTargetSchema, async (p, ctx) => {
        const rt = cameras.resolve(p.camera_id, p.camera_stable_id);
        await release(rt.id, ctx);
        return { camera_id: rt.id, released: true };
      }),
    ],
    [
      'unassign_all_devices',
      defineCommand(emptySchema, async (_p, ctx) => {
        await trials.stopAny(ctx.triggerMonoUs, 'all cameras unassigned');
        const released: string[] = [];
        for (const rt of cameras.list()) {
          if (rt.state === 'unassigned') continue;
          await release(rt.id, ctx);
          released.push(rt.id);
        }
        return { released };
      }),
    ],
    ['start_recording', defineCommand(startRecordingSchema, (p, ctx) => trials.start(p, ctx))],
    // Only rigcam itself gives a stop a reason (disk full, write failure): a user's stop is a plain stop.
    ['stop_recording', defineCommand(instantSchema, (p, ctx) => trials.stop(trials.instant(p.at_mono_us, ctx), null))],
    ['pause_recording', defineCommand(instantSchema, (p, ctx) => trials.pause({ ...ctx, triggerMonoUs: trials.instant(p.at_mono_us, ctx) }))],
    ['resume_recording', defineCommand(emptySchema, (_p, ctx) => trials.resume(ctx))],
    ['start_session', defineCommand(startSessionSchema, (p) => trials.startSession(p))],
    ['stop_session', defineCommand(emptySchema, (_p, ctx) => trials.stopSession(ctx))],
    ['apply_config', defineCommand(applyConfigSchema, (p, ctx) => cameras.applyConfig(p, ctx.commandId))],
    ['control_change', defineCommand(controlChangeSchema, (p) => cameras.control(p.camera_id, p.control, p.value, p.persist))],
    ['reprobe', defineCommand(cameraTargetSchema, (p) => cameras.reprobe(p.camera_id, p.camera_stable_id))],
    ['get_status', defineCommand(emptySchema, () => d.status())],
    ['mark', defineCommand(markSchema, (p, ctx) => trials.mark(p, ctx))],

    // ---- internal: raised by the box, never accepted from a transport ----
    [
      'device_lost',
      defineCommand(
        cameraEvent,
        async (p, ctx) => {
          const recordings = await trials.cameraLost(p.camera_id, 'camera unplugged', ctx.triggerMonoUs);
          const recs = recordings.map((r) => ({ recording_id: r.recordingId, path: path.relative(d.root, r.path), frames: r.frames, state: r.state }));
          bus.report('device_error', { camera_id: p.camera_id, error: p.message, message: p.message, unplugged: true, recordings: recs }, p.camera_id);
          return { camera_id: p.camera_id, recordings: recs };
        },
        true,
      ),
    ],
    [
      'recording_failed',
      defineCommand(
        failedEvent,
        async (p, ctx) => {
          bus.report('error', { command: null, code: p.code, error: p.message, message: p.message, recoverable: false, camera_id: p.camera_id }, p.camera_id);
          await trials.recordingFailed(p.camera_id, p.message, ctx.triggerMonoUs);
          return { camera_id: p.camera_id };
        },
        true,
      ),
    ],
    [
      'segment_started',
      defineCommand(
        segmentEvent,
        (p) => {
          bus.report('segment_started', p, p.camera_id);
          return p;
        },
        true,
      ),
    ],
    [
      'shutdown',
      defineCommand(
        emptySchema,
        async (_p, ctx) => {
          const stopped = await trials.stopAny(ctx.triggerMonoUs, 'shutdown');
          return { trial_stopped: stopped !== null };
        },
        true,
      ),
    ],
    [
      'disk_full',
      defineCommand(
        reasonEvent,
        async (p, ctx) => {
          const stopped = trials.state === 'recording' || trials.state === 'paused';
          if (stopped) await trials.stop(ctx.triggerMonoUs, p.reason);
          return { stopped };
        },
        true,
      ),
    ],
  ]);
}
