import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PTS_WRAP, TS_PACKET_SIZE, type AccessUnit } from '../../src/pipeline/access-unit.ts';
import { NalScanner, scanNalUnits } from '../../src/pipeline/h264-nal.ts';
import { TsDemuxer, crc32Mpeg, type DemuxWarning } from '../../src/pipeline/ts-demux.ts';
import {
  makeTestAnnexB,
  makeTestTs,
  packetInfo,
  probeFrames,
  probePackets,
  rawTs,
  seededRandom,
  splitPackets,
  type TestStreamOptions,
} from '../helpers/ffmpeg-ts.ts';

const PKT = TS_PACKET_SIZE;
const FRAME = 3000; // 30 fps in 90 kHz ticks
/** -output_ts_offset that puts the 33-bit wrap about 1.5 s into a stream (ffmpeg adds a 1.4 s mux delay). */
const WRAP_OFFSET = (PTS_WRAP - 126_000 - 45 * FRAME) / 90_000;

const streamCache = new Map<string, Buffer>();
function stream(opts: TestStreamOptions = {}): Buffer {
  const key = JSON.stringify(opts);
  let ts = streamCache.get(key);
  if (!ts) {
    ts = makeTestTs(opts);
    streamCache.set(key, ts);
  }
  return ts;
}

interface Run {
  aus: AccessUnit[];
  warnings: DemuxWarning[];
  demuxer: TsDemuxer;
}

function demux(chunks: Buffer | Buffer[], end = true): Run {
  const aus: AccessUnit[] = [];
  const warnings: DemuxWarning[] = [];
  const demuxer = new TsDemuxer({ onAccessUnit: (au) => aus.push(au), onWarning: (w) => warnings.push(w) });
  for (const c of Array.isArray(chunks) ? chunks : [chunks]) demuxer.push(c);
  if (end) demuxer.end();
  return { aus, warnings, demuxer };
}

/** Splits `buf` into pieces whose sizes come from `size()` (copies, so nothing is shared with `buf`). */
function chunked(buf: Buffer, size: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const n = Math.max(1, size());
    out.push(Buffer.from(buf.subarray(i, i + n)));
    i += n;
  }
  return out;
}

/** The video packets of a stream, each with its packet index and the access unit (PUSI count) it belongs to. */
function mapVideoPackets(ts: Buffer, videoPid: number): { index: number; au: number; pkt: Buffer }[] {
  const out: { index: number; au: number; pkt: Buffer }[] = [];
  let au = -1;
  splitPackets(ts).forEach((pkt, index) => {
    const info = packetInfo(pkt);
    if (info.pid !== videoPid) return;
    if (info.pusi) au++;
    out.push({ index, au, pkt });
  });
  return out;
}

function withoutPacket(ts: Buffer, index: number): Buffer {
  return Buffer.concat([ts.subarray(0, index * PKT), ts.subarray((index + 1) * PKT)]);
}

/** The PES bytes (header and payload) an access unit's packets carry. */
function pesOf(au: AccessUnit): Buffer {
  const parts: Buffer[] = [];
  for (let o = 0; o < au.packets.length; o += PKT) {
    const pkt = au.packets.subarray(o, o + PKT);
    const afc = packetInfo(pkt).afc;
    if (afc & 1) parts.push(pkt.subarray(afc === 3 ? 5 + pkt[4] : 4));
  }
  return Buffer.concat(parts);
}

/** PSI then every access unit's packets: what a recorder writes. */
function rebuild(run: Run): Buffer {
  const psi = run.demuxer.psiPackets;
  assert.ok(psi, 'PAT and PMT seen');
  return Buffer.concat([psi.pat, psi.pmt, ...run.aus.map((au) => au.packets)]);
}

/** Garbage with no 0x47 except at `syncAt`, so it cannot fake a packet boundary by accident. */
function garbage(length: number, seed: number, syncAt: number[] = []): Buffer {
  const rnd = seededRandom(seed);
  const g = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    const b = Math.floor(rnd() * 256);
    g[i] = b === 0x47 ? 0x48 : b;
  }
  for (const i of syncAt) g[i] = 0x47;
  return g;
}

