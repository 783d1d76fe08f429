import type { V4l2Control } from './v4l2-controls.ts';
import { runTool, type RunToolOptions } from './run-tool.ts';

export type ControlValueCheck = { ok: true; value: number } | { ok: false; error: string };

const TRUE_WORDS = new Set(['1', 'true', 'on', 'yes']);
const FALSE_WORDS = new Set(['0', 'false', 'off', 'no']);

function toInteger(raw: string | number): number | undefined {
  if (typeof raw === 'number') return Number.isInteger(raw) ? raw : undefined;
  const s = raw.trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  if (/^0x[0-9a-f]+$/i.test(s)) return Number.parseInt(s, 16);
  return undefined;
}

/**
 * Check a value for a control before it goes to the camera, and normalise it to the integer
 * v4l2-ctl takes: range and step for integers, a listed item (by index or by name) for menus,
 * true/false/on/off/1/0 for booleans, allowed bits for bitmasks. Read-only controls and controls
 * the driver marks inactive (an automatic mode owns them) are refused with the reason.
 */
export function validateControlValue(control: V4l2Control, value: string | number | boolean): ControlValueCheck {
  const name = control.name;
  if (control.readOnly) return { ok: false, error: `control '${name}' is read-only` };
  if (control.inactive) {
    return {
      ok: false,
      error: `control '${name}' is inactive right now (an automatic mode controls it; switch that mode off first, e.g. auto_exposure=1 before exposure_time_absolute)`,
    };
  }
  const raw = typeof value === 'boolean' ? (value ? 1 : 0) : value;
  switch (control.type) {
    case 'button':
      return { ok: true, value: 1 };
    case 'bool': {
      const s = String(raw).trim().toLowerCase();
      if (TRUE_WORDS.has(s)) return { ok: true, value: 1 };
      if (FALSE_WORDS.has(s)) return { ok: true, value: 0 };
      return { ok: false, error: `control '${name}' is a boolean: use 0/1, true/false or on/off (got '${String(value)}')` };
    }
    case 'menu':
    case 'intmenu': {
      const items = control.menu;
      const asInt = toInteger(raw);
      if (items && Object.keys(items).length > 0) {
        if (asInt !== undefined && String(asInt) in items) return { ok: true, value: asInt };
        const wanted = String(raw).trim().toLowerCase();
        const hit = Object.entries(items).find(([, label]) => label.toLowerCase() === wanted);
        if (hit) return { ok: true, value: Number(hit[0]) };
        const list = Object.entries(items)
          .map(([i, l]) => `${i} (${l})`)
          .join(', ');
        return { ok: false, error: `control '${name}' has no menu item '${String(value)}'; choose one of: ${list}` };
      }
      if (asInt === undefined) return { ok: false, error: `control '${name}' needs a menu index (got '${String(value)}')` };
      return checkRange(control, asInt);
    }
    case 'bitmask': {
      const asInt = toInteger(raw);
      if (asInt === undefined || asInt < 0) return { ok: false, error: `control '${name}' is a bitmask: give a non-negative integer or 0x.. hex (got '${String(value)}')` };
      const max = control.max ?? 0xffffffff;
      if ((asInt & ~max) !== 0) {
        return { ok: false, error: `control '${name}' allows only the bits 0x${max.toString(16)} (got 0x${asInt.toString(16)})` };
      }
      return { ok: true, value: asInt };
    }
    case 'int':
    case 'int64':
    case 'u8':
    case 'u16':
    case 'u32': {
      const asInt = toInteger(raw);
      if (asInt === undefined) return { ok: false, error: `control '${name}' needs an integer (got '${String(value)}')` };
      return checkRange(control, asInt);
    }
    default:
      return { ok: false, error: `control '${name}' has type '${control.type}', which rigcam does not set` };
  }
}

function checkRange(control: V4l2Control, v: number): ControlValueCheck {
  const { min, max } = control;
  if (min !== undefined && v < min) return { ok: false, error: `control '${control.name}' must be >= ${min} (got ${v})` };
  if (max !== undefined && v > max) return { ok: false, error: `control '${control.name}' must be <= ${max} (got ${v})` };
  const step = control.step ?? 1;
  const base = min ?? 0;
  if (step > 1 && (v - base) % step !== 0) {
    const below = v - ((v - base) % step);
    const above = below + step;
    return {
      ok: false,
      error: `control '${control.name}' moves in steps of ${step} from ${base}: ${v} is not allowed (nearest: ${below} or ${above})`,
    };
  }
  return { ok: true, value: v };
}

export interface SetControlResult {
  ok: boolean;
  /** Clear reason when ok is false (validation message, v4l2-ctl's stderr, or tool missing). */
  error?: string;
  /** v4l2-ctl's stderr, as printed. */
  stderr: string;
}

export interface SetControlOptions extends RunToolOptions {
  /** When given, the value is validated (and normalised) against it before anything runs. */
  control?: V4l2Control;
}

/**
 * Set one control with `v4l2-ctl -d DEV --set-ctrl=name=value`. v4l2-ctl reports a driver refusal
 * on stderr ("VIDIOC_S_EXT_CTRLS: failed: ..."), so a non-empty error there counts as failure even
 * when the exit status is 0.
 */
export async function setControl(
  device: string,
  name: string,
  value: string | number | boolean,
  opts: SetControlOptions = {},
): Promise<SetControlResult> {
  if (!/^[A-Za-z0-9_]+$/.test(name)) return { ok: false, error: `invalid control name '${name}'`, stderr: '' };
  let v: string | number = typeof value === 'boolean' ? (value ? 1 : 0) : value;
  if (opts.control) {
    const check = validateControlValue(opts.control, value);
    if (!check.ok) return { ok: false, error: check.error, stderr: '' };
    v = check.value;
  }
  if (!/^-?(\d+|0x[0-9a-fA-F]+)$/.test(String(v).trim())) {
    return { ok: false, error: `control '${name}': value '${String(v)}' is not a number`, stderr: '' };
  }
  const res = await runTool('v4l2-ctl', ['-d', device, `--set-ctrl=${name}=${String(v).trim()}`], opts);
  if (!res.found) return { ok: false, error: 'v4l2-ctl not found on PATH (install v4l-utils)', stderr: '' };
  const stderr = res.stderr.trim();
  if (res.exitCode !== 0 || /failed|error|unknown control|cannot open/i.test(stderr)) {
    return { ok: false, error: stderr || `v4l2-ctl exited with status ${res.exitCode}`, stderr: res.stderr };
  }
  return { ok: true, stderr: res.stderr };
}
