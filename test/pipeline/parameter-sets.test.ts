// Every file starts decodable (issue 21): an encoder that sends SPS/PPS only at the start of its stream (the
// stand-in test/standins/ffmpeg-headers-once, the real ffmpeg whose later SPS/PPS are blanked) still gives trial
// files that decode from their first frame, with the timing SEI on every frame.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { forEachFileFrame } from '../../src/pipeline/file-frames.ts';
import { verifyRecording } from '../../src/recording/verify.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep, startTestBox } from '../runtime/runtime-helpers.ts';

const savedPath = process.env.PATH;
before(() => {
  const bin = path.join(tmpDir('rigcam-once-'), 'bin');
  mkdirSync(bin);
  symlinkSync(path.join(repoRoot, 'test/standins/ffmpeg-headers-once'), path.join(bin, 'ffmpeg'));
  process.env.RIGCAM_REAL_FFMPEG = execFileSync('sh', ['-c', 'command -v ffmpeg']).toString().trim();
  process.env.PATH = `${bin}:${savedPath}`;
});
after(() => {
  process.env.PATH = savedPath;
  delete process.env.RIGCAM_REAL_FFMPEG;
});

/** NAL unit types of the file's H.264 stream in order (ffmpeg's Annex B copy). */
function nalTypes(file: string): number[] {
  const es = execFileSync(process.env.RIGCAM_REAL_FFMPEG!, ['-v', 'error', '-i', file, '-c', 'copy', '-f', 'h264', 'pipe:1'], { maxBuffer: 1 << 28 });
  const out: number[] = [];
  for (let i = 2; i < es.length - 1; i++) if (es[i] === 1 && es[i - 1] === 0 && es[i - 2] === 0) out.push(es[i + 1]! & 0x1f);
  return out;
}

it('a trial started at a keyframe without SPS/PPS: the file carries them first, decodes every frame, SEI and counts intact', async () => {
  const t = await startTestBox({ cameras: 0, extra: { cameras: [{ id: 'cam0', source: 'test', width: 320, height: 240, fps: 15, gop_seconds: 0.5, bitrate_kbps: 400 }] } });
  try {
    await sleep(2500); // several keyframes past the only one with SPS/PPS
    const start = await t.box.handleCommand('start_recording', { session_prefix: 'once' }, { source: 'api' });
    assert.equal(start.ok, true, start.error);
    await sleep(2500);
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    assert.equal(stop.ok, true, stop.error);
    const rec = t.store.recording((stop.data!.recordings as Array<{ recording_id: number }>)[0]!.recording_id)!;
    const file = path.join(t.root, rec.path);
    const types = nalTypes(file);
    const firstSlice = types.findIndex((x) => x === 1 || x === 5);
    assert.equal(types[firstSlice], 5, 'the file starts on an IDR');
    assert.deepEqual(types.slice(0, firstSlice).filter((x) => x === 7 || x === 8 || x === 6), [7, 8, 6], `SPS, PPS, then the timing SEI before the first slice: ${types.slice(0, firstSlice + 1)}`);
    assert.ok(types.slice(firstSlice).includes(30), 'the source really blanked its later parameter sets');
    // Decodes from its first frame: no decoder error, every frame.
    const decode = execFileSync(process.env.RIGCAM_REAL_FFMPEG!, ['-v', 'error', '-i', file, '-f', 'null', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(decode.toString(), '');
    assert.ok(rec.frame_count > 20, `frames: ${rec.frame_count}`);
    assert.equal(ffprobeCount(file), rec.frame_count, 'every frame decodes');
    assert.equal(t.store.frames(rec.id).length, rec.frame_count);
    let withSei = 0;
    await forEachFileFrame(file, (f) => void (f.sei?.frameIndex === f.position && withSei++));
    assert.equal(withSei, rec.frame_count, 'every frame carries its own timing SEI');
    const report = await verifyRecording({ videos: [file], csvFile: path.join(t.root, rec.csv_path), recording: rec, store: t.store });
    assert.deepEqual(report.problems, []);
  } finally {
    await t.close();
  }
});
