import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { runTool } from './run-tool.ts';
import { buildProbeResult, type ProbeResult } from './probe.ts';
import { parseRpicamListCameras, type RpicamList } from './rpicam-list.ts';

/**
 * `rigcam probe`:
 *   --device /dev/videoN [--json]          probe a camera live with v4l2-ctl
 *   --device /dev/videoN --save-dump DIR   also write the raw outputs (list-formats-ext.txt,
 *                                          list-ctrls-menus.txt, info.txt) for a bug report/fixture
 *   --from-dump DIR [--json]               probe from such a dump, no camera needed
 *   --rpicam-list FILE [--json]            parse saved `rpicam-hello --list-cameras` output
 * Exit codes: 0 ok; 1 the camera or tool failed (missing device, v4l2-ctl missing or refusing);
 * 2 bad usage or unreadable/unparseable input.
 */
export interface ProbeOptions {
  device?: string;
  json?: boolean;
  saveDump?: string;
  fromDump?: string;
  rpicamList?: string;
  targetFps?: number;
}

export interface ProbeOutcome {
  output: string;
  exitCode: number;
}

const optionsSchema = z.object({
  device: z.string().min(1).optional(),
  json: z.boolean().optional(),
  saveDump: z.string().min(1).optional(),
  fromDump: z.string().min(1).optional(),
  rpicamList: z.string().min(1).optional(),
  targetFps: z.number().positive().max(1000).optional(),
});

const FORMATS_FILE = 'list-formats-ext.txt';
const CTRLS_FILE = 'list-ctrls-menus.txt';
const INFO_FILE = 'info.txt';

const fail = (exitCode: number, message: string): ProbeOutcome => ({ output: `rigcam probe: ${message}\n`, exitCode });

