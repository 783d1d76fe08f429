import { buildTimingSei, parseTimingSei, type ParsedSeiTiming, type SeiTiming } from '../timing/sei.ts';
import { TS_PACKET_SIZE as PKT } from './access-unit.ts';
import { H264_NAL } from './h264-nal.ts';

/**
 * Puts an SEI NAL unit into one H.264 access unit carried as whole 188-byte TS packets (a PES from its
 * payload_unit_start packet on), and reads it back.
 *
 * Insertion splits only the packet where the SEI goes (right before the first VCL NAL unit: after the AUD,
 * SPS, PPS and any SEI the encoder wrote, as H.264 7.4.1.2.3 orders them); every other packet is copied
 * verbatim, PES header (PTS/DTS) and first packet's adaptation field (PCR, random_access_indicator) included.
 * The split packet's bytes plus the SEI become as many packets as they need, the last one padded by
 * adaptation-field stuffing. Continuity counters are left as they were: the file writer renumbers them.
 * H.264 only: every rigcam source delivers H.264 (HEVC NAL headers would be misread).
 */

/** Absolute offset in `packets` of the first byte of the payload of the packet at `off`, or -1 if it has none. */
function payloadStart(packets: Uint8Array, off: number): number {
  const afc = (packets[off + 3]! >> 4) & 3;
  if (!(afc & 1)) return -1;
  if (!(afc & 2)) return off + 4;
  const start = off + 5 + packets[off + 4]!;
  return start < off + PKT ? start : -1;
}

/**
 * Offset (in `packets`) where the PES payload (the Annex B stream) begins, or -1 when the first packet does
 * not start a PES with its whole header (then nothing is touched).
 */
function esStart(packets: Uint8Array): number {
  if (packets.length < PKT || packets.length % PKT !== 0 || packets[0] !== 0x47 || !(packets[1]! & 0x40)) return -1;
  const p = payloadStart(packets, 0);
  if (p < 0 || p + 9 > PKT) return -1;
  if (packets[p] !== 0 || packets[p + 1] !== 0 || packets[p + 2] !== 1) return -1;
  if ((packets[p + 6]! & 0xc0) !== 0x80) return -1;
  const end = p + 9 + packets[p + 8]!;
  return end <= PKT ? end : -1;
}

/**
 * Offset in `packets` where the SEI goes: the start of the start code (its zero_byte included) of the first VCL
 * NAL unit (types 1–5). -1 when there is none or the PES cannot be read.
 */
export function seiInsertPoint(packets: Uint8Array): number {
  const first = esStart(packets);
  if (first < 0) return -1;
  let zeros = 0;
  let zeroStart = -1;
  let nalStart = -1;
  let atHeader = false;
  for (let off = 0; off < packets.length; off += PKT) {
    const from = off === 0 ? first : payloadStart(packets, off);
    if (from < 0) continue;
    for (let i = from, end = off + PKT; i < end; i++) {
      const b = packets[i]!;
      if (atHeader) {
        atHeader = false;
        const type = b & 0x1f;
        if (!(b & 0x80) && type >= H264_NAL.SLICE && type <= H264_NAL.IDR) return nalStart;
      }
      if (b === 0) {
        if (zeros === 0) zeroStart = i;
        zeros++;
      } else {
        if (b === 1 && zeros >= 2) {
          atHeader = true;
          nalStart = zeroStart;
        }
        zeros = 0;
      }
    }
  }
  return -1;
}

/** Bytes of an adaptation field (from its flags byte, `afLen` long) that carry information, stuffing excluded. */
function adaptationCore(buf: Uint8Array, flagsAt: number, afLen: number): number {
  if (afLen === 0) return 0;
  const flags = buf[flagsAt]!;
  if (flags === 0) return 0; // nothing but stuffing
  let n = 1;
  if (flags & 0x10) n += 6; // PCR
  if (flags & 0x08) n += 6; // OPCR
  if (flags & 0x04) n += 1; // splice_countdown
  if (flags & 0x02 && n < afLen) n += 1 + buf[flagsAt + n]!; // transport_private_data
  if (flags & 0x01 && n < afLen) n += 1 + buf[flagsAt + n]!; // adaptation_field_extension
  return Math.min(n, afLen);
}

