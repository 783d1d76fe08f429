/**
 * Parser for `v4l2-ctl --info` (`-D`): driver, card, bus and the per-node "Device Caps".
 *
 * "Capabilities" describe the whole physical device (a UVC camera's metadata node says
 * "Video Capture" there too); "Device Caps" describe this node alone, so node decisions use
 * them. Old v4l-utils print "Driver name   :" with less padding and may lack Device Caps.
 */

export interface V4l2Info {
  driver?: string;
  card?: string;
  busInfo?: string;
  capabilities: string[];
  deviceCaps: string[];
}

export function parseV4l2Info(text: string): V4l2Info {
  const info: V4l2Info = { capabilities: [], deviceCaps: [] };
  let list: string[] | null = null;
  let inDriverInfo = false;
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    if (/^Driver Info/.test(line)) {
      inDriverInfo = true;
      continue;
    }
    // Only the first block counts ("Media Driver Info" repeats "Driver name").
    if (!/^\s/.test(line) && line.trim() !== '') {
      inDriverInfo = false;
      list = null;
      continue;
    }
    if (!inDriverInfo) continue;
    // Key lines carry a colon; the capability names listed under a key never do.
    const kv = line.match(/^\s*([^:]+?)\s*:\s?(.*)$/);
    if (kv) {
      const key = kv[1] ?? '';
      const value = (kv[2] ?? '').trim();
      list = null;
      if (key === 'Driver name') info.driver = value;
      else if (key === 'Card type') info.card = value;
      else if (key === 'Bus info') info.busInfo = value;
      else if (key === 'Capabilities') list = info.capabilities;
      else if (key === 'Device Caps') list = info.deviceCaps;
      continue;
    }
    if (list && line.trim() !== '') list.push(line.trim());
  }
  return info;
}

/** The caps that decide what a node is: Device Caps when printed, else the device's. */
export function nodeCaps(info: V4l2Info): string[] {
  return info.deviceCaps.length > 0 ? info.deviceCaps : info.capabilities;
}
