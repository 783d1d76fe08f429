import { PTS_WRAP, TS_PACKET_SIZE, type AccessUnit } from './access-unit.ts';
import { NalScanner, codecOfStreamType, type VideoCodec } from './h264-nal.ts';
import { PtsUnwrapper, unwrapNear } from './pts-unwrap.ts';

/**
 * Push-based MPEG-TS demuxer for the one video stream (H.264, or HEVC) of a program, as written by
 * ffmpeg's and libav's mpegts muxers. It does not reassemble the elementary stream: it groups the TS
 * packets of the video PID into access units (PUSI to next PUSI), kept byte for byte, and reads just
 * enough of each (PES timestamps, adaptation flags, first NAL units) to time it and spot keyframes.
 *
 * Per packet it only reads header bytes in place (no allocation): a frame is a list of runs of
 * consecutive packets in the input chunks. A frame that is one run, the usual case (a source flushes
 * each frame in one write), is handed on as a view of its chunk, not a copy; see SHARE_MIN_FILL.
 */

export interface DemuxWarning {
  kind: 'sync' | 'continuity' | 'pes' | 'psi';
  pid?: number;
  message: string;
}

export interface TsDemuxerOptions {
  onAccessUnit: (au: AccessUnit) => void;
  onWarning?: (w: DemuxWarning) => void;
}

export interface TsDemuxerStats {
  /** TS packets accepted (after sync), of any PID. */
  packets: number;
  accessUnits: number;
  continuityErrors: number;
  /** Runs of bytes skipped to find packet sync (garbage before or inside the stream). */
  syncLosses: number;
  /** Bytes given to push(). */
  bytes: number;
}

const PKT = TS_PACKET_SIZE;
const SYNC = 0x47;
const PAT_PID = 0x0000;
const NULL_PID = 0x1fff;
const MAX_SECTION = 1024; // PAT and PMT sections are at most 1024 bytes (section_length ≤ 1021)
/**
 * A frame that lies in one run of one chunk is a view of that chunk (no copy) when it fills at least this share of
 * the chunk's memory: a view keeps the whole chunk alive (in the pre-roll ring, for seconds), so a small frame of a
 * big chunk is copied instead and what is held stays within twice what the ring counts.
 */
const SHARE_MIN_FILL = 0.5;

/** One frame being gathered, from its PUSI packet up to the next. */
interface PendingAu {
  pid: number;
  /** Runs of consecutive packets already closed (another PID's packet or a chunk boundary came between). */
  runs: Buffer[];
  /** The open run: bytes [runStart, runEnd) of runBuf. */
  runBuf: Buffer | null;
  runStart: number;
  runEnd: number;
  size: number;
  /** PES header bytes gathered so far, while the header is not yet complete. */
  headerPart: Buffer | null;
  headerDone: boolean;
  headerBad: boolean;
  ptsRaw: number | null;
  dtsRaw: number | null;
  /** Payload length the PES header declares, or null when unbounded (PES_packet_length 0). */
  declaredPayload: number | null;
  esBytes: number;
  keyframe: boolean;
  discontinuity: boolean;
  nal: NalScanner;
}

type PesHeader =
  | { state: 'short' }
  | { state: 'bad'; reason: string }
  | { state: 'ok'; length: number; pts: number | null; dts: number | null; declaredPayload: number | null };

export class TsDemuxer {
  readonly stats: TsDemuxerStats = { packets: 0, accessUnits: 0, continuityErrors: 0, syncLosses: 0, bytes: 0 };

  private readonly onAccessUnit: (au: AccessUnit) => void;
  private readonly onWarning: (w: DemuxWarning) => void;

  // --- packet sync ---
  /** Bytes of an incomplete packet (or of a sync candidate awaiting confirmation) from the last push. */
  private readonly carry = Buffer.allocUnsafe(PKT);
  private carryLen = 0;
  private carryAt = 0; // stream offset of carry[0]
  /**
   * A whole packet that ended the last chunk while in sync, awaiting the next byte to confirm it: kept as a view of
   * that chunk (not copied into carry) so a frame that ends a chunk stays one run of it.
   */
  private tailBuf: Buffer | null = null;
  private tailOff = 0;
  private received = 0;
  private synced = false;
  /** A packet whose successor did not start with 0x47: kept until we know whether it was whole. */
  private suspect: Buffer | null = null;
  private suspectAt = 0;
  private garbageFrom = 0; // stream offset where the current unsynced run began