/**
 * A copy of the access unit's packets with `nal` (an Annex B NAL unit with its start code) inserted before the
 * first VCL NAL unit, or null when the access unit cannot be read (then the caller writes it unchanged).
 * One output buffer; O(bytes of the access unit).
 */
export function insertNalIntoAccessUnit(packets: Buffer, nal: Uint8Array): Buffer | null {
  const parts = insertNalParts(packets, nal);
  return parts && Buffer.concat(parts);
}

/**
 * The same as insertNalIntoAccessUnit, as consecutive parts that are views of `packets` where it is unchanged: only
 * the re-cut packets (and the first packet, when its PES_packet_length changes) are new. For a writer that copies
 * what it writes anyway (the file writer renumbers continuity counters), so the frame is copied once, not twice.
 */
export function insertNalParts(packets: Buffer, nal: Uint8Array): Buffer[] | null {
  const at = seiInsertPoint(packets);
  if (at < 0) return null;
  const k = at - (at % PKT); // the packet that is split
  const ps = payloadStart(packets, k);
  const afc = (packets[k + 3]! >> 4) & 3;
  const coreLen = afc & 2 ? adaptationCore(packets, k + 5, packets[k + 4]!) : 0;
  const firstAf = coreLen > 0 ? 1 + coreLen : 0;

  // Content of the split packet: its payload up to `at`, the NAL, the rest of its payload.
  const headLen = at - ps;
  const tailLen = k + PKT - at;
  const contentLen = headLen + nal.length + tailLen;
  const firstCap = PKT - 4 - firstAf;
  const count = contentLen <= firstCap ? 1 : 1 + Math.ceil((contentLen - firstCap) / (PKT - 4));

  const out = Buffer.allocUnsafe(count * PKT); // the re-cut packets
  let o = 0;
  let done = 0; // content bytes written
  for (let j = 0; j < count; j++) {
    const af = j === 0 ? firstAf : 0;
    const cap = PKT - 4 - af;
    const take = Math.min(cap, contentLen - done);
    const stuff = cap - take;
    out[o] = 0x47;
    out[o + 1] = j === 0 ? packets[k + 1]! & 0x7f : packets[k + 1]! & 0x1f; // PUSI only on the first; TEI off
    out[o + 2] = packets[k + 2]!;
    const hasAf = af + stuff > 0;
    out[o + 3] = (packets[k + 3]! & 0xcf) | (hasAf ? 0x30 : 0x10);
    let w = o + 4;
    if (hasAf) {
      if (af > 0) {
        // The original core (flags, PCR, ...) then stuffing bytes, in one adaptation field.
        out[w] = coreLen + stuff;
        packets.copy(out, w + 1, k + 5, k + 5 + coreLen);
        w += 1 + coreLen;
        out.fill(0xff, w, w + stuff);
        w += stuff;
      } else if (stuff === 1) {
        out[w++] = 0; // adaptation_field_length 0: one byte of stuffing
      } else {
        out[w] = stuff - 1;
        out[w + 1] = 0; // no flags
        out.fill(0xff, w + 2, w + stuff);
        w += stuff;
      }
    }
    w = copyContent(out, w, done, take, packets, ps, headLen, nal, at, tailLen);
    done += take;
    o += PKT;
  }
  const parts: Buffer[] = [];
  if (k > 0) parts.push(packets.subarray(0, k));
  parts.push(out);
  if (k + PKT < packets.length) parts.push(packets.subarray(k + PKT));

  // A bounded PES_packet_length grows by the NAL (video may use 0, "unbounded", when it no longer fits). It is in the
  // first packet: when that one was not re-cut, it is copied rather than changed in the caller's buffer.
  const first = k === 0 ? out : Buffer.from(packets.subarray(0, PKT));
  const p0 = payloadStart(first, 0);
  const pesLen = (first[p0 + 4]! << 8) | first[p0 + 5]!;
  if (pesLen !== 0) {
    const grown = pesLen + nal.length;
    first.writeUInt16BE(grown > 0xffff ? 0 : grown, p0 + 4);
    if (k > 0) parts.splice(0, 1, first, ...(k > PKT ? [packets.subarray(PKT, k)] : []));
  }
  return parts;
}

