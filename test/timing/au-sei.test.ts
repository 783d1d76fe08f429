import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { TS_PACKET_SIZE, type AccessUnit } from '../../src/pipeline/access-unit.ts';
import { TsDemuxer } from '../../src/pipeline/ts-demux.ts';
import { TsFileWriter } from '../../src/recording/ts-file-writer.ts';
import { insertNalIntoAccessUnit, seiInsertPoint, stampAccessUnit, stampAccessUnitParts, timingOfAccessUnit } from '../../src/pipeline/au-sei.ts';
import { buildTimingSei, type SeiTiming } from '../../src/timing/sei.ts';
import { makeTestAnnexB, makeTestTs, probePackets, type TestStreamOptions } from '../helpers/ffmpeg-ts.ts';
import { tmpDir } from '../helpers/tmp.ts';

const PKT = TS_PACKET_SIZE;

function demux(ts: Buffer): { aus: AccessUnit[]; psi: { pat: Buffer; pmt: Buffer } } {
  const aus: AccessUnit[] = [];
  const d = new TsDemuxer({ onAccessUnit: (au) => aus.push(au) });
  d.push(ts);
  d.end();
  return { aus, psi: d.psiPackets! };
}

/** Times chosen so every field has 0x00 0x00 runs (the SEI needs emulation prevention). */
function timingFor(i: number): SeiTiming {
  return { frameIndex: i + 1, captureUs: 0x0000_0001_0000_0000 + i * 33_333, wallUs: 1_764_000_000_000_000 + i * 33_333 };
}

/** Writes PSI before each keyframe and every access unit with its SEI, through the recorder's file writer. */
async function writeStamped(file: string, aus: AccessUnit[], psi: { pat: Buffer; pmt: Buffer }): Promise<number> {
  const w = new TsFileWriter(file, { fsyncIntervalMs: 60_000, onError: (e) => assert.fail(e) });
  let stamped = 0;
  aus.forEach((au, i) => {
    if (au.keyframe || i === 0) w.write(Buffer.concat([psi.pat, psi.pmt]));
    const out = stampAccessUnit(au.packets, timingFor(i));
    assert.ok(out, `access unit ${i} could not be stamped`);
    stamped++;
    w.write(out, () => undefined);
  });
  await w.close();
  return stamped;
}

const SideDataSchema = z.object({
  frames: z.array(z.object({ side_data_list: z.array(z.object({ side_data_type: z.string() })).optional() })),
});

/** Per decoded frame: how many user_data_unregistered SEI messages ffprobe's decoder exported. */
function unregisteredSeiPerFrame(file: string): number[] {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_frames', '-of', 'json', file], { maxBuffer: 256 << 20 });
  return SideDataSchema.parse(JSON.parse(out.toString())).frames.map(
    (f) => (f.side_data_list ?? []).filter((s) => /User Data Unregistered/i.test(s.side_data_type)).length,
  );
}

