import type { AccessUnit } from './access-unit.ts';
import { accessUnitEs, insertNalIntoAccessUnit, nalUnitsBeforeSlice } from './au-sei.ts';
import { H264_NAL } from './h264-nal.ts';

/**
 * Every keyframe decodable on its own: some encoders send SPS and PPS only at the start of the stream (rpicam-vid
 * without --inline, some UVC H.264 cameras, the Pi 4 encoder without repeat_sequence_header), so a recording, a
 * segment or a preview that begins at a later keyframe could not be decoded. One per source run: it keeps the
 * latest parameter sets seen and puts them before the first slice of a keyframe that lacks them (before the timing
 * SEI the recording adds there later, so the order stays SPS, PPS, SEI, slice). H.264 only, like every rigcam source.
 */
export class ParameterSets {
  private sps: Uint8Array[] = [];
  private pps: Uint8Array[] = [];
  /** Keyframes completed so far (for the status and tests). */
  inserted = 0;

  /** The access unit, completed when it is a keyframe without SPS/PPS and earlier ones are known. */
  complete(au: AccessUnit): AccessUnit {
    if (!au.keyframe) return au;
    const es = accessUnitEs(au.packets);
    if (!es) return au;
    const nals = nalUnitsBeforeSlice(es);
    const sps = nals.filter((n) => (n[0]! & 0x1f) === H264_NAL.SPS);
    const pps = nals.filter((n) => (n[0]! & 0x1f) === H264_NAL.PPS);
    if (sps.length) this.sps = sps.map((n) => Uint8Array.from(n));
    if (pps.length) this.pps = pps.map((n) => Uint8Array.from(n));
    if (pps.length && sps.length) return au;
    // Without an SPS both go in (a PPS is read against its SPS); with one, the PPS alone.
    const missing = sps.length ? this.pps : this.sps.length && this.pps.length ? [...this.sps, ...this.pps] : [];
    if (!missing.length) return au;
    const nal = annexB(missing);
    const packets = insertNalIntoAccessUnit(au.packets, nal);
    if (!packets) return au;
    this.inserted += 1;
    // The frame as written: its size counts the parameter sets (the file read back says the same).
    return { ...au, packets, payloadBytes: au.payloadBytes + nal.length };
  }
}

function annexB(nals: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(nals.reduce((n, x) => n + 4 + x.length, 0));
  let o = 0;
  for (const n of nals) {
    out.set([0, 0, 0, 1], o);
    out.set(n, o + 4);
    o += 4 + n.length;
  }
  return out;
}
