import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { runTool, type RunToolOptions } from './run-tool.ts';
import { parseV4l2Info, nodeCaps, type V4l2Info } from './v4l2-info.ts';
import { parseUdevInfo, udevUnescape } from './udev-properties.ts';
import { parseRpicamListCameras, type RpicamCamera } from './rpicam-list.ts';

/**
 * Camera discovery on a Pi: USB (V4L2) capture nodes, and CSI cameras through rpicam-hello.
 *
 * All /dev and /sys lookups go below `rootDir` (default '/') so tests can build a fake tree in a
 * temp dir; tools (v4l2-ctl, udevadm, rpicam-hello) are run by name from PATH.
 */

export interface DiscoverOptions extends RunToolOptions {
  rootDir?: string;
}

export interface UsbCamera {
  kind: 'v4l2';
  /** Device node, e.g. /dev/video0 (below rootDir). */
  device: string;
  /** Stable identity: survives reboots and renumbering (see stableIdentity()). */
  stableId: string;
  /** Short name for config and file names ("c922-pro-stream-webcam"). */
  name: string;
  card: string;
  driver?: string;
  busInfo?: string;
  serial?: string;
  /** udev ID_SERIAL (vendor_model_serial), when known. */
  idSerial?: string;
  /** udev ID_PATH (physical port), when known. */
  idPath?: string;
  /** Symlink names in /dev/v4l/by-id and /dev/v4l/by-path that point at this node. */
  byId?: string;
  byPath?: string;
}

export interface CsiCamera {
  kind: 'csi';
  index: number;
  sensor: string;
  /** Device-tree path of the sensor: fixed per connector, so it is the stable identity. */
  path: string;
  stableId: string;
  name: string;
  camera: RpicamCamera;
}

export interface SkippedNode {
  device: string;
  card?: string;
  reason: string;
}

export interface DiscoveryResult {
  usb: UsbCamera[];
  csi: CsiCamera[];
  skipped: SkippedNode[];
}

/**
 * SoC nodes that are not cameras: the Pi's codec/ISP blocks (bcm2835-codec, bcm2835-isp, rpivid,
 * pispbe) and CSI receivers (unicam on Pi 4, rp1-cfe on Pi 5) whose raw Bayer output needs the
 * ISP: a CSI camera is used through libcamera instead. Matched on driver or card name; Rockchip
 * ISP/codec nodes are listed too, since the same boards show up in the field.
 */
const SOC_NODE_PATTERNS: Array<[RegExp, string]> = [
  [/^bcm2835-codec/, 'Raspberry Pi codec node (bcm2835-codec)'],
  [/^bcm2835-isp/, 'Raspberry Pi ISP node (bcm2835-isp)'],
  [/^rpivid/, 'Raspberry Pi HEVC decoder node (rpivid)'],
  [/^pispbe|pisp_be|pisp-be/, 'Raspberry Pi 5 ISP back end node (pispbe)'],
  [/^rp1-cfe|^rp1_cfe/, 'Raspberry Pi 5 CSI receiver (rp1-cfe): use the CSI (libcamera) source'],
  [/^unicam/, 'Raspberry Pi CSI receiver (unicam): use the CSI (libcamera) source'],
  [/^rkisp|^rockchip-|^hantro|^rkvdec/, 'Rockchip ISP/codec node'],
];

function socReason(info: V4l2Info, sysName: string | undefined): string | undefined {
  for (const name of [info.driver, info.card, sysName]) {
    if (!name) continue;
    for (const [re, why] of SOC_NODE_PATTERNS) if (re.test(name)) return why;
  }
  return undefined;
}

function captureReason(caps: string[]): string | undefined {
  if (caps.length === 0) return undefined;
  if (caps.some((c) => /Memory-to-Memory/.test(c))) return 'memory-to-memory (codec) node';
  if (!caps.some((c) => /^Video Capture/.test(c))) return `not a video capture node (${caps.join(', ')})`;
  return undefined;
}

