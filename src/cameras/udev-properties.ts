/**
 * Parser for `udevadm info --query=property --name=/dev/videoN` (KEY=VALUE lines) and the full
 * `udevadm info` form (P:/N:/S:/E: lines). udev escapes spaces in *_ENC values as \x20.
 */

export interface UdevInfo {
  properties: Record<string, string>;
  /** Symlinks below /dev (S: lines, or DEVLINKS), e.g. "v4l/by-id/usb-046d_..-video-index0". */
  links: string[];
}

export function parseUdevInfo(text: string): UdevInfo {
  const properties: Record<string, string> = {};
  const links: string[] = [];
  for (const raw of text.replace(/\r\n/g, '\n').split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const tagged = line.match(/^([A-Z]):\s?(.*)$/);
    if (tagged) {
      if (tagged[1] === 'S') links.push((tagged[2] ?? '').trim());
      if (tagged[1] !== 'E') continue;
    }
    const body = tagged ? tagged[2] ?? '' : line;
    const eq = body.indexOf('=');
    if (eq <= 0) continue;
    properties[body.slice(0, eq)] = body.slice(eq + 1);
  }
  if (links.length === 0 && properties.DEVLINKS) {
    for (const l of properties.DEVLINKS.split(/\s+/)) if (l) links.push(l.replace(/^\/dev\//, ''));
  }
  return { properties, links };
}

/** Decode udev's \xNN escapes (ID_MODEL_ENC=Logitech\x20Webcam). */
export function udevUnescape(value: string): string {
  return value.replace(/\\x([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
