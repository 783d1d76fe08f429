/**
 * The timing rigcam writes inside the video: one H.264 SEI NAL unit per access unit, carrying a
 * user_data_unregistered message (payload type 5, H.264 D.1.6) under rigcam's own UUID, so a file separated
 * from its CSV and database still says when each of its frames was captured.
 *
 * Message layout (all big-endian, 37 bytes of payload):
 *   uuid_iso_iec_11578  16 bytes  075def9c-74dd-4c70-bc35-2029a7c82390 (RIGCAM_SEI_UUID, fixed forever)
 *   version              1 byte   1
 *   frame_index          uint32   1-based position of the frame in its file (the CSV's frame_index)
 *   capture_us           int64    capture time, CLOCK_MONOTONIC µs (the CSV's capture_us)
 *   wall_us              int64    capture time, µs since the Unix epoch (the CSV's record_time_unix × 10^6)
 * A reader must skip messages with another UUID and, for a version it does not know, may still read the fields
 * above (later versions only append).
 */

/** rigcam's user_data_unregistered UUID: 075def9c-74dd-4c70-bc35-2029a7c82390 (generated once; never change it). */
export const RIGCAM_SEI_UUID = Buffer.from('075def9c74dd4c70bc352029a7c82390', 'hex');
export const RIGCAM_SEI_VERSION = 1;

const SEI_NAL_TYPE = 6;
const USER_DATA_UNREGISTERED = 5;
/** Bytes of rigcam's message after the UUID: version, frame index, capture and wall time. */
const BODY_BYTES = 1 + 4 + 8 + 8;

export interface SeiTiming {
  /** 1-based position of the frame in its file. */
  frameIndex: number;
  /** Capture time, CLOCK_MONOTONIC µs. */
  captureUs: number;
  /** Capture time, µs since the Unix epoch. */
  wallUs: number;
}

export interface ParsedSeiTiming extends SeiTiming {
  version: number;
}

/** sei_message payload type or size as H.264 7.3.2.3.1 codes it: a run of 0xFF bytes, then the remainder. */
export function seiVarint(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`SEI size/type ${n} is not a non-negative integer`);
  const ff = Math.floor(n / 255);
  const out = Buffer.alloc(ff + 1, 0xff);
  out[ff] = n % 255;
  return out;
}

/**
 * Annex B NAL unit (4-byte start code, header byte 0x06) with one user_data_unregistered message:
 * RBSP = type, size, uuid, data, rbsp_trailing_bits; emulation prevention applied to everything after the header.
 */
export function buildUserDataUnregisteredNal(uuid: Uint8Array, data: Uint8Array): Buffer {
  if (uuid.length !== 16) throw new RangeError('uuid must be 16 bytes');
  const size = seiVarint(16 + data.length);
  const rbsp = Buffer.concat([Buffer.from([USER_DATA_UNREGISTERED]), size, uuid, data, Buffer.from([0x80])]);
  return Buffer.concat([Buffer.from([0, 0, 0, 1, SEI_NAL_TYPE]), addEmulationPrevention(rbsp)]);
}

/** rigcam's timing SEI NAL unit for one frame, ready to insert into the Annex B stream. */
export function buildTimingSei(t: SeiTiming): Buffer {
  if (!Number.isInteger(t.frameIndex) || t.frameIndex < 1 || t.frameIndex > 0xffffffff) throw new RangeError(`frame index ${t.frameIndex} out of range`);
  if (!Number.isSafeInteger(t.captureUs) || !Number.isSafeInteger(t.wallUs)) throw new RangeError('times must be integers of µs');
  const body = Buffer.alloc(BODY_BYTES);
  body[0] = RIGCAM_SEI_VERSION;
  body.writeUInt32BE(t.frameIndex, 1);
  body.writeBigInt64BE(BigInt(t.captureUs), 5);
  body.writeBigInt64BE(BigInt(t.wallUs), 13);
  return buildUserDataUnregisteredNal(RIGCAM_SEI_UUID, body);
}

/** Inserts 0x03 after every 0x00 0x00 followed by a byte ≤ 0x03 (H.264 7.4.1), so no start code can appear inside. */
export function addEmulationPrevention(rbsp: Uint8Array): Buffer {
  let extra = 0;
  for (let i = 0, z = 0; i < rbsp.length; i++) {
    const b = rbsp[i]!;
    if (z >= 2 && b <= 3) {
      extra++;
      z = 0;
    }
    z = b === 0 ? z + 1 : 0;
  }
  const out = Buffer.allocUnsafe(rbsp.length + extra);
  let o = 0;
  for (let i = 0, z = 0; i < rbsp.length; i++) {
    const b = rbsp[i]!;
    if (z >= 2 && b <= 3) {
      out[o++] = 3;
      z = 0;
    }
    out[o++] = b;
    z = b === 0 ? z + 1 : 0;
  }
  return out;
}

/** Removes emulation_prevention_three_byte (0x03 after 0x00 0x00). */
export function removeEmulationPrevention(ebsp: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(ebsp.length);
  let o = 0;
  for (let i = 0, z = 0; i < ebsp.length; i++) {
    const b = ebsp[i]!;
    if (z >= 2 && b === 3) {
      z = 0;
      continue;
    }
    out[o++] = b;
    z = b === 0 ? z + 1 : 0;
  }
  return out.subarray(0, o);
}

/**
 * The user_data_unregistered messages of one SEI NAL unit (`nal` starts at the NAL header byte, without start
 * code), as {uuid, data}. Malformed messages end the walk (what was read before them is returned).
 */
export function userDataUnregistered(nal: Uint8Array): Array<{ uuid: Buffer; data: Buffer }> {
  if (nal.length < 2 || (nal[0]! & 0x1f) !== SEI_NAL_TYPE) return [];
  const rbsp = removeEmulationPrevention(nal.subarray(1));
  const out: Array<{ uuid: Buffer; data: Buffer }> = [];
  let p = 0;
  // more_rbsp_data: stop at the rbsp_trailing_bits byte (0x80) that ends the NAL.
  while (p < rbsp.length && !(rbsp[p] === 0x80 && p === rbsp.length - 1)) {
    let type = 0;
    while (p < rbsp.length && rbsp[p] === 0xff) (type += 255), p++;
    if (p >= rbsp.length) break;
    type += rbsp[p++]!;
    let size = 0;
    while (p < rbsp.length && rbsp[p] === 0xff) (size += 255), p++;
    if (p >= rbsp.length) break;
    size += rbsp[p++]!;
    if (p + size > rbsp.length) break;
    if (type === USER_DATA_UNREGISTERED && size >= 16) {
      out.push({ uuid: rbsp.subarray(p, p + 16), data: rbsp.subarray(p + 16, p + size) });
    }
    p += size;
  }
  return out;
}

/** rigcam's timing from one SEI NAL unit (from its header byte), or null when it carries none. */
export function parseTimingSei(nal: Uint8Array): ParsedSeiTiming | null {
  for (const m of userDataUnregistered(nal)) {
    if (!m.uuid.equals(RIGCAM_SEI_UUID) || m.data.length < BODY_BYTES) continue;
    const d = m.data;
    return {
      version: d[0]!,
      frameIndex: d.readUInt32BE(1),
      captureUs: Number(d.readBigInt64BE(5)),
      wallUs: Number(d.readBigInt64BE(13)),
    };
  }
  return null;
}