export function slugify(text: string): string {
  const s = text
    .toLowerCase()
    .replace(/\(tm\)|\(r\)|®|™/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s.length > 0 ? s.slice(0, 48) : 'camera';
}

async function readTrim(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Map node name (video0) to the link names in /dev/v4l/<dir> that resolve to it. */
async function linksByNode(rootDir: string, dir: 'by-id' | 'by-path'): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const base = path.join(rootDir, 'dev/v4l', dir);
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    try {
      const target = await readlink(path.join(base, name));
      const node = path.basename(path.resolve(base, target));
      // index0 is the capture interface of a UVC camera; keep the first link per node.
      if (!out.has(node)) out.set(node, name);
    } catch {
      // Not a symlink: ignore.
    }
  }
  return out;
}

async function listNodes(rootDir: string): Promise<string[]> {
  const byNumber = (a: string, b: string): number => Number(a.slice(5)) - Number(b.slice(5));
  for (const dir of ['sys/class/video4linux', 'dev']) {
    try {
      const names = (await readdir(path.join(rootDir, dir))).filter((n) => /^video\d+$/.test(n));
      if (names.length > 0) return names.sort(byNumber);
    } catch {
      // Try the next place.
    }
  }
  return [];
}

const stripIndexSuffix = (link: string): string => link.replace(/-video-index\d+$/, '');

/**
 * Identity that survives reboots and renumbering, in order of preference:
 *  1. the udev serial (`usb-<ID_SERIAL>`, the by-id name), when the camera reports a serial
 *     number and no other attached camera reports the same one: follows the camera to any port;
 *  2. the physical port (`path-<ID_PATH>`, the by-path name): two identical cameras without
 *     serials keep their names as long as they stay in their ports;
 *  3. card name and bus info as a last resort.
 */
export function stableIdentity(
  cam: Pick<UsbCamera, 'serial' | 'idSerial' | 'byId' | 'byPath' | 'idPath' | 'card' | 'busInfo'>,
  serialIsUnique: boolean,
): string {
  if (cam.serial && serialIsUnique) {
    if (cam.byId) return stripIndexSuffix(cam.byId);
    return `usb-${cam.idSerial ?? cam.serial}`;
  }
  if (cam.idPath) return `path-${cam.idPath}`;
  if (cam.byPath) return `path-${stripIndexSuffix(cam.byPath)}`;
  return `card-${slugify(cam.card)}-${slugify(cam.busInfo ?? 'unknown-bus')}`;
}

