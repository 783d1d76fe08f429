import type { Writable } from 'node:stream';
import { sendFileBytes, sendZeros, written } from './file-send.ts';

/**
 * A streaming POSIX tar (ustar, with pax extended headers for a long name or a file of 8 GiB or more) of regular
 * files: all this project needs to export a session folder, without an archive dependency. Each file is read in
 * exactly the size its header declares (a file that shrank is padded with zeros, one that grew is cut), so the
 * archive stays well-formed whatever happens to the files meanwhile.
 */

const BLOCK = 512;
const enc = new TextEncoder();

function field(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value, offset, length, 'utf8');
}

/** An octal number field (NUL-terminated), or null when it does not fit. */
function octal(n: number, length: number): string | null {
  const s = Math.floor(n).toString(8);
  return s.length <= length - 1 ? s.padStart(length - 1, '0') + '\0' : null;
}

function header(name: string, size: number, mtimeS: number, type: '0' | 'x', mode = 0o644): Buffer {
  const h = Buffer.alloc(BLOCK);
  field(h, 0, 100, name);
  field(h, 100, 8, octal(mode, 8)!);
  field(h, 108, 8, octal(0, 8)!);
  field(h, 116, 8, octal(0, 8)!);
  field(h, 124, 12, octal(size, 12) ?? octal(0, 12)!);
  field(h, 136, 12, octal(mtimeS, 12) ?? octal(0, 12)!);
  h.fill(0x20, 148, 156); // checksum computed over spaces
  field(h, 156, 1, type);
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 265, 32, 'rigcam');
  field(h, 297, 32, 'rigcam');
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

function pad(size: number): Buffer {
  const r = size % BLOCK;
  return Buffer.alloc(r ? BLOCK - r : 0);
}

/** A pax record "<len> key=value\n", whose length counts itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = enc.encode(body).length + 1;
  while (String(len).length + enc.encode(body).length !== len) len = String(len).length + enc.encode(body).length;
  return `${len}${body}`;
}

/** The header block(s) of one entry: a pax header first when the name or the size does not fit ustar. */
export function entryHeader(name: string, size: number, mtimeS: number): Buffer[] {
  const nameBytes = enc.encode(name).length;
  const records: string[] = [];
  let short = name;
  if (nameBytes > 100 || /[^\x20-\x7e]/.test(name)) {
    records.push(paxRecord('path', name));
    short = name.replace(/[^\x20-\x7e]/g, '_').slice(-100);
  }
  if (octal(size, 12) === null) records.push(paxRecord('size', String(size)));
  const out: Buffer[] = [];
  if (records.length) {
    const body = Buffer.from(records.join(''), 'utf8');
    out.push(header(`PaxHeader/${short}`.slice(0, 100), body.length, mtimeS, 'x'), body, pad(body.length));
  }
  out.push(header(short, size, mtimeS, '0'));
  return out;
}

export type TarEntry = { name: string; mtimeS: number } & ({ data: Buffer } | { file: string; size: number });

/**
 * The archive written to the response: headers, contents (files sent through reused buffers, api/file-send) and
 * padding, then the two zero blocks and the end. Stops when the client goes away.
 */
export async function writeTar(res: Writable, entries: AsyncIterable<TarEntry> | Iterable<TarEntry>): Promise<void> {
  for await (const e of entries) {
    const size = 'data' in e ? e.data.length : e.size;
    for (const h of entryHeader(e.name, size, e.mtimeS)) if (!(await written(res, h))) return;
    if ('data' in e) {
      if (!(await written(res, e.data))) return;
    } else if (size > 0) {
      const { bytes, gone } = await sendFileBytes(res, e.file, 0, size);
      if (gone || (bytes < size && !(await sendZeros(res, size - bytes)))) return; // zeros: the file shrank since its size was taken
    }
    if (!(await written(res, pad(size)))) return;
  }
  if (await written(res, Buffer.alloc(BLOCK * 2))) res.end();
}