/** Asserts what ffprobe says about the same bytes: one AU per video packet, same PTS/DTS/keyframes/sizes. */
function assertMatchesProbe(ts: Buffer, run: Run, opts: { exactSizes?: boolean } = {}): void {
  const probe = probePackets(ts);
  const { aus, demuxer } = run;
  assert.equal(aus.length, probe.length, 'one access unit per ffprobe video packet');
  assert.ok(aus.length > 0, 'some access units');
  const videoPid = demuxer.videoPid;
  assert.notEqual(videoPid, null);
  aus.forEach((au, i) => {
    const p = probe[i];
    assert.equal(au.seq, i);
    assert.equal(au.pid, videoPid);
    assert.equal(au.ptsRaw, rawTs(p.pts ?? NaN), `pts of AU ${i}`);
    assert.equal(rawTs(au.dts), rawTs(p.dts ?? NaN), `dts of AU ${i}`);
    assert.equal(au.keyframe, p.keyframe, `keyframe flag of AU ${i}`);
    if (opts.exactSizes !== false) assert.equal(au.payloadBytes, p.size, `payload size of AU ${i}`);
    assert.equal(au.discontinuity, false);
    assert.equal(au.packets.length % PKT, 0);
    for (let o = 0; o < au.packets.length; o += PKT) {
      assert.equal(au.packets[o], 0x47);
      assert.equal(packetInfo(au.packets.subarray(o, o + PKT)).pid, videoPid);
    }
    assert.equal(packetInfo(au.packets).pusi, true, 'an AU starts with its PES start');
  });
  const totalPayload = aus.reduce((s, au) => s + au.payloadBytes, 0);
  assert.equal(totalPayload, probe.reduce((s, p) => s + p.size, 0));
  // Every video packet of the stream is in exactly one AU, verbatim and in order.
  const videoPackets = mapVideoPackets(ts, videoPid ?? -1).map((v) => v.pkt);
  assert.deepEqual(Buffer.concat(aus.map((au) => au.packets)), Buffer.concat(videoPackets));
  assert.equal(demuxer.stats.accessUnits, aus.length);
  assert.equal(demuxer.stats.packets, ts.length / PKT);
  assert.equal(demuxer.stats.bytes, ts.length);
}

/** The rebuilt stream decodes to the same frames, keyframes at the same presentation times. */
function assertRebuiltDecodes(ts: Buffer, run: Run): void {
  const original = probeFrames(ts);
  const rebuilt = probeFrames(rebuild(run));
  assert.equal(rebuilt.length, original.length);
  assert.equal(rebuilt.length, run.aus.length);
  const keyPts = (fs: { keyframe: boolean; pts: number | null }[]) => fs.filter((f) => f.keyframe).map((f) => f.pts);
  assert.deepEqual(keyPts(rebuilt), keyPts(original));
  const auKeys = run.aus.filter((au) => au.keyframe).sort((a, b) => a.pts - b.pts);
  assert.deepEqual(
    auKeys.map((au) => au.ptsRaw),
    keyPts(original).map((p) => rawTs(p ?? NaN)),
  );
}