  // --- per-PID continuity ---
  private readonly lastCc = new Int8Array(8192).fill(-1);
  private readonly dupSeen = new Uint8Array(8192);

  // --- PSI ---
  private readonly patAsm = new SectionAssembler();
  private readonly pmtAsm = new SectionAssembler();
  private pmtPid: number | null = null;
  private programNumber: number | null = null;
  private pmtVersion = -1;
  private patPacket: Buffer | null = null;
  private pmtPacket: Buffer | null = null;
  private vPid: number | null = null;
  private vStreamType: number | null = null;
  private codec: VideoCodec = 'h264';

  // --- access units ---
  private pending: PendingAu | null = null;
  private raiForNext = false;
  private discontinuityForNext = false;
  private warnedOrphan = false;
  private readonly dtsUnwrapper = new PtsUnwrapper();
  private lastDts: number | null = null;
  private dtsStep = 0;

  constructor(opts: TsDemuxerOptions) {
    this.onAccessUnit = opts.onAccessUnit;
    this.onWarning = opts.onWarning ?? (() => {});
  }

  /**
   * Latest PAT and PMT as received (188 bytes each; a multiple of 188 if a section spanned packets),
   * once both are known for the current program, else null.
   */
  get psiPackets(): { pat: Buffer; pmt: Buffer } | null {
    if (!this.patPacket || !this.pmtPacket) return null;
    return { pat: this.patPacket, pmt: this.pmtPacket };
  }

  get videoPid(): number | null {
    return this.vPid;
  }

  get videoStreamType(): number | null {
    return this.vStreamType;
  }

  /**
   * Feeds bytes in any chunking. An emitted frame's `packets` may be a view of `chunk` (see
   * SHARE_MIN_FILL), held as long as the frame is (the pre-roll ring, a recording's queue), so the
   * caller must never reuse or change the buffer afterwards (Node streams never do: each read is a new
   * allocation, test/pipeline/recording-bytes.test.ts checks it).
   * Exceptions thrown by the callbacks propagate and the rest of the chunk is dropped.
   */
  push(chunk: Buffer): void {
    const chunkAt = this.received;
    this.received += chunk.length;
    this.stats.bytes += chunk.length;
    if (chunk.length === 0) return;
    if (this.tailBuf) {
      const tail = this.tailBuf;
      this.tailBuf = null;
      if (chunk[0] === SYNC) this.handlePacket(tail, this.tailOff);
      else {
        // Sync lost at the seam: the carry path below decides, as if the packet had been carried.
        tail.copy(this.carry, 0, this.tailOff, this.tailOff + PKT);
        this.carryLen = PKT;
        this.carryAt = chunkAt - PKT;
      }
    }
    if (this.carryLen === 0) {
      this.scan(chunk, chunkAt);
      return;
    }
    const total = this.carryLen + chunk.length;
    if (total <= PKT) {
      // Still no whole packet plus the next sync byte: just collect.
      chunk.copy(this.carry, this.carryLen);
      this.carryLen = total;
      return;
    }
    if (this.synced) {
      // Fast path: complete the carried packet from the head of the chunk, no big copy.
      const need = PKT - this.carryLen;
      if (chunk[need] === SYNC) {
        chunk.copy(this.carry, this.carryLen, 0, need);
        this.carryLen = 0;
        this.handlePacket(Buffer.from(this.carry), 0);
        this.scan(chunk.subarray(need), chunkAt + need);
        return;
      }
    }
    // Unsynced, or sync lost at the seam: rare, so one contiguous copy is fine (carry is < 189 bytes).
    const at = this.carryAt;
    const buf = Buffer.concat([this.carry.subarray(0, this.carryLen), chunk]);
    this.carryLen = 0;
    this.scan(buf, at);
  }