export async function discoverUsbCameras(opts: DiscoverOptions = {}): Promise<{ cameras: UsbCamera[]; skipped: SkippedNode[] }> {
  const rootDir = opts.rootDir ?? '/';
  const nodes = await listNodes(rootDir);
  const byId = await linksByNode(rootDir, 'by-id');
  const byPath = await linksByNode(rootDir, 'by-path');
  const cameras: UsbCamera[] = [];
  const skipped: SkippedNode[] = [];
  let toolMissing = false;

  for (const node of nodes) {
    const device = path.join(rootDir, 'dev', node);
    const sysName = await readTrim(path.join(rootDir, 'sys/class/video4linux', node, 'name'));
    let info: V4l2Info = { capabilities: [], deviceCaps: [] };
    if (!toolMissing) {
      const res = await runTool('v4l2-ctl', ['-d', device, '--info'], opts);
      if (!res.found) toolMissing = true;
      else if (res.exitCode !== 0) {
        skipped.push({ device, card: sysName, reason: `v4l2-ctl cannot open it: ${res.stderr.trim() || `exit ${res.exitCode}`}` });
        continue;
      } else info = parseV4l2Info(res.stdout);
    }
    const udevRes = await runTool('udevadm', ['info', '--query=property', `--name=${device}`], opts);
    const udev = udevRes.found && udevRes.exitCode === 0 ? parseUdevInfo(udevRes.stdout).properties : {};
    const card = info.card ?? (udev.ID_V4L_PRODUCT ? udevUnescape(udev.ID_V4L_PRODUCT) : undefined) ?? sysName ?? node;

    const soc = socReason(info, sysName);
    if (soc) {
      skipped.push({ device, card, reason: soc });
      continue;
    }
    let notCapture = captureReason(nodeCaps(info));
    if (nodeCaps(info).length === 0) {
      // Without v4l2-ctl, udev's per-node capability tag decides (it uses Device Caps too).
      const tag = udev.ID_V4L_CAPABILITIES;
      if (tag === undefined) notCapture = 'cannot tell whether this is a capture node (no v4l2-ctl --info, no udev capability tag)';
      else if (!tag.includes(':capture:')) notCapture = `not a video capture node (udev: ${tag})`;
    }
    if (notCapture) {
      skipped.push({ device, card, reason: notCapture });
      continue;
    }
    const cam: UsbCamera = {
      kind: 'v4l2',
      device,
      stableId: '',
      name: slugify(card.split(':')[0] ?? card),
      card,
    };
    if (info.driver) cam.driver = info.driver;
    if (info.busInfo) cam.busInfo = info.busInfo;
    if (udev.ID_SERIAL_SHORT) cam.serial = udev.ID_SERIAL_SHORT;
    if (udev.ID_SERIAL) cam.idSerial = udev.ID_SERIAL;
    if (udev.ID_PATH) cam.idPath = udev.ID_PATH;
    const idLink = byId.get(node);
    const pathLink = byPath.get(node);
    if (idLink) cam.byId = idLink;
    if (pathLink) cam.byPath = pathLink;
    cameras.push(cam);
  }
  if (toolMissing && nodes.length > 0 && cameras.length === 0) {
    throw new Error('v4l2-ctl not found on PATH (install v4l-utils): cannot tell capture nodes from others');
  }
  // A serial shared by two attached cameras (cheap cameras ship "SN0001") identifies neither.
  const serialCount = new Map<string, number>();
  for (const c of cameras) if (c.serial) serialCount.set(c.serial, (serialCount.get(c.serial) ?? 0) + 1);
  for (const c of cameras) {
    // Without udev (no ID_SERIAL_SHORT) a by-id link whose name is unique still identifies the camera.
    const serialKnown = c.serial ?? (c.byId && cameras.filter((o) => o.byId === c.byId).length === 1 ? c.byId : undefined);
    const unique = serialKnown !== undefined && (c.serial === undefined || serialCount.get(c.serial) === 1);
    c.stableId = stableIdentity({ ...c, serial: serialKnown }, unique);
  }
  // Identical cameras get the same card name: number them in stable-identity order, which does
  // not depend on enumeration order, so each keeps its name across reboots.
  const byName = new Map<string, UsbCamera[]>();
  for (const c of cameras) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  for (const group of byName.values()) {
    if (group.length < 2) continue;
    [...group].sort((a, b) => a.stableId.localeCompare(b.stableId)).forEach((c, i) => {
      if (i > 0) c.name = `${c.name}-${i + 1}`;
    });
  }
  return { cameras, skipped };
}

/**
 * CSI cameras from `rpicam-hello --list-cameras`, falling back to the older `libcamera-hello`
 * name. No tool means no CSI stack: an empty list, not an error.
 */
export async function discoverCsiCameras(opts: RunToolOptions = {}): Promise<CsiCamera[]> {
  let res = await runTool('rpicam-hello', ['--list-cameras'], opts);
  if (!res.found) res = await runTool('libcamera-hello', ['--list-cameras'], opts);
  if (!res.found || res.exitCode !== 0) return [];
  return parseRpicamListCameras(res.stdout).cameras.map((camera) => ({
    kind: 'csi',
    index: camera.index,
    sensor: camera.sensor,
    path: camera.path,
    stableId: `csi-${camera.path.replace(/^\//, '').replace(/[^A-Za-z0-9@._-]+/g, '-')}`,
    name: slugify(camera.sensor),
    camera,
  }));
}

export async function discoverCameras(opts: DiscoverOptions = {}): Promise<DiscoveryResult> {
  const { cameras, skipped } = await discoverUsbCameras(opts);
  const csi = await discoverCsiCameras(opts);
  return { usb: cameras, csi, skipped };
}