describe('TsDemuxer on real ffmpeg streams', () => {
  it('matches ffprobe on H.264 without B-frames, and the AUs re-make a decodable stream', () => {
    const ts = stream();
    const run = demux(ts);
    assert.deepEqual(run.warnings, []);
    assert.equal(run.demuxer.videoStreamType, 0x1b);
    assertMatchesProbe(ts, run);
    assert.equal(run.aus.filter((au) => au.keyframe).length, 3, '90 frames with -g 30');
    for (let i = 1; i < run.aus.length; i++) assert.equal(run.aus[i].pts - run.aus[i - 1].pts, FRAME);
    assertRebuiltDecodes(ts, run);
  });

  it('matches ffprobe with B-frames: DTS in decode order, PTS reordered, every frame counted', () => {
    const ts = stream({ bframes: 2 });
    const run = demux(ts);
    assert.deepEqual(run.warnings, []);
    assertMatchesProbe(ts, run);
    const { aus } = run;
    assert.equal(aus.length, 90);
    let reordered = 0;
    for (let i = 1; i < aus.length; i++) {
      assert.ok(aus[i].dts > aus[i - 1].dts, 'DTS strictly rises');
      if (aus[i].pts < aus[i - 1].pts) reordered++;
    }
    assert.ok(reordered > 10, 'stream really has B-frames');
    for (const au of aus) assert.ok(au.pts >= au.dts, 'PTS never before DTS');
    const sortedPts = aus.map((au) => au.pts).sort((a, b) => a - b);
    for (let i = 1; i < sortedPts.length; i++) assert.equal(sortedPts[i] - sortedPts[i - 1], FRAME);
    assertRebuiltDecodes(ts, run);
  });

  it('keeps adaptation-only (PCR) packets inside AUs and leaves null packets out (CBR -muxrate)', () => {
    const ts = stream({ extraOutputArgs: ['-muxrate', '2M'] });
    const run = demux(ts);
    assert.deepEqual(run.warnings, []);
    assertMatchesProbe(ts, run);
    const nullPackets = splitPackets(ts).filter((p) => packetInfo(p).pid === 0x1fff).length;
    assert.ok(nullPackets > 0, 'CBR stream has null packets');
    let adaptationOnly = 0;
    for (const au of run.aus) {
      for (let o = PKT; o < au.packets.length; o += PKT) {
        if (packetInfo(au.packets.subarray(o, o + PKT)).afc === 2) adaptationOnly++;
      }
    }
    assert.ok(adaptationOnly > 0, 'PCR-only packets between PES starts are part of the AU');
    assertRebuiltDecodes(ts, run);
  });

  it('follows an HEVC stream (stream_type 0x24)', () => {
    const ts = stream({ encoder: 'libx265', frames: 60 });
    const run = demux(ts);
    assert.deepEqual(run.warnings, []);
    assert.equal(run.demuxer.videoStreamType, 0x24);
    // ffprobe's HEVC parser moves a byte between frames; the PES sizes still add up (checked inside).
    assertMatchesProbe(ts, run, { exactSizes: false });
    assert.equal(run.aus.filter((au) => au.keyframe).length, 2);
  });

  it('finds keyframes from the IDR NAL unit when random_access_indicator is absent', () => {
    for (const opts of [{ bframes: 2 }, { encoder: 'libx265' as const, frames: 60 }]) {
      const ts = Buffer.from(stream(opts));
      let cleared = 0;
      for (let o = 0; o < ts.length; o += PKT) {
        if ((ts[o + 3] & 0x20) && ts[o + 4] > 0 && ts[o + 5] & 0x40) {
          ts[o + 5] &= ~0x40;
          cleared++;
        }
      }
      assert.ok(cleared > 0, 'ffmpeg sets random_access_indicator on keyframes');
      const withRai = demux(stream(opts)).aus.map((au) => au.keyframe);
      const withoutRai = demux(ts).aus.map((au) => au.keyframe);
      assert.deepEqual(withoutRai, withRai);
      assert.ok(withoutRai.filter(Boolean).length >= 2, 'keyframes found');
    }
  });

  it('honours random_access_indicator on recovery points that are not IDR (x264 intra refresh)', () => {
    const ts = stream({ extraOutputArgs: ['-intra-refresh', '1'] });
    const run = demux(ts);
    assertMatchesProbe(ts, run);
    const keys = run.aus.filter((au) => au.keyframe).map((au) => au.seq);
    assert.deepEqual(keys, [0, 30, 60]);
    for (const seq of [30, 60]) {
      const nal = scanNalUnits(pesOf(run.aus[seq]));
      assert.equal(nal.idr, false, `frame ${seq} is a recovery point, not an IDR`);
      assert.equal(nal.types.at(-1), 1, `frame ${seq}: a non-IDR slice was seen`);
    }
  });

  it('gives the same result for any chunking: 1 byte, 187, 188, 189, random', () => {
    const ts = stream({ bframes: 2 });
    const whole = demux(ts);
    const rnd = seededRandom(7);
    const patterns: [string, () => number][] = [
      ['1 byte', () => 1],
      ['187', () => 187],
      ['188', () => 188],
      ['189', () => 189],
      ['random 1..4000', () => 1 + Math.floor(rnd() * 4000)],
      ['random 1..300', () => 1 + Math.floor(rnd() * 300)],
    ];
    for (const [name, size] of patterns) {
      const run = demux(chunked(ts, size));
      assert.equal(run.aus.length, whole.aus.length, name);
      assert.deepEqual(run.aus, whole.aus, name);
      assert.deepEqual(run.warnings, whole.warnings, name);
      assert.deepEqual(run.demuxer.stats, whole.demuxer.stats, name);
    }
  });

  it('resyncs after garbage before and inside the stream without losing a packet', () => {
    const ts = stream({ bframes: 2 });
    const clean = demux(ts);
    const cut = 700 * PKT; // a packet boundary in the middle
    // Stray 0x47s, never 188 apart and none within 188 bytes of either end, so none passes for a packet.
    const lead = garbage(1000, 1, [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600, 650, 700]);
    const inner = garbage(600, 2, [200, 250, 300, 350, 400]);
    const dirty = Buffer.concat([lead, ts.subarray(0, cut), inner, ts.subarray(cut)]);
    for (const chunks of [dirty, chunked(dirty, () => 1), chunked(dirty, () => 189)]) {
      const run = demux(chunks);
      assert.deepEqual(run.aus, clean.aus);
      assert.equal(run.demuxer.stats.syncLosses, 2);
      assert.equal(run.demuxer.stats.continuityErrors, 0);
      assert.deepEqual(
        run.warnings.map((w) => w.kind),
        ['sync', 'sync'],
      );
      assert.match(run.warnings[0].message, /skipped 1000 bytes/);
      assert.match(run.warnings[1].message, /skipped 600 bytes/);
    }
  });

  it('drops a truncated packet on resync and flags its frame', () => {
    const ts = stream({ bframes: 2 });
    const clean = demux(ts);
    const vid = mapVideoPackets(ts, clean.demuxer.videoPid ?? -1);
    // A mid-frame packet cut to 100 bytes: pick one where no stray 0x47 could pass for a packet start
    // (none in its kept bytes, and byte 88 of the next packet, which lands on its old boundary, is not one).
    const next = (v: { index: number }) => ts.subarray((v.index + 1) * PKT, (v.index + 2) * PKT);
    const victim = vid.find(
      (v, k) =>
        v.au > 40 &&
        !packetInfo(v.pkt).pusi &&
        vid[k + 1]?.au === v.au &&
        !v.pkt.subarray(1, 100).includes(0x47) &&
        next(v)[88] !== 0x47,
    );
    assert.ok(victim, 'a suitable packet to cut');
    const at = victim.index * PKT;
    const dirty = Buffer.concat([ts.subarray(0, at + 100), ts.subarray(at + PKT)]);
    for (const chunks of [dirty, chunked(dirty, () => 1)]) {
      const run = demux(chunks);
      assert.equal(run.aus.length, clean.aus.length);
      assert.equal(run.demuxer.stats.syncLosses, 1);
      assert.equal(run.demuxer.stats.continuityErrors, 1);
      assert.match(run.warnings.find((w) => w.kind === 'sync')?.message ?? '', /truncated packet was dropped/);
      run.aus.forEach((au, i) => {
        if (i === victim.au) {
          assert.equal(au.discontinuity, true);
          assert.equal(au.packets.length, clean.aus[i].packets.length - PKT);
        } else {
          assert.deepEqual(au, clean.aus[i], `AU ${i} untouched`);
        }
      });
    }
  });

  it('detects a dropped packet inside a frame by continuity counter and flags only that frame', () => {
    const ts = stream();
    const clean = demux(ts);
    const videoPid = clean.demuxer.videoPid ?? -1;
    const vid = mapVideoPackets(ts, videoPid);
    const victim = vid.find((v, k) => v.au === 50 && !packetInfo(v.pkt).pusi && vid[k + 1]?.au === 50);
    assert.ok(victim, 'frame 50 has at least three packets');
    const run = demux(withoutPacket(ts, victim.index));
    assert.equal(run.aus.length, clean.aus.length);
    assert.equal(run.demuxer.stats.continuityErrors, 1);
    assert.deepEqual(
      run.warnings.map((w) => [w.kind, w.pid]),
      [['continuity', videoPid]],
    );
    run.aus.forEach((au, i) => {
      assert.equal(au.discontinuity, i === 50, `AU ${i}`);
      if (i !== 50) assert.deepEqual(au.packets, clean.aus[i].packets);
    });
    assert.ok(run.aus[50].payloadBytes < clean.aus[50].payloadBytes, 'payload of the lost packet missing');
    assert.equal(run.aus[50].ptsRaw, clean.aus[50].ptsRaw);
  });

  it('flags the frame that lost its last packet and the frame right after the gap', () => {
    const ts = stream();
    const clean = demux(ts);
    const vid = mapVideoPackets(ts, clean.demuxer.videoPid ?? -1);
    const last = vid.filter((v) => v.au === 60).at(-1);
    assert.ok(last && !packetInfo(last.pkt).pusi, 'frame 60 spans several packets');
    const run = demux(withoutPacket(ts, last.index));
    assert.equal(run.aus.length, clean.aus.length);
    assert.equal(run.demuxer.stats.continuityErrors, 1);
    assert.deepEqual(
      run.aus.filter((au) => au.discontinuity).map((au) => au.seq),
      [60, 61],
    );
    assert.deepEqual(run.aus[61].packets, clean.aus[61].packets);
  });

  it('folds a frame whose PES start was lost into the previous one and flags it', () => {
    const ts = stream();
    const clean = demux(ts);
    const vid = mapVideoPackets(ts, clean.demuxer.videoPid ?? -1);
    const start = vid.find((v) => v.au === 40 && packetInfo(v.pkt).pusi);
    assert.ok(start && vid.filter((v) => v.au === 40).length > 1, 'frame 40 spans several packets');
    const run = demux(withoutPacket(ts, start.index));
    assert.equal(run.aus.length, clean.aus.length - 1);
    assert.equal(run.demuxer.stats.continuityErrors, 1);
    assert.deepEqual(
      run.aus.filter((au) => au.discontinuity).map((au) => au.ptsRaw),
      [clean.aus[39].ptsRaw],
    );
    assert.ok(!run.aus.some((au) => au.ptsRaw === clean.aus[40].ptsRaw), 'frame 40 is gone');
    assert.equal(run.aus[39].packets.length, clean.aus[39].packets.length + clean.aus[40].packets.length - PKT);
  });

  it('ignores a legal duplicate packet and drops a packet with transport_error_indicator', () => {
    const ts = stream();
    const clean = demux(ts);
    const videoPid = clean.demuxer.videoPid ?? -1;
    const vid = mapVideoPackets(ts, videoPid);
    const dup = vid.find((v) => v.au === 20 && !packetInfo(v.pkt).pusi);
    assert.ok(dup, 'a packet to duplicate');
    const duplicated = Buffer.concat([
      ts.subarray(0, (dup.index + 1) * PKT),
      dup.pkt,
      ts.subarray((dup.index + 1) * PKT),
    ]);
    const d = demux(duplicated);
    assert.deepEqual(d.aus, clean.aus);
    assert.deepEqual(d.warnings, []);

    const bad = Buffer.from(ts);
    const tei = vid.find((v) => v.au === 30 && !packetInfo(v.pkt).pusi);
    assert.ok(tei, 'a packet to mark');
    bad[tei.index * PKT + 1] |= 0x80;
    const t = demux(bad);
    assert.equal(t.aus.length, clean.aus.length);
    assert.ok(
      t.warnings.some((w) => w.kind === 'continuity' && /transport_error_indicator/.test(w.message)),
      'TEI warning',
    );
    assert.equal(t.aus[30].discontinuity, true);
    assert.equal(t.aus[30].packets.length, clean.aus[30].packets.length - PKT);
  });

  it('unwraps PTS across the 33-bit wrap (no B-frames): strictly rising, raw values as ffprobe', () => {
    const ts = stream({ outputTsOffset: WRAP_OFFSET });
    const run = demux(ts);
    assert.deepEqual(run.warnings, []);
    assertMatchesProbe(ts, run);
    const { aus } = run;
    const wrapAt = aus.findIndex((au, i) => i > 0 && au.ptsRaw < aus[i - 1].ptsRaw);
    assert.ok(wrapAt > 10 && wrapAt < 80, `the raw PTS wraps mid-stream (at AU ${wrapAt})`);
    for (let i = 1; i < aus.length; i++) assert.equal(aus[i].pts - aus[i - 1].pts, FRAME);
    for (const au of aus) assert.equal(au.pts - au.ptsRaw, au.pts >= PTS_WRAP ? PTS_WRAP : 0);
    assertRebuiltDecodes(ts, run);
  });

  it('unwraps PTS and DTS across the wrap with B-frames', () => {
    const ts = stream({ outputTsOffset: WRAP_OFFSET, bframes: 2 });
    const run = demux(ts);
    assert.deepEqual(run.warnings, []);
    assertMatchesProbe(ts, run);
    const { aus } = run;
    assert.ok(aus.some((au) => au.pts >= PTS_WRAP) && aus.some((au) => au.dts < PTS_WRAP), 'stream spans the wrap');
    for (let i = 1; i < aus.length; i++) assert.ok(aus[i].dts > aus[i - 1].dts, `DTS rises at AU ${i}`);
    for (const au of aus) {
      assert.ok(au.pts >= au.dts && au.pts - au.dts < 10 * FRAME, `PTS ${au.pts} next to DTS ${au.dts}`);
      assert.equal(au.pts % PTS_WRAP, au.ptsRaw);
    }
    const sortedPts = aus.map((au) => au.pts).sort((a, b) => a - b);
    for (let i = 1; i < sortedPts.length; i++) assert.equal(sortedPts[i] - sortedPts[i - 1], FRAME);
  });

  it('emits the last frame only on end()', () => {
    const ts = stream();
    const probe = probePackets(ts);
    const run = demux(ts, false);
    assert.equal(run.aus.length, probe.length - 1, 'the last frame waits for a next PES start');
    run.demuxer.end();
    assert.equal(run.aus.length, probe.length);
    assert.equal(run.aus.at(-1)?.ptsRaw, rawTs(probe.at(-1)?.pts ?? NaN));
    assert.equal(run.demuxer.stats.packets, ts.length / PKT);
    run.demuxer.end();
    assert.equal(run.aus.length, probe.length, 'a second end() emits nothing more');
  });

  it('keeps the latest PAT and PMT packets, and follows a PMT version change to a new video PID', () => {
    const first = stream();
    const packets = splitPackets(first);
    const early = demux(first.subarray(0, 10 * PKT), false).demuxer;
    const psi = early.psiPackets;
    assert.ok(psi, 'PAT and PMT seen');
    assert.deepEqual(psi.pat, packets.find((p) => packetInfo(p).pid === 0));
    assert.deepEqual(psi.pmt, packets.find((p) => packetInfo(p).pid === 0x1000));
    assert.equal(crc32Mpeg(psi.pat.subarray(5, 5 + 3 + (((psi.pat[6] & 0x0f) << 8) | psi.pat[7]))), 0);
    assert.equal(demux(first.subarray(0, 2 * PKT), false).demuxer.psiPackets, null);

    const second = stream({ extraOutputArgs: ['-mpegts_start_pid', '512', '-tables_version', '1'] });
    const secondPmt = splitPackets(second).filter((p) => packetInfo(p).pid === 0x1000).at(-1);
    const run = demux(Buffer.concat([first, second]));
    const a = demux(first).aus;
    const b = demux(second).aus;
    assert.equal(run.aus.length, a.length + b.length);
    assert.deepEqual(
      run.aus.slice(0, a.length).map((au) => [au.pid, au.packets]),
      a.map((au) => [256, au.packets]),
    );
    assert.deepEqual(
      run.aus.slice(a.length).map((au) => [au.pid, au.packets, au.keyframe]),
      b.map((au) => [512, au.packets, au.keyframe]),
    );
    assert.equal(run.demuxer.videoPid, 512);
    assert.deepEqual(run.demuxer.psiPackets?.pmt, secondPmt);
    assert.ok(
      run.warnings.some((w) => w.kind === 'psi' && /PID 512/.test(w.message)),
      'PID change reported',
    );
  });

  it('rejects a PMT with a bad CRC and waits for the next good one', () => {
    const ts = stream();
    const clean = demux(ts);
    const packets = splitPackets(ts);
    const pmtIndexes = packets.flatMap((p, i) => (packetInfo(p).pid === 0x1000 ? [i] : []));
    assert.ok(pmtIndexes.length > 2, 'ffmpeg repeats the PMT');
    const bad = Buffer.from(ts);
    const at = pmtIndexes[0] * PKT;
    assert.equal(bad[at + 5 + 12], 0x1b, 'first ES entry is H.264');
    bad[at + 5 + 14] ^= 0x01; // elementary_PID 0x100 -> 0x101, CRC left as it was
    const run = demux(bad);
    assert.ok(
      run.warnings.some((w) => w.kind === 'psi' && /CRC/.test(w.message)),
      'bad CRC reported',
    );
    assert.equal(run.demuxer.videoPid, clean.demuxer.videoPid);
    const lastPmt = packets[pmtIndexes[pmtIndexes.length - 1]];
    assert.deepEqual(run.demuxer.psiPackets?.pmt, lastPmt, 'the latest good PMT');
    assert.ok(run.aus.length >= clean.aus.length - 5, `${run.aus.length} frames after the next PMT`);
    const offset = clean.aus.length - run.aus.length;
    run.aus.forEach((au, i) => {
      const c = clean.aus[i + offset];
      assert.deepEqual([au.ptsRaw, au.keyframe, au.packets], [c.ptsRaw, c.keyframe, c.packets]);
    });
  });

  it('never throws on hostile input and stays chunking-independent', () => {
    const noise = garbage(200_000, 3, Array.from({ length: 500 }, (_, i) => i * 397));
    const n = demux(noise);
    assert.equal(n.aus.length, 0);
    assert.equal(demux(Buffer.alloc(5000, 0x47)).aus.length, 0);

    const ts = stream({ bframes: 2 });
    for (const seed of [11, 12, 13]) {
      const rnd = seededRandom(seed);
      const bad = Buffer.from(ts);
      for (let k = 0; k < 400; k++) bad[Math.floor(rnd() * bad.length)] = Math.floor(rnd() * 256);
      // also cut a few random spans out
      const parts: Buffer[] = [];
      let pos = 0;
      for (let k = 0; k < 5; k++) {
        const from = pos + Math.floor(rnd() * 40_000);
        parts.push(bad.subarray(pos, from));
        pos = from + Math.floor(rnd() * 500);
      }
      parts.push(bad.subarray(pos));
      const input = Buffer.concat(parts);
      const whole = demux(input);
      const bytes = demux(chunked(input, () => 1 + Math.floor(rnd() * 700)));
      assert.deepEqual(bytes.aus, whole.aus, `seed ${seed}`);
      assert.deepEqual(bytes.warnings, whole.warnings, `seed ${seed}`);
      assert.ok(whole.aus.length > 60, `seed ${seed}: most frames survive`);
      assert.ok(whole.warnings.length > 0, 'damage reported');
      for (const au of whole.aus) assert.equal(au.packets.length % PKT, 0);
    }
  });

  it('hands a frame that is one run of its chunk on as a view of it (no copy); a small frame of a big chunk is copied', () => {
    const ts = stream();
    // Chunks cut where each video PES starts, as a source that flushes every frame writes them.
    const starts: number[] = [];
    for (let o = 0; o < ts.length; o += PKT) {
      const pid = ((ts[o + 1]! & 0x1f) << 8) | ts[o + 2]!;
      if (pid === 0x100 && ts[o + 1]! & 0x40) starts.push(o);
    }
    const cuts = [0, ...starts.slice(1), ts.length];
    // Each chunk its own memory, as a pipe read delivers it (Buffer.from would share the 8 KiB pool).
    const own = (b: Buffer): Buffer => {
      const c = Buffer.allocUnsafeSlow(b.length);
      b.copy(c);
      return c;
    };
    const chunks = cuts.slice(1).map((end, i) => own(ts.subarray(cuts[i], end)));
    const perFrame = demux(chunks);
    const whole = demux(ts);
    assert.equal(perFrame.aus.length, 90);
    assert.deepEqual(perFrame.aus.map((a) => a.packets), whole.aus.map((a) => a.packets), 'same bytes whatever the chunking');
    const owners = new Set(chunks.map((c) => c.buffer));
    const views = perFrame.aus.filter((a) => owners.has(a.packets.buffer));
    assert.equal(views.length, 90, 'every frame is a view of its chunk');
    for (const a of perFrame.aus) assert.ok(a.packets.length >= 0.5 * a.packets.buffer.byteLength, 'a frame never holds more than twice its size');
    // One big chunk of 90 small frames: each frame is copied out, so keeping one does not keep the whole chunk.
    const big = own(ts);
    const copied = demux(big).aus.filter((a) => a.packets.buffer === big.buffer);
    assert.equal(copied.length, 0);
  });

  it('demuxes at a sane rate (sanity bound only)', (t) => {
    const ts = stream({ extraOutputArgs: ['-muxrate', '2M'] });
    const passes = 4;
    const t0 = process.hrtime.bigint();
    let aus = 0;
    for (let i = 0; i < passes; i++) aus += demux(chunked(ts, () => 65536)).aus.length;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const mbps = (passes * ts.length) / 1e6 / seconds;
    t.diagnostic(`${mbps.toFixed(1)} MB/s (${((passes * ts.length) / PKT / seconds / 1000).toFixed(0)}k packets/s)`);
    assert.equal(aus, passes * 90);
    // A 1080p30 camera stream is ~1 MB/s; even a slow, loaded runner is far above this floor.
    assert.ok(mbps > 2, `${mbps} MB/s`);
  });
});