  /** End of input: takes the last packet (no successor to confirm it) and emits the last frame. */
  end(): void {
    if (this.synced) {
      if (this.tailBuf) this.handlePacket(this.tailBuf, this.tailOff);
      else if (this.carryLen === PKT) this.handlePacket(Buffer.from(this.carry), 0);
      else if (this.carryLen > 0) {
        this.warn('sync', `stream ended inside a packet: ${this.carryLen} bytes dropped`);
      }
    } else {
      let resumeAt = this.garbageFrom;
      if (this.suspect) {
        this.handlePacket(this.suspect, 0);
        resumeAt = this.suspectAt + PKT;
        this.suspect = null;
      }
      let skipped = this.received - resumeAt;
      if (this.carryLen === PKT && this.carry[0] === SYNC && this.carryAt >= resumeAt) {
        this.handlePacket(Buffer.from(this.carry), 0);
        skipped -= PKT;
      }
      if (skipped > 0) {
        this.stats.syncLosses++;
        this.warn('sync', `stream ended without packet sync: ${skipped} bytes skipped`);
      }
    }
    this.carryLen = 0;
    this.tailBuf = null;
    this.synced = false;
    this.garbageFrom = this.received;
    this.emitPending();
  }

  // ------------------------------------------------------------------ packet sync

  /**
   * Walks `buf` (which starts at stream offset `at`) packet by packet. A packet is trusted only when
   * the byte after it is a sync byte too, so the result does not depend on how input was chunked.
   */
  private scan(buf: Buffer, at: number): void {
    const len = buf.length;
    let p = 0;
    while (p < len) {
      if (this.synced) {
        if (buf[p] !== SYNC) {
          this.loseSync(at + p, null);
          continue;
        }
        if (p + PKT === len) {
          this.tailBuf = buf;
          this.tailOff = p;
          return;
        }
        if (p + PKT > len) {
          this.stash(buf, p, at);
          return;
        }
        if (buf[p + PKT] === SYNC) {
          this.handlePacket(buf, p);
          p += PKT;
          continue;
        }
        this.loseSync(at + p, buf.subarray(p, p + PKT));
        p += 1;
      } else {
        const i = buf.indexOf(SYNC, p);
        if (i < 0) return;
        if (i + PKT >= len) {
          this.stash(buf, i, at);
          return;
        }
        if (buf[i + PKT] === SYNC) {
          this.regainSync(at + i);
          p = i;
        } else {
          p = i + 1;
        }
      }
    }
  }

  private stash(buf: Buffer, from: number, at: number): void {
    buf.copy(this.carry, 0, from);
    this.carryLen = buf.length - from;
    this.carryAt = at + from;
  }

  private loseSync(offset: number, suspect: Buffer | null): void {
    this.synced = false;
    this.garbageFrom = offset;
    if (suspect) {
      this.suspect = Buffer.from(suspect);
      this.suspectAt = offset;
    }
  }

  private regainSync(offset: number): void {
    this.synced = true;
    let skipped: number;
    let detail = '';
    if (this.suspect) {
      const suspect = this.suspect;
      this.suspect = null;
      if (offset >= this.suspectAt + PKT) {
        // No packet began inside it: it was whole and the garbage came after it.
        this.handlePacket(suspect, 0);
        skipped = offset - (this.suspectAt + PKT);
      } else {
        skipped = offset - this.suspectAt;
        detail = ' (a truncated packet was dropped)';
      }
    } else {
      skipped = offset - this.garbageFrom;
    }
    if (skipped > 0) {
      this.stats.syncLosses++;
      this.warn('sync', `skipped ${skipped} bytes before packet sync at stream offset ${offset}${detail}`);
    }
  }

  // ------------------------------------------------------------------ packets

