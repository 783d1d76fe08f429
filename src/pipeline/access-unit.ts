/**
 * One coded video frame as it travelled in the MPEG-TS stream: the TS packets that carried it,
 * kept byte for byte so a recording is a verbatim copy of what the source produced.
 */
export interface AccessUnit {
  /** PID of the video elementary stream. */
  pid: number;
  /** PTS as carried in the stream (33 bits, 90 kHz). */
  ptsRaw: number;
  /** PTS unwrapped across 33-bit wraps since the demuxer started (90 kHz ticks, monotonic). */
  pts: number;
  /** DTS unwrapped the same way (equals pts when the stream carries no DTS). */
  dts: number;
  /** True when the frame is a random access point (IDR / random_access_indicator). */
  keyframe: boolean;
  /** The whole 188-byte TS packets of this frame, concatenated (length is a multiple of 188). */
  packets: Buffer;
  /** Size of the elementary-stream payload in bytes (the coded frame). */
  payloadBytes: number;
  /** True when a continuity-counter error or packet loss was seen inside or just before this frame. */
  discontinuity: boolean;
  /** Running count of access units emitted by this demuxer (0-based). */
  seq: number;
}

export const TS_PACKET_SIZE = 188;
export const PTS_WRAP = 2 ** 33;
export const PTS_HZ = 90_000;