describe('NalScanner', () => {
  const es = makeTestAnnexB({ frames: 3 });

  it('reads SPS, PPS, SEI and the IDR slice of the first H.264 frame', () => {
    const s = scanNalUnits(es);
    assert.deepEqual(s, { idr: true, sps: true, types: [7, 8, 6, 5] });
  });

  it('finds start codes that straddle pieces, at every split offset', () => {
    const head = es.subarray(0, 1200);
    const expected = scanNalUnits(head);
    for (let k = 0; k <= head.length; k++) {
      const s = new NalScanner();
      s.push(head, 0, k);
      s.push(head, k);
      assert.deepEqual(s.result, expected, `split at ${k}`);
    }
    const bytewise = new NalScanner();
    for (let i = 0; i < head.length; i++) bytewise.push(head.subarray(i, i + 1));
    assert.deepEqual(bytewise.result, expected);
    assert.equal(bytewise.done, true);
  });

  it('sees an HEVC IRAP picture with its VPS/SPS/PPS', () => {
    const hevc = makeTestAnnexB({ frames: 2, encoder: 'libx265' });
    const s = scanNalUnits(hevc, 'hevc');
    assert.equal(s.idr, true);
    assert.equal(s.sps, true);
    assert.deepEqual(s.types.slice(0, 3), [32, 33, 34]);
  });
});