  /** The packet at `buf[o .. o + 188)`, read in place. */
  private handlePacket(buf: Buffer, o: number): void {
    this.stats.packets++;
    const b1 = buf[o + 1];
    const pid = ((b1 & 0x1f) << 8) | buf[o + 2];
    if (b1 & 0x80) {
      this.warn('continuity', 'transport_error_indicator set: packet dropped', pid);
      if (pid === this.vPid) this.markDiscontinuity(false);
      return;
    }
    if (pid === NULL_PID) return;
    const b3 = buf[o + 3];
    const afc = (b3 >> 4) & 3;
    if (afc === 0) return; // reserved: decoders discard such packets
    let payloadStart = 4;
    let afFlags = 0;
    if (afc & 2) {
      const afLen = buf[o + 4];
      if (afLen > (afc === 3 ? 182 : 183)) {
        this.warn('continuity', `adaptation field length ${afLen} too long: packet dropped`, pid);
        return;
      }
      if (afLen > 0) afFlags = buf[o + 5];
      payloadStart = 5 + afLen;
    }
    const hasPayload = (afc & 1) !== 0;
    const pusi = (b1 & 0x40) !== 0 && hasPayload;

    // Continuity: only packets with payload advance the counter; the adaptation field's
    // discontinuity_indicator allows a jump; one repeat of a packet is a legal duplicate.
    if (hasPayload) {
      const cc = b3 & 0x0f;
      const last = this.lastCc[pid];
      if (last >= 0 && !(afFlags & 0x80)) {
        if (cc === last && !this.dupSeen[pid]) {
          this.dupSeen[pid] = 1;
          return;
        }
        if (cc !== ((last + 1) & 0x0f)) this.continuityError(pid, last, cc, pusi);
      }
      if (cc !== last) this.dupSeen[pid] = 0;
      this.lastCc[pid] = cc;
    }

    if (pid === PAT_PID) {
      if (hasPayload) this.patAsm.feed(buf.subarray(o, o + PKT), payloadStart, pusi, this.patSink);
    } else if (pid === this.pmtPid) {
      if (hasPayload) this.pmtAsm.feed(buf.subarray(o, o + PKT), payloadStart, pusi, this.pmtSink);
    } else if (pid === this.vPid) {
      this.onVideoPacket(buf, o, pusi, hasPayload, payloadStart, afFlags);
    }
  }

  private continuityError(pid: number, last: number, cc: number, pusi: boolean): void {
    this.stats.continuityErrors++;
    this.warn('continuity', `continuity counter jumped from ${last} to ${cc}`, pid);
    if (pid === PAT_PID) this.patAsm.reset();
    else if (pid === this.pmtPid) this.pmtAsm.reset();
    else if (pid === this.vPid) this.markDiscontinuity(pusi);
  }

  /**
   * Flags the frame being gathered (packets may be missing from it). When the gap sits right before a
   * new PES start, the frame about to start is flagged too: a whole frame may have been lost there.
   */
  private markDiscontinuity(alsoNext: boolean): void {
    if (this.pending) this.pending.discontinuity = true;
    if (alsoNext || !this.pending) this.discontinuityForNext = true;
  }

  // ------------------------------------------------------------------ PSI

  private readonly patSink = this.psiSink('PAT', (s, p) => this.onPat(s, p));
  private readonly pmtSink = this.psiSink('PMT', (s, p) => this.onPmt(s, p));

  private psiSink(
    table: string,
    apply: (section: Buffer, packets: Buffer[]) => void,
  ): (r: SectionResult) => void {
    return (r) => {
      if (r.error !== undefined) this.warn('psi', `${table}: ${r.error}`);
      else if (r.section.length < 12 || crc32Mpeg(r.section) !== 0) this.warn('psi', `${table}: bad CRC or length`);
      else apply(r.section, r.packets);
    };
  }

  private onPat(s: Buffer, packets: Buffer[]): void {
    if (s[0] !== 0x00 || !(s[5] & 0x01)) return; // not a PAT, or not yet current
    let found: { program: number; pmtPid: number } | null = null;
    for (let i = 8; i + 4 <= s.length - 4; i += 4) {
      const program = (s[i] << 8) | s[i + 1];
      if (program !== 0) {
        found = { program, pmtPid: ((s[i + 2] & 0x1f) << 8) | s[i + 3] };
        break;
      }
    }
    if (!found) {
      this.warn('psi', 'PAT lists no program');
      return;
    }
    this.patPacket = Buffer.concat(packets);
    if (found.pmtPid !== this.pmtPid || found.program !== this.programNumber) {
      this.pmtPid = found.pmtPid;
      this.programNumber = found.program;
      this.pmtVersion = -1;
      this.pmtPacket = null;
      this.pmtAsm.reset();
    }
  }