export async function runProbe(opts: ProbeOptions): Promise<ProbeOutcome> {
  const parsed = optionsSchema.safeParse(opts);
  if (!parsed.success) {
    return fail(2, `invalid options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const o = parsed.data;
  const sources = [o.device, o.fromDump, o.rpicamList].filter((s) => s !== undefined).length;
  if (sources === 0) return fail(2, 'give one of --device /dev/videoN, --from-dump DIR or --rpicam-list FILE');
  if (sources > 1) return fail(2, '--device, --from-dump and --rpicam-list are mutually exclusive');
  if (o.saveDump && !o.device) return fail(2, '--save-dump needs --device (it saves what the camera reports)');

  if (o.rpicamList) return probeRpicamList(o.rpicamList, o.json ?? false);
  if (o.fromDump) return probeFromDump(o.fromDump, o);
  return probeDevice(o.device ?? '', o);
}

async function probeRpicamList(file: string, json: boolean): Promise<ProbeOutcome> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return fail(2, `cannot read ${file}: ${(err as Error).message}`);
  }
  const list = parseRpicamListCameras(text);
  if (list.cameras.length === 0 && !/No cameras available/i.test(text)) {
    return fail(2, `no cameras found in ${file} (expected the output of rpicam-hello --list-cameras)`);
  }
  return { output: json ? `${JSON.stringify(list, null, 2)}\n` : formatRpicamTable(list), exitCode: 0 };
}

async function probeFromDump(dir: string, o: ProbeOptions): Promise<ProbeOutcome> {
  let formats: string;
  try {
    formats = await readFile(path.join(dir, FORMATS_FILE), 'utf8');
  } catch (err) {
    return fail(2, `cannot read dump ${dir}: ${FORMATS_FILE}: ${(err as Error).message}`);
  }
  let ctrls = '';
  for (const name of [CTRLS_FILE, 'list-ctrls.txt']) {
    try {
      ctrls = await readFile(path.join(dir, name), 'utf8');
      break;
    } catch {
      // Controls are optional in a dump.
    }
  }
  const result = buildProbeResult(formats, ctrls, { targetFps: o.targetFps });
  if (result.modes.length === 0 && result.controls.length === 0) {
    return fail(2, `dump ${dir} holds no formats or controls v4l2-ctl would print (is ${FORMATS_FILE} a --list-formats-ext output?)`);
  }
  return { output: o.json ? `${JSON.stringify(result, null, 2)}\n` : formatProbeTable(result, `dump ${dir}`), exitCode: 0 };
}

async function probeDevice(device: string, o: ProbeOptions): Promise<ProbeOutcome> {
  const formats = await runTool('v4l2-ctl', ['-d', device, '--list-formats-ext']);
  if (!formats.found) return fail(1, 'v4l2-ctl not found on PATH (install v4l-utils: sudo apt install v4l-utils)');
  if (formats.exitCode !== 0) {
    return fail(1, `cannot probe ${device}: ${formats.stderr.trim() || `v4l2-ctl exited with status ${formats.exitCode}`}`);
  }
  const ctrls = await runTool('v4l2-ctl', ['-d', device, '--list-ctrls-menus']);
  if (ctrls.exitCode !== 0) {
    return fail(1, `cannot list controls of ${device}: ${ctrls.stderr.trim() || `v4l2-ctl exited with status ${ctrls.exitCode}`}`);
  }
  let saved = '';
  if (o.saveDump) {
    const info = await runTool('v4l2-ctl', ['-d', device, '--info']);
    try {
      await mkdir(o.saveDump, { recursive: true });
      await writeFile(path.join(o.saveDump, FORMATS_FILE), formats.stdout);
      await writeFile(path.join(o.saveDump, CTRLS_FILE), ctrls.stdout);
      if (info.exitCode === 0) await writeFile(path.join(o.saveDump, INFO_FILE), info.stdout);
    } catch (err) {
      return fail(2, `cannot write dump to ${o.saveDump}: ${(err as Error).message}`);
    }
    saved = `saved ${FORMATS_FILE}, ${CTRLS_FILE}${info.exitCode === 0 ? `, ${INFO_FILE}` : ''} to ${o.saveDump}\n`;
  }
  const result = buildProbeResult(formats.stdout, ctrls.stdout, { targetFps: o.targetFps, device });
  if (o.json) return { output: `${JSON.stringify(result, null, 2)}\n`, exitCode: 0 };
  return { output: `${formatProbeTable(result, device)}${saved ? `\n${saved}` : ''}`, exitCode: 0 };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

const choiceText = (c: ProbeResult['default_record']): string =>
  c ? `${c.format} ${c.width}x${c.height} @ ${c.fps} fps` : 'none (no usable mode)';

export function formatProbeTable(r: ProbeResult, source: string): string {
  const out: string[] = [];
  out.push(`Camera: ${source}`);
  out.push(`Default record:  ${choiceText(r.default_record)}`);
  out.push(`Default preview: ${choiceText(r.default_preview)}`);
  out.push('');
  out.push(`Modes (${r.modes.length}):`);
  out.push(`  ${pad('FORMAT', 7)} ${pad('SIZE', 11)} FPS`);
  for (const m of r.modes) {
    out.push(`  ${pad(m.format, 7)} ${pad(`${m.width}x${m.height}`, 11)} ${m.fps.length > 0 ? m.fps.join(', ') : '(not listed)'}`);
  }
  out.push('');
  out.push(`Controls (${r.controls.length}):`);
  const nameW = Math.max(4, ...r.controls.map((c) => c.name.length));
  out.push(`  ${pad('NAME', nameW)} ${pad('TYPE', 8)} ${lpad('MIN', 8)} ${lpad('MAX', 10)} ${lpad('STEP', 5)} ${lpad('DEFAULT', 8)} ${lpad('VALUE', 8)}  NOTES`);
  const num = (v: number | null): string => (v === null ? '' : String(v));
  for (const c of r.controls) {
    const notes: string[] = [];
    if (c.inactive) notes.push('inactive');
    if (c.read_only) notes.push('read-only');
    if (c.menu) notes.push(Object.entries(c.menu).map(([i, l]) => `${i}=${l}`).join(', '));
    out.push(
      `  ${pad(c.name, nameW)} ${pad(c.type, 8)} ${lpad(num(c.min), 8)} ${lpad(num(c.max), 10)} ${lpad(num(c.step), 5)} ${lpad(num(c.default), 8)} ${lpad(num(c.value), 8)}  ${notes.join('; ')}`.trimEnd(),
    );
  }
  return `${out.join('\n')}\n`;
}

export function formatRpicamTable(list: RpicamList): string {
  if (list.cameras.length === 0) return 'No CSI cameras listed.\n';
  const out: string[] = [];
  for (const cam of list.cameras) {
    out.push(`Camera ${cam.index}: ${cam.sensor}  ${cam.path}`);
    out.push(`  ${pad('FORMAT', 15)} ${pad('SIZE', 11)} ${lpad('MAX FPS', 8)}  CROP`);
    for (const m of cam.modes) {
      const crop = m.crop ? `(${m.crop[0]}, ${m.crop[1]})/${m.crop[2]}x${m.crop[3]}` : '';
      out.push(`  ${pad(m.format, 15)} ${pad(`${m.width}x${m.height}`, 11)} ${lpad(m.fps.length ? String(m.fps[0]) : '-', 8)}  ${crop}`.trimEnd());
    }
  }
  return `${out.join('\n')}\n`;
}