function decodeErrors(file: string): string {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

function pcrOf(pkt: Buffer): number | null {
  const afc = (pkt[3]! >> 4) & 3;
  if (!(afc & 2) || pkt[4] === 0 || !(pkt[5]! & 0x10)) return null;
  return pkt.readUIntBE(6, 6);
}

function raiOf(pkt: Buffer): boolean {
  return Boolean((pkt[3]! >> 4) & 2) && pkt[4]! > 0 && Boolean(pkt[5]! & 0x40);
}

async function checkStream(name: string, original: Buffer): Promise<void> {
  const dir = tmpDir();
  const { aus, psi } = demux(original);
  assert.ok(aus.length > 0);
  const src = path.join(dir, `${name}-orig.ts`);
  const file = path.join(dir, `${name}.ts`);
  // The original, written the same way (PSI before keyframes), as the reference.
  const ref = new TsFileWriter(src, { fsyncIntervalMs: 60_000, onError: (e) => assert.fail(e) });
  aus.forEach((au, i) => {
    if (au.keyframe || i === 0) ref.write(Buffer.concat([psi.pat, psi.pmt]));
    ref.write(au.packets);
  });
  await ref.close();
  await writeStamped(file, aus, psi);

  // Decodes with zero errors, same packets (PTS, DTS, keyframes), each one grown by exactly its SEI.
  assert.equal(decodeErrors(file), '');
  const before = probePackets(readFileSync(src));
  const after = probePackets(readFileSync(file));
  assert.equal(after.length, aus.length);
  assert.equal(after.length, before.length);
  after.forEach((p, i) => {
    assert.equal(p.pts, before[i]!.pts, `pts of packet ${i}`);
    assert.equal(p.dts, before[i]!.dts, `dts of packet ${i}`);
    assert.equal(p.keyframe, before[i]!.keyframe, `keyframe flag of packet ${i}`);
    assert.equal(p.size, before[i]!.size + buildTimingSei(timingFor(i)).length, `size of packet ${i}`);
  });
  // ffmpeg's decoder sees one more user_data_unregistered message on every frame.
  const seiBefore = unregisteredSeiPerFrame(src);
  const seiAfter = unregisteredSeiPerFrame(file);
  assert.equal(seiAfter.length, aus.length);
  assert.deepEqual(seiAfter, seiBefore.map((n) => n + 1));

  // Our reader gets every value back, in order, from the file.
  const back = demux(readFileSync(file)).aus;
  assert.equal(back.length, aus.length);
  back.forEach((au, i) => {
    assert.deepEqual(timingOfAccessUnit(au.packets), { version: 1, ...timingFor(i) }, `frame ${i + 1}`);
    assert.equal(au.keyframe, aus[i]!.keyframe);
    assert.equal(au.ptsRaw, aus[i]!.ptsRaw);
    assert.equal(au.payloadBytes, aus[i]!.payloadBytes + buildTimingSei(timingFor(i)).length);
  });

  // A stream copy to MP4 and back keeps every SEI.
  const mp4 = path.join(dir, `${name}.mp4`);
  execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-c', 'copy', mp4]);
  const fromMp4 = demux(execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', mp4, '-c', 'copy', '-f', 'mpegts', '-'], { maxBuffer: 256 << 20 })).aus;
  assert.deepEqual(
    fromMp4.map((au) => timingOfAccessUnit(au.packets)?.captureUs),
    aus.map((_, i) => timingFor(i).captureUs),
  );
}

/**
 * Packetizes raw Annex B access units into TS the simple way (no AUD, bounded PES_packet_length when it fits,
 * random_access_indicator on keyframes), to test streams that do not come from ffmpeg's muxer.
 */
function packetize(annexB: Buffer, pid: number): Buffer {
  // Split into access units: single-slice frames, so each VCL NAL ends one; non-VCL NALs open the next.
  const starts: number[] = [];
  for (let i = 0; i + 3 < annexB.length; i++) if (annexB[i] === 0 && annexB[i + 1] === 0 && annexB[i + 2] === 1) starts.push(i);
  const units: Array<{ es: Buffer; key: boolean }> = [];
  let auStart = 0;
  let key = false;
  let sawVcl = false;
  for (let s = 0; s < starts.length; s++) {
    const at = starts[s]! > 0 && annexB[starts[s]! - 1] === 0 ? starts[s]! - 1 : starts[s]!;
    const type = annexB[starts[s]! + 3]! & 0x1f;
    const vcl = type >= 1 && type <= 5;
    if (sawVcl && (vcl || [6, 7, 8, 9].includes(type))) {
      units.push({ es: annexB.subarray(auStart, at), key });
      auStart = at;
      key = false;
      sawVcl = false;
    }
    assert.notEqual(type, 9, 'the raw stream must have no AUD');
    if (type === 5) key = true;
    if (vcl) sawVcl = true;
  }
  units.push({ es: annexB.subarray(auStart), key });

  const packets: Buffer[] = [];
  let cc = 0;
  units.forEach((u, i) => {
    const pts = 126_000 + i * 3000;
    const pesLen = 3 + 5 + u.es.length;
    const head = Buffer.from([0, 0, 1, 0xe0, pesLen > 0xffff ? 0 : pesLen >> 8, pesLen > 0xffff ? 0 : pesLen & 0xff, 0x80, 0x80, 5,
      0x21 | (Math.floor(pts / 2 ** 29) & 0x0e), (pts >> 22) & 0xff, ((pts >> 14) & 0xfe) | 1, (pts >> 7) & 0xff, ((pts << 1) & 0xfe) | 1]);
    const pes = Buffer.concat([head, u.es]);
    for (let off = 0, first = true; off < pes.length; first = false) {
      const pkt = Buffer.alloc(PKT, 0xff);
      pkt[0] = 0x47;
      pkt[1] = (first ? 0x40 : 0) | (pid >> 8);
      pkt[2] = pid & 0xff;
      let af = first && u.key ? 2 : 0; // length byte + flags (random_access_indicator)
      const room = PKT - 4 - af;
      if (pes.length - off < room) af = PKT - 4 - (pes.length - off);
      const take = Math.min(PKT - 4 - af, pes.length - off);
      pkt[3] = (af ? 0x30 : 0x10) | (cc++ & 0xf);
      if (af) {
        pkt[4] = af - 1;
        if (af > 1) pkt[5] = first && u.key ? 0x40 : 0;
      }
      pes.copy(pkt, 4 + af, off, off + take);
      off += take;
      packets.push(pkt);
    }
  });
  return Buffer.concat(packets);
}

describe('timing SEI inserted into real H.264 access units', () => {
  const cases: Array<[string, TestStreamOptions]> = [
    ['plain', { frames: 60, gop: 15 }],
    ['bframes', { frames: 60, gop: 15, bframes: 2 }],
    ['tiny-frames', { frames: 60, gop: 30, size: '96x64' }],
    ['cbr-muxrate', { frames: 45, gop: 15, extraOutputArgs: ['-muxrate', '3M'] }],
  ];
  for (const [name, opts] of cases) {
    it(`${name}: decodes with no error, same packets, every frame's SEI read back, kept through .mp4`, async () => {
      await checkStream(name, makeTestTs(opts));
    });
  }

  it('access units without AUD, with bounded PES lengths, packetized by hand', async () => {
    const ref = demux(makeTestTs({ frames: 2 }));
    const pid = ref.aus[0]!.pid;
    const raw = makeTestAnnexB({ frames: 40, gop: 10, size: '160x120' });
    const ts = Buffer.concat([ref.psi.pat, ref.psi.pmt, packetize(raw, pid)]);
    const { aus } = demux(ts);
    assert.equal(aus.length, 40);
    // The PES_packet_length grew by the SEI.
    const stamped = stampAccessUnit(aus[1]!.packets, timingFor(1))!;
    const p = 4 + ((stamped[3]! >> 4) & 2 ? 1 + stamped[4]! : 0);
    const lenBefore = aus[1]!.packets.readUInt16BE(((aus[1]!.packets[3]! >> 4) & 2 ? 5 + aus[1]!.packets[4]! : 4) + 4);
    assert.ok(lenBefore > 0);
    assert.equal(stamped.readUInt16BE(p + 4), lenBefore + buildTimingSei(timingFor(1)).length);
    // As parts (the recorder's path): the same bytes, and the caller's packets (views shared with the pre-roll ring
    // and the source's chunks) never written to, the PES length included, whichever packet is re-cut.
    for (const [i, au] of aus.entries()) {
      const before = Buffer.from(au.packets);
      const parts = stampAccessUnitParts(au.packets, timingFor(i))!;
      assert.ok(au.packets.equals(before), `frame ${i}: the original packets were changed`);
      assert.ok(Buffer.concat(parts).equals(stampAccessUnit(au.packets, timingFor(i))!), `frame ${i}: parts differ`);
    }
    await checkStream('no-aud', ts);
  });

  it('copies every packet but the split one verbatim and keeps the first packet\'s PCR and random access flag', () => {
    const { aus } = demux(makeTestTs({ frames: 30, gop: 10, size: '96x64' }));
    const nal = buildTimingSei(timingFor(0));
    for (const au of aus) {
      const at = seiInsertPoint(au.packets);
      assert.ok(at >= 0);
      const k = at - (at % PKT);
      const out = insertNalIntoAccessUnit(au.packets, nal)!;
      assert.equal(out.length % PKT, 0);
      assert.ok(out.subarray(0, k).equals(au.packets.subarray(0, k)), 'packets before the split');
      const added = out.length - au.packets.length;
      assert.ok(out.subarray(k + PKT + added).equals(au.packets.subarray(k + PKT)), 'packets after the split');
      assert.equal(pcrOf(out), pcrOf(au.packets), 'PCR of the first packet');
      assert.equal(raiOf(out), raiOf(au.packets), 'random_access_indicator of the first packet');
      for (let off = 0; off < out.length; off += PKT) {
        assert.equal(out[off], 0x47);
        assert.equal(Boolean(out[off + 1]! & 0x40), off === 0, 'payload_unit_start only on the first packet');
      }
    }
    assert.ok(aus.some((au) => pcrOf(au.packets) !== null), 'the stream has PCRs to keep');
    assert.ok(aus.some((au) => raiOf(au.packets)), 'the stream has random access flags to keep');
  });

  it('refuses what it cannot read: no PES start, no slice', () => {
    const { aus } = demux(makeTestTs({ frames: 2 }));
    const noStart = Buffer.from(aus[0]!.packets);
    noStart[1] = noStart[1]! & ~0x40;
    assert.equal(stampAccessUnit(noStart, timingFor(0)), null);
    assert.equal(stampAccessUnit(aus[0]!.packets.subarray(0, 100), timingFor(0)), null);
    assert.equal(timingOfAccessUnit(aus[0]!.packets), null, 'an unstamped frame has no rigcam timing');
  });
});