  private onPmt(s: Buffer, packets: Buffer[]): void {
    if (s[0] !== 0x02 || !(s[5] & 0x01)) return;
    if (((s[3] << 8) | s[4]) !== this.programNumber) return;
    this.pmtPacket = Buffer.concat(packets);
    const version = (s[5] >> 1) & 0x1f;
    if (version === this.pmtVersion) return;
    this.pmtVersion = version;

    let video: { pid: number; type: number } | null = null;
    const end = s.length - 4;
    for (let i = 12 + (((s[10] & 0x0f) << 8) | s[11]); i + 5 <= end; ) {
      const type = s[i];
      const pid = ((s[i + 1] & 0x1f) << 8) | s[i + 2];
      if (codecOfStreamType(type)) {
        video = { pid, type };
        break;
      }
      i += 5 + (((s[i + 3] & 0x0f) << 8) | s[i + 4]);
    }
    if (!video) {
      this.warn('psi', `PMT version ${version} has no H.264/HEVC video stream`, this.pmtPid ?? undefined);
      return;
    }
    if (video.pid === this.vPid && video.type === this.vStreamType) return;
    if (this.vPid !== null) {
      this.warn('psi', `PMT version ${version}: video moved to PID ${video.pid}, stream_type 0x${video.type.toString(16)}`);
      this.emitPending();
    }
    this.vPid = video.pid;
    this.vStreamType = video.type;
    this.codec = codecOfStreamType(video.type) ?? 'h264';
  }

  // ------------------------------------------------------------------ video PES

  private onVideoPacket(buf: Buffer, o: number, pusi: boolean, hasPayload: boolean, payloadStart: number, afFlags: number): void {
    const rai = (afFlags & 0x40) !== 0;
    if (pusi) {
      this.emitPending();
      this.pending = {
        pid: this.vPid ?? 0,
        runs: [],
        runBuf: null,
        runStart: 0,
        runEnd: 0,
        size: 0,
        headerPart: null,
        headerDone: false,
        headerBad: false,
        ptsRaw: null,
        dtsRaw: null,
        declaredPayload: null,
        esBytes: 0,
        keyframe: rai || this.raiForNext,
        discontinuity: this.discontinuityForNext,
        nal: new NalScanner(this.codec),
      };
      this.raiForNext = false;
      this.discontinuityForNext = false;
    } else if (rai && !hasPayload) {
      // random_access_indicator in an adaptation-only packet announces the next PES start.
      this.raiForNext = true;
    }
    const au = this.pending;
    if (!au) {
      if (hasPayload && !this.warnedOrphan) {
        this.warnedOrphan = true;
        this.warn('pes', 'video packets before the first PES start skipped', this.vPid ?? undefined);
      }
      return;
    }
    if (au.runBuf === buf && au.runEnd === o) au.runEnd += PKT;
    else {
      if (au.runBuf) au.runs.push(au.runBuf.subarray(au.runStart, au.runEnd));
      au.runBuf = buf;
      au.runStart = o;
      au.runEnd = o + PKT;
    }
    au.size += PKT;
    if (hasPayload && payloadStart < PKT) this.feedPes(au, buf, o + payloadStart, o + PKT);
  }

  /** PES bytes [start, end) of `buf` (one packet's payload). */
  private feedPes(au: PendingAu, buf: Buffer, start: number, end: number): void {
    if (au.headerDone) {
      if (!au.headerBad) this.feedEs(au, buf, start, end);
      return;
    }
    const payload = buf.subarray(start, end);
    const bytes = au.headerPart ? Buffer.concat([au.headerPart, payload]) : payload;
    const h = parsePesHeader(bytes);
    if (h.state === 'short') {
      au.headerPart = Buffer.from(bytes);
      return;
    }
    au.headerDone = true;
    au.headerPart = null;
    if (h.state === 'bad') {
      au.headerBad = true;
      this.warn('pes', `bad PES header: ${h.reason}`, this.vPid ?? undefined);
      return;
    }
    au.ptsRaw = h.pts;
    au.dtsRaw = h.dts;
    au.declaredPayload = h.declaredPayload;
    this.feedEs(au, bytes, h.length, bytes.length);
  }