/** Copies content bytes [from, from+len) of (head, nal, tail) into out at w; returns the new w. */
function copyContent(
  out: Buffer,
  w: number,
  from: number,
  len: number,
  packets: Buffer,
  ps: number,
  headLen: number,
  nal: Uint8Array,
  at: number,
  tailLen: number,
): number {
  let pos = from;
  const end = from + len;
  while (pos < end) {
    if (pos < headLen) {
      const n = Math.min(end, headLen) - pos;
      packets.copy(out, w, ps + pos, ps + pos + n);
      w += n;
      pos += n;
    } else if (pos < headLen + nal.length) {
      const s = pos - headLen;
      const n = Math.min(end - pos, nal.length - s);
      out.set(nal.subarray(s, s + n), w);
      w += n;
      pos += n;
    } else {
      const s = pos - headLen - nal.length;
      const n = Math.min(end - pos, tailLen - s);
      packets.copy(out, w, at + s, at + s + n);
      w += n;
      pos += n;
    }
  }
  return w;
}

/** The access unit with rigcam's timing SEI for this frame, or null when it cannot be read (write it as it is). */
export function stampAccessUnit(packets: Buffer, t: SeiTiming): Buffer | null {
  return insertNalIntoAccessUnit(packets, buildTimingSei(t));
}

/** stampAccessUnit as parts (see insertNalParts): for the file writer, which copies them once. */
export function stampAccessUnitParts(packets: Buffer, t: SeiTiming): Buffer[] | null {
  return insertNalParts(packets, buildTimingSei(t));
}

/** The Annex B bytes of one access unit (the PES payload after its header), or null when the PES is unreadable. */
export function accessUnitEs(packets: Buffer): Buffer | null {
  const first = esStart(packets);
  if (first < 0) return null;
  const parts: Buffer[] = [packets.subarray(first, PKT)];
  for (let off = PKT; off < packets.length; off += PKT) {
    const p = payloadStart(packets, off);
    if (p >= 0) parts.push(packets.subarray(p, off + PKT));
  }
  return Buffer.concat(parts);
}

/**
 * The NAL units of an Annex B buffer up to and including the first VCL NAL unit, each without start code and
 * without trailing zero bytes.
 */
export function nalUnitsBeforeSlice(es: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let zeros = 0;
  let start = -1; // first byte of the current NAL (its header)
  for (let i = 0; i < es.length; i++) {
    const b = es[i]!;
    if (b === 0) {
      zeros++;
      continue;
    }
    if (b === 1 && zeros >= 2) {
      if (start >= 0) out.push(es.subarray(start, i - zeros));
      start = i + 1;
      if (start < es.length) {
        const type = es[start]! & 0x1f;
        if (type >= H264_NAL.SLICE && type <= H264_NAL.IDR) {
          out.push(es.subarray(start, Math.min(es.length, start + 1)));
          return out;
        }
      }
    }
    zeros = 0;
  }
  if (start >= 0 && start < es.length) {
    let end = es.length;
    while (end > start && es[end - 1] === 0) end--;
    out.push(es.subarray(start, end));
  }
  return out;
}

/** rigcam's timing read back from one access unit's Annex B bytes, or null when it carries none. */
export function timingOfEs(es: Uint8Array): ParsedSeiTiming | null {
  for (const nal of nalUnitsBeforeSlice(es)) {
    if ((nal[0]! & 0x1f) !== H264_NAL.SEI) continue;
    const t = parseTimingSei(nal);
    if (t) return t;
  }
  return null;
}

/** rigcam's timing read back from one access unit's TS packets, or null when it carries none. */
export function timingOfAccessUnit(packets: Buffer): ParsedSeiTiming | null {
  const es = accessUnitEs(packets);
  return es ? timingOfEs(es) : null;
}
