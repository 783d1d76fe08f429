/**
 * Finds NAL unit types in an Annex B byte stream (start code 00 00 01 or 00 00 00 01) that arrives in
 * pieces, e.g. the PES payload of one frame spread over many TS packets. Start codes may straddle
 * pieces. Only what the demuxer needs: is the frame an IDR / IRAP, and does it carry an SPS.
 */

export type VideoCodec = 'h264' | 'hevc';

export const H264_NAL = { SLICE: 1, IDR: 5, SEI: 6, SPS: 7, PPS: 8, AUD: 9 } as const;
export const HEVC_NAL = { BLA_W_LP: 16, CRA: 21, VPS: 32, SPS: 33, PPS: 34, AUD: 35 } as const;

/** MPEG-TS stream_type values of the video codecs the demuxer follows. */
export const STREAM_TYPE_H264 = 0x1b;
export const STREAM_TYPE_HEVC = 0x24;

export function codecOfStreamType(streamType: number): VideoCodec | null {
  if (streamType === STREAM_TYPE_H264) return 'h264';
  if (streamType === STREAM_TYPE_HEVC) return 'hevc';
  return null;
}

export interface NalSummary {
  /** An IDR slice (H.264 type 5) or an IRAP picture (HEVC types 16–23) was seen. */
  idr: boolean;
  /** A sequence parameter set (H.264 type 7, HEVC type 33) was seen. */
  sps: boolean;
  /** NAL types in order of appearance, up to and including the first slice (at most 64). */
  types: number[];
}

export class NalScanner {
  private zeros = 0;
  private atHeader = false;
  private sawSlice = false;
  private readonly summary: NalSummary = { idr: false, sps: false, types: [] };

  constructor(private readonly codec: VideoCodec = 'h264') {}

  /**
   * True once the first slice of the picture has been seen. All slices of one picture share its
   * IDR-ness and parameter sets come before the slices, so the rest of the frame need not be scanned.
   */
  get done(): boolean {
    return this.sawSlice;
  }

  get result(): NalSummary {
    return this.summary;
  }

  /** Scans bytes [start, end) of `buf`. Cheap to call after `done` (does nothing). */
  push(buf: Uint8Array, start = 0, end = buf.length): void {
    let zeros = this.zeros;
    for (let i = start; i < end && !this.sawSlice; i++) {
      const b = buf[i];
      if (this.atHeader) {
        this.atHeader = false;
        this.onNalHeader(b);
        zeros = b === 0 ? 1 : 0;
      } else if (b === 0) {
        zeros++;
      } else {
        if (b === 1 && zeros >= 2) this.atHeader = true;
        zeros = 0;
      }
    }
    this.zeros = zeros;
  }

  private onNalHeader(byte: number): void {
    if (byte & 0x80) return; // forbidden_zero_bit: not a NAL header we can trust
    const types = this.summary.types;
    if (this.codec === 'h264') {
      const type = byte & 0x1f;
      if (types.length < 64) types.push(type);
      if (type === H264_NAL.SPS) this.summary.sps = true;
      if (type === H264_NAL.IDR) this.summary.idr = true;
      if (type >= 1 && type <= 5) this.sawSlice = true;
    } else {
      const type = (byte >> 1) & 0x3f;
      if (types.length < 64) types.push(type);
      if (type === HEVC_NAL.SPS) this.summary.sps = true;
      if (type >= 16 && type <= 23) this.summary.idr = true;
      if (type <= 31) this.sawSlice = true;
    }
  }
}

/** One-shot summary of a complete Annex B buffer. */
export function scanNalUnits(buf: Uint8Array, codec: VideoCodec = 'h264'): NalSummary {
  const s = new NalScanner(codec);
  s.push(buf);
  return s.result;
}