  private feedEs(au: PendingAu, buf: Buffer, start: number, end: number): void {
    au.esBytes += end - start;
    if (!au.nal.done) au.nal.push(buf, start, end);
  }

  private emitPending(): void {
    const au = this.pending;
    if (!au) return;
    this.pending = null;
    const pid = this.vPid ?? undefined;
    if (!au.headerDone) this.warn('pes', 'PES header incomplete', pid);

    let pts: number;
    let dts: number;
    let ptsRaw: number;
    if (au.ptsRaw !== null) {
      ptsRaw = au.ptsRaw;
      dts = this.dtsUnwrapper.unwrap(au.dtsRaw ?? au.ptsRaw);
      pts = au.dtsRaw === null ? dts : unwrapNear(au.ptsRaw, dts);
      if (this.lastDts !== null && dts > this.lastDts) this.dtsStep = dts - this.lastDts;
    } else {
      // Keep the timeline moving by one frame so downstream never sees time stand still.
      if (au.headerDone && !au.headerBad) this.warn('pes', 'PES without PTS: timestamp extrapolated', pid);
      dts = this.lastDts === null ? 0 : this.lastDts + this.dtsStep;
      pts = dts;
      ptsRaw = dts % PTS_WRAP;
    }
    this.lastDts = dts;

    let payloadBytes = au.esBytes;
    if (au.declaredPayload !== null && au.declaredPayload !== payloadBytes) {
      this.warn('pes', `PES declares ${au.declaredPayload} payload bytes, carried ${payloadBytes}`, pid);
      if (payloadBytes < au.declaredPayload) au.discontinuity = true;
      else payloadBytes = au.declaredPayload;
    }

    const out: AccessUnit = {
      pid: au.pid,
      ptsRaw,
      pts,
      dts,
      keyframe: au.keyframe || au.nal.result.idr,
      packets: framePackets(au),
      payloadBytes,
      discontinuity: au.discontinuity,
      seq: this.stats.accessUnits++,
    };
    this.onAccessUnit(out);
  }

  private warn(kind: DemuxWarning['kind'], message: string, pid?: number): void {
    this.onWarning(pid === undefined ? { kind, message } : { kind, pid, message });
  }
}

/** The frame's packets: a view of its chunk when it is one run that fills enough of it, else one copy. */
function framePackets(au: PendingAu): Buffer {
  const last = au.runBuf ? au.runBuf.subarray(au.runStart, au.runEnd) : null;
  if (last && au.runs.length === 0 && last.length >= SHARE_MIN_FILL * last.buffer.byteLength) return last;
  if (last) au.runs.push(last);
  return Buffer.concat(au.runs, au.size);
}

// -------------------------------------------------------------------- PES header

function readTimestamp(b: Buffer, o: number): number {
  // 33 bits spread over 5 bytes with marker bits; the top 3 bits would overflow 32-bit ops.
  return ((b[o] >> 1) & 0x07) * 2 ** 30 + ((b[o + 1] << 22) | ((b[o + 2] >> 1) << 15) | (b[o + 3] << 7) | (b[o + 4] >> 1));
}

/** Stream ids whose PES packets carry no optional header (ISO 13818-1 table 2-21). */
function hasNoOptionalHeader(streamId: number): boolean {
  return [0xbc, 0xbe, 0xbf, 0xf0, 0xf1, 0xf2, 0xf8, 0xff].includes(streamId);
}

