import { parseListCtrls, type V4l2Control } from './v4l2-controls.ts';
import { runTool, type RunToolOptions } from './run-tool.ts';

export type ControlValueCheck = { ok: true; value: number } | { ok: false; error: string };

const TRUE_WORDS = new Set(['1', 'true', 'on', 'yes']);
const FALSE_WORDS = new Set(['0', 'false', 'off', 'no']);

/**
 * The kernel's names of the standard V4L2 menus (v4l2-ctrls-defs.c), for a listing printed without its menu items
 * (`--list-ctrls`, old v4l-utils): a config can then still say `auto_exposure: Manual Mode`.
 */
const STANDARD_MENUS: Record<string, Record<string, string>> = {
  auto_exposure: { 0: 'Auto Mode', 1: 'Manual Mode', 2: 'Shutter Priority Mode', 3: 'Aperture Priority Mode' },
  power_line_frequency: { 0: 'Disabled', 1: '50 Hz', 2: '60 Hz', 3: 'Auto' },
};

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
      const items = control.menu ?? standardMenu(control);
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

/** The standard menu of a control listed without items, limited to its range. */
function standardMenu(control: V4l2Control): Record<string, string> | undefined {
  const std = STANDARD_MENUS[control.name];
  if (!std || control.type !== 'menu') return undefined;
  return Object.fromEntries(Object.entries(std).filter(([i]) => (control.min ?? 0) <= Number(i) && Number(i) <= (control.max ?? Infinity)));
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

export type ControlValue = number | boolean | string;

/** A control rigcam keeps set, and where the wish comes from (a state entry overrides the config's). */
export interface WantedControl {
  name: string;
  value: ControlValue;
  origin: 'config' | 'state' | 'fixed_exposure';
}

/**
 * Automatic modes go first: while one is on, the driver marks the controls it owns inactive and refuses them
 * (exposure_time_absolute under auto_exposure, white_balance_temperature under white_balance_automatic,
 * focus_absolute under focus_automatic_continuous).
 */
export function isAutoMode(name: string): boolean {
  return /(^|_)auto(_|$)|automatic/.test(name) && name !== 'exposure_auto_priority' && name !== 'auto_exposure_bias';
}

/** The two names the kernel has had for "frame rate may drop to lengthen the exposure". */
const DYNAMIC_FRAMERATE = ['exposure_dynamic_framerate', 'exposure_auto_priority'];

/**
 * What to apply, in order: the config's controls, overridden per control by the state file's; then, when the
 * exposure is fixed (auto_exposure Manual Mode) and neither says otherwise, exposure_dynamic_framerate off, so
 * the camera keeps its frame rate in the dark instead of lengthening the exposure. Automatic modes first.
 */
export function wantedControls(config: Record<string, ControlValue>, state: Record<string, ControlValue>, listing: readonly V4l2Control[]): WantedControl[] {
  const merged = new Map<string, WantedControl>();
  for (const [name, value] of Object.entries(config)) merged.set(name, { name, value, origin: 'config' });
  for (const [name, value] of Object.entries(state)) merged.set(name, { name, value, origin: 'state' });
  const ae = merged.get('auto_exposure');
  const aeControl = listing.find((c) => c.name === 'auto_exposure');
  const manual = ae && aeControl ? validateControlValue({ ...aeControl, inactive: false, readOnly: false }, ae.value) : null;
  if (manual?.ok && manual.value === 1) {
    const dyn = listing.find((c) => DYNAMIC_FRAMERATE.includes(c.name));
    if (dyn && !DYNAMIC_FRAMERATE.some((n) => merged.has(n))) merged.set(dyn.name, { name: dyn.name, value: 0, origin: 'fixed_exposure' });
  }
  const all = [...merged.values()];
  return [...all.filter((c) => isAutoMode(c.name)), ...all.filter((c) => !isAutoMode(c.name))];
}

export interface ApplyControlsResult {
  /** What the driver holds after applying, read back, by control name. */
  applied: Record<string, number>;
  /** Each problem naming its control: missing, refused, or read back different from what was set. */
  errors: string[];
  /** The listing after applying (inactive flags and values as they are now) and its text, when it could be read. */
  listing: { controls: V4l2Control[]; text: string } | null;
}

async function listControls(device: string, opts: RunToolOptions): Promise<{ controls: V4l2Control[]; text: string } | null> {
  const r = await runTool('v4l2-ctl', ['-d', device, '--list-ctrls-menus'], opts);
  return r.found && r.exitCode === 0 ? { controls: parseListCtrls(r.stdout), text: r.stdout } : null;
}

/**
 * Apply controls one by one (automatic modes first, then the listing is read again so the controls they freed
 * are active), then read every one back from the driver's listing: a driver that clamps or ignores a value is reported, never
 * taken for applied. One failing control does not stop the others.
 */
export async function applyControls(device: string, wanted: readonly WantedControl[], listing: readonly V4l2Control[], opts: RunToolOptions = {}): Promise<ApplyControlsResult> {
  const errors: string[] = [];
  const expected = new Map<string, number>();
  let current: readonly V4l2Control[] = listing;
  let relisted = false;
  for (const w of wanted) {
    if (!isAutoMode(w.name) && !relisted && expected.size > 0) {
      current = (await listControls(device, opts))?.controls ?? current;
      relisted = true;
    }
    const control = current.find((c) => c.name === w.name);
    if (!control) {
      errors.push(`control ${w.name} (${w.origin}): the camera has no such control`);
      continue;
    }
    const res = await setControl(device, w.name, w.value, { ...opts, control });
    if (!res.ok) {
      errors.push(`control ${w.name} (${w.origin}): ${res.error ?? 'refused'}`);
      continue;
    }
    const check = validateControlValue(control, w.value);
    if (check.ok) expected.set(w.name, check.value);
  }
  // One listing reads every value back (and the inactive flags as they are now): one v4l2-ctl run, not two.
  const after = await listControls(device, opts);
  const applied: Record<string, number> = {};
  if (expected.size && !after) errors.push('controls could not be read back (v4l2-ctl --list-ctrls-menus failed)');
  for (const [name, want] of expected) {
    const got = after?.controls.find((c) => c.name === name)?.value;
    if (got === undefined) {
      if (after) errors.push(`control ${name}: set, but the camera lists no value for it`);
      continue;
    }
    applied[name] = got;
    if (got !== want) errors.push(`control ${name}: set to ${want}, but the camera holds ${got} (read back)`);
  }
  return { applied, errors, listing: after };
}
