/**
 * Parser for `v4l2-ctl --list-ctrls-menus` (and `--list-ctrls`, `-L`, the control part of `--all`).
 *
 * A control line is printed by v4l2-ctl as
 *   `<name right-aligned to 31> 0x<id> (<type>)<pad>: min=.. max=.. step=.. default=.. value=.. [flags=a, b]`
 * with per-type fields (bool has no min/max/step, menus no step, button none, bitmask hex max/default).
 * Newer v4l-utils print the menu entry after a menu's value (`value=2 (60 Hz)`); very old ones
 * omit the `0x<id>`. Menu items follow their control as `<index>: <name>` lines (intmenu items as
 * `<index>: <value> (0x<hex>)`). Section headings ("User Controls", "Camera Controls", ...) are
 * unindented lines.
 */

export type ControlType =
  | 'int' | 'int64' | 'bool' | 'menu' | 'intmenu' | 'button' | 'bitmask' | 'str'
  | 'u8' | 'u16' | 'u32' | 'area' | 'unknown';

export interface V4l2Control {
  name: string;
  /** Numeric control id when printed (0x009a0901), else undefined. */
  id?: number;
  type: ControlType;
  min?: number;
  max?: number;
  step?: number;
  default?: number;
  value?: number;
  /** Menu name printed after the value by newer v4l-utils (`value=2 (60 Hz)`). */
  valueLabel?: string;
  flags: string[];
  inactive: boolean;
  readOnly: boolean;
  /** Heading the control was listed under ("User Controls"), when present. */
  section?: string;
  /** Menu items by index; for intmenu the item's integer value as a string. */
  menu?: Record<string, string>;
}

const KNOWN_TYPES = new Set<ControlType>([
  'int', 'int64', 'bool', 'menu', 'intmenu', 'button', 'bitmask', 'str', 'u8', 'u16', 'u32', 'area',
]);

const CTRL_LINE = /^\s*([A-Za-z0-9_]+)\s+(?:(0x[0-9a-fA-F]+)\s+)?\(([a-z0-9]+)\)\s*:?(.*)$/;
const MENU_ITEM = /^\s+(-?\d+):\s?(.*?)\s*$/;

function parseNumber(raw: string): number | undefined {
  if (/^-?0x[0-9a-f]+$/i.test(raw)) {
    const neg = raw.startsWith('-');
    const n = Number.parseInt(raw.replace(/^-/, ''), 16);
    return neg ? -n : n;
  }
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  return undefined;
}

function parseFields(rest: string): Omit<V4l2Control, 'name' | 'id' | 'type' | 'section' | 'menu' | 'inactive' | 'readOnly'> {
  let body = rest;
  let flags: string[] = [];
  const fi = body.search(/\bflags=/);
  if (fi >= 0) {
    flags = body
      .slice(fi + 'flags='.length)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    body = body.slice(0, fi);
  }
  const out: ReturnType<typeof parseFields> = { flags };
  const re = /(\w+)=(\S+)(?:\s+\(([^)]*)\))?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) {
    const key = m[1] ?? '';
    const num = parseNumber(m[2] ?? '');
    if (key === 'min') out.min = num;
    else if (key === 'max') out.max = num;
    else if (key === 'step') out.step = num;
    else if (key === 'default') out.default = num;
    else if (key === 'value') {
      out.value = num;
      if (m[3] !== undefined) out.valueLabel = m[3];
    }
  }
  return out;
}

export function parseListCtrls(text: string): V4l2Control[] {
  const controls: V4l2Control[] = [];
  let section: string | undefined;
  let last: V4l2Control | null = null;
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    if (line.trim() === '') continue;
    const ctrl = line.match(CTRL_LINE);
    if (ctrl) {
      const rawType = (ctrl[3] ?? '').toLowerCase();
      const type: ControlType = KNOWN_TYPES.has(rawType as ControlType) ? (rawType as ControlType) : 'unknown';
      const fields = parseFields(ctrl[4] ?? '');
      const c: V4l2Control = {
        name: ctrl[1] ?? '',
        type,
        ...fields,
        inactive: fields.flags.includes('inactive'),
        readOnly: fields.flags.includes('read-only'),
      };
      if (ctrl[2]) c.id = Number.parseInt(ctrl[2], 16);
      if (section) c.section = section;
      if (type === 'bool' && c.min === undefined) {
        c.min = 0;
        c.max = 1;
        c.step = 1;
      }
      controls.push(c);
      last = c;
      continue;
    }
    const item = line.match(MENU_ITEM);
    if (item && last && (last.type === 'menu' || last.type === 'intmenu')) {
      const label = last.type === 'intmenu' ? (item[2] ?? '').replace(/\s*\(0x[0-9a-f]+\)$/i, '') : item[2] ?? '';
      last.menu = { ...(last.menu ?? {}), [item[1] ?? '']: label };
      continue;
    }
    if (!/^\s/.test(line)) {
      // "User Controls", "Camera Controls", "JPEG Compression Controls": a heading. Any other
      // unindented line (from `--all` output) ends the current heading.
      section = /Controls$/.test(line.trim()) ? line.trim() : undefined;
      last = null;
    }
  }
  return controls;
}