function parsePesHeader(b: Buffer): PesHeader {
  const n = b.length;
  if ((n > 0 && b[0] !== 0) || (n > 1 && b[1] !== 0) || (n > 2 && b[2] !== 1)) {
    return { state: 'bad', reason: 'no packet_start_code_prefix' };
  }
  if (n < 6) return { state: 'short' };
  const pesLength = (b[4] << 8) | b[5];
  if (hasNoOptionalHeader(b[3])) {
    return { state: 'ok', length: 6, pts: null, dts: null, declaredPayload: pesLength || null };
  }
  if (n < 9) return { state: 'short' };
  if ((b[6] & 0xc0) !== 0x80) return { state: 'bad', reason: 'missing 10 marker bits' };
  const flags = b[7] >> 6;
  const dataLength = b[8];
  const length = 9 + dataLength;
  if (n < length) return { state: 'short' };
  let pts: number | null = null;
  let dts: number | null = null;
  if (flags & 0x2) {
    if (dataLength < 5) return { state: 'bad', reason: 'PTS flag set but header too short' };
    pts = readTimestamp(b, 9);
    if (flags === 0x3) {
      if (dataLength < 10) return { state: 'bad', reason: 'DTS flag set but header too short' };
      dts = readTimestamp(b, 14);
    }
  }
  let declaredPayload: number | null = null;
  if (pesLength !== 0) {
    declaredPayload = pesLength - 3 - dataLength;
    if (declaredPayload < 0) return { state: 'bad', reason: `PES_packet_length ${pesLength} shorter than its header` };
  }
  return { state: 'ok', length, pts, dts, declaredPayload };
}

// -------------------------------------------------------------------- PSI sections

type SectionResult = { section: Buffer; packets: Buffer[]; error?: undefined } | { error: string };

/** Reassembles PSI sections of one PID (pointer_field, several sections per packet, sections spanning packets). */
class SectionAssembler {
  private part: Buffer | null = null;
  private partPackets: Buffer[] = [];

  reset(): void {
    this.part = null;
    this.partPackets = [];
  }

  feed(pkt: Buffer, start: number, pusi: boolean, sink: (r: SectionResult) => void): void {
    if (!pusi) {
      if (this.part) this.continuePart(pkt, start, PKT, sink);
      return;
    }
    const pointer = pkt[start];
    let pos = start + 1 + pointer;
    if (pos > PKT) {
      this.reset();
      sink({ error: `pointer_field ${pointer} points past the packet` });
      return;
    }
    if (this.part) {
      this.continuePart(pkt, start + 1, pos, sink);
      if (this.part) {
        this.reset();
        sink({ error: 'section cut short by the next one' });
      }
    }
    while (pos < PKT && pkt[pos] !== 0xff) {
      if (PKT - pos < 3) {
        this.part = Buffer.from(pkt.subarray(pos));
        this.partPackets = [pkt];
        return;
      }
      const total = 3 + (((pkt[pos + 1] & 0x0f) << 8) | pkt[pos + 2]);
      if (total > MAX_SECTION) {
        sink({ error: `section_length ${total - 3} too long` });
        return;
      }
      if (pos + total <= PKT) {
        sink({ section: pkt.subarray(pos, pos + total), packets: [pkt] });
        pos += total;
      } else {
        this.part = Buffer.from(pkt.subarray(pos));
        this.partPackets = [pkt];
        return;
      }
    }
  }

  private continuePart(pkt: Buffer, from: number, to: number, sink: (r: SectionResult) => void): void {
    if (!this.part) return;
    const part = Buffer.concat([this.part, pkt.subarray(from, to)]);
    this.partPackets.push(pkt);
    if (part.length < 3) {
      this.part = part;
      return;
    }
    const total = 3 + (((part[1] & 0x0f) << 8) | part[2]);
    if (total > MAX_SECTION) {
      this.reset();
      sink({ error: `section_length ${total - 3} too long` });
      return;
    }
    if (part.length < total) {
      this.part = part;
      return;
    }
    const packets = this.partPackets;
    this.reset();
    sink({ section: part.subarray(0, total), packets });
  }
}

// -------------------------------------------------------------------- CRC-32/MPEG-2

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32/MPEG-2 of a whole section including its CRC field: 0 when the section is intact. */
export function crc32Mpeg(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < buf.length; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ buf[i]) & 0xff]) >>> 0;
  return crc;
}
