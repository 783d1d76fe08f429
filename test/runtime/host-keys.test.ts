// Every key RPi_Logger's host really sends (its recorded lines, hw-fixtures/rpi-logger) is either understood by the
// command's strict schema or named as accepted-and-ignored (HOST_IGNORED_ASSIGN_KEYS); its framing keys are taken
// off by module mode (HOST_FRAMING_KEYS). A new host key, or a schema made stricter, fails here by name.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { z } from 'zod';
import { applyConfigSchema, assignDeviceSchema, emptySchema, HOST_IGNORED_ASSIGN_KEYS, instantSchema, startRecordingSchema, startSessionSchema } from '../../src/runtime/commands.ts';
import { HOST_FRAMING_KEYS } from '../../src/runtime/module-mode.ts';
import { repoRoot } from '../helpers/cli.ts';

const FIX = path.join(repoRoot, 'hw-fixtures/rpi-logger');
/** The box's schema for each command name the host (or the seed, in the fixtures) sends. */
const SCHEMA: Record<string, z.ZodType> = {
  assign_device: assignDeviceSchema,
  record: startRecordingSchema,
  start_recording: startRecordingSchema,
  start_session: startSessionSchema,
  pause: instantSchema,
  pause_recording: instantSchema,
  stop_recording: instantSchema,
  resume_recording: emptySchema,
  stop_session: emptySchema,
  get_status: emptySchema,
  unassign_all_devices: emptySchema,
  quit: emptySchema,
  apply_config: applyConfigSchema,
};

describe('the host’s keys against the strict payload schemas', () => {
  const lines = readdirSync(FIX)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) =>
      readFileSync(path.join(FIX, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => ({ file: f, msg: JSON.parse(l.replaceAll('{{DEV_PATH}}', '/dev/video0').replaceAll('{{SESSION_DIR}}', '/srv/rec/session_1')) as Record<string, unknown> })),
    );

  it('every recorded host line parses under its command’s schema once the framing keys are off, except the one made-up typo', () => {
    assert.ok(lines.length >= 15, `${lines.length} lines`);
    for (const { file, msg } of lines) {
      const command = String(msg.command);
      const schema = SCHEMA[command];
      assert.ok(schema, `${file}: a schema for ${command}`);
      const payload = Object.fromEntries(Object.entries(msg).filter(([k]) => !(HOST_FRAMING_KEYS as readonly string[]).includes(k)));
      const r = schema.safeParse(payload);
      if (file === 'apply-config-unknown-key.jsonl') {
        assert.equal(r.success, false);
        assert.match(JSON.stringify(r.error?.issues), /record_fsp/);
      } else assert.equal(r.success, true, `${file} ${command}: ${JSON.stringify(r.error?.issues)}`);
    }
  });

  it('the host’s assign_device keys rigcam does not use are sent by the host and listed as accepted-and-ignored; a misspelling of one is refused', () => {
    const assignKeys = new Set(lines.filter((l) => l.msg.command === 'assign_device').flatMap((l) => Object.keys(l.msg)));
    for (const k of ['device_type', 'port', 'baudrate', 'is_wireless', 'is_network', 'is_camera', 'camera_hw_model', 'camera_location'])
      assert.ok(assignKeys.has(k) && (HOST_IGNORED_ASSIGN_KEYS as readonly string[]).includes(k), `${k}: sent by the host and listed`);
    const r = assignDeviceSchema.safeParse({ device_id: 'usb:1', camera_type: 'usb', baudrat: 0 });
    assert.equal(r.success, false);
    assert.match(JSON.stringify(r.error?.issues), /baudrat/);
  });
});
