import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RIGCAM_SEI_UUID,
  addEmulationPrevention,
  buildTimingSei,
  buildUserDataUnregisteredNal,
  parseTimingSei,
  removeEmulationPrevention,
  seiVarint,
  userDataUnregistered,
} from '../../src/timing/sei.ts';

/** True when the bytes after the NAL header hold 00 00 0x (x ≤ 3) that is not an emulation prevention 00 00 03. */
function hasStartCodeEmulation(nalBody: Uint8Array): boolean {
  for (let i = 0; i + 2 < nalBody.length; i++) {
    if (nalBody[i] === 0 && nalBody[i + 1] === 0 && nalBody[i + 2]! <= 2) return true;
  }
  return false;
}

describe('SEI user_data_unregistered coding', () => {
  it('codes payload type and size as 0xFF runs (H.264 7.3.2.3.1)', () => {
    assert.deepEqual([...seiVarint(0)], [0]);
    assert.deepEqual([...seiVarint(37)], [37]);
    assert.deepEqual([...seiVarint(254)], [254]);
    assert.deepEqual([...seiVarint(255)], [0xff, 0]);
    assert.deepEqual([...seiVarint(300)], [0xff, 45]);
    assert.deepEqual([...seiVarint(510)], [0xff, 0xff, 0]);
    assert.throws(() => seiVarint(-1));
    assert.throws(() => seiVarint(1.5));
  });

  it('emulation prevention inserts 0x03 exactly where a start code could appear, and is undone exactly', () => {
    const cases: Array<[number[], number[]]> = [
      [[0, 0, 0], [0, 0, 3, 0]],
      [[0, 0, 1], [0, 0, 3, 1]],
      [[0, 0, 2], [0, 0, 3, 2]],
      [[0, 0, 3], [0, 0, 3, 3]],
      [[0, 0, 4], [0, 0, 4]],
      [[0, 0, 0, 0, 0, 0], [0, 0, 3, 0, 0, 3, 0, 0]],
      [[1, 0, 0, 0x80], [1, 0, 0, 0x80]],
      [[0, 0, 3, 0, 0, 1], [0, 0, 3, 3, 0, 0, 3, 1]],
    ];
    for (const [rbsp, ebsp] of cases) {
      assert.deepEqual([...addEmulationPrevention(Uint8Array.from(rbsp))], ebsp, `add ${rbsp}`);
      assert.deepEqual([...removeEmulationPrevention(Uint8Array.from(ebsp))], rbsp, `remove ${ebsp}`);
    }
  });

  it('a message longer than 255 bytes, all zeros, round-trips with its size coded as 0xFF runs', () => {
    const data = Buffer.alloc(300); // 316 bytes of payload: size coded ff 3d
    const nal = buildUserDataUnregisteredNal(RIGCAM_SEI_UUID, data);
    assert.deepEqual([...nal.subarray(0, 5)], [0, 0, 0, 1, 6]);
    const body = nal.subarray(5);
    assert.equal(hasStartCodeEmulation(body), false, 'no start code inside the NAL');
    const rbsp = removeEmulationPrevention(body);
    assert.deepEqual([...rbsp.subarray(0, 3)], [5, 0xff, 316 - 255]);
    assert.equal(rbsp[rbsp.length - 1], 0x80, 'rbsp_trailing_bits');
    const msgs = userDataUnregistered(nal.subarray(4));
    assert.equal(msgs.length, 1);
    assert.ok(msgs[0]!.uuid.equals(RIGCAM_SEI_UUID));
    assert.ok(msgs[0]!.data.equals(data));
  });

  it('timing values that produce 0x0000 runs come back exactly', () => {
    const cases = [
      { frameIndex: 1, captureUs: 0, wallUs: 0 },
      { frameIndex: 0x00000100, captureUs: 0x0000_0001_0000_0000, wallUs: 0x0003_0000_0000_0003 },
      { frameIndex: 0xffffffff, captureUs: Number.MAX_SAFE_INTEGER, wallUs: -1 },
      { frameIndex: 65536, captureUs: 123_456_789_012, wallUs: 1_764_000_000_000_000 },
    ];
    for (const t of cases) {
      const nal = buildTimingSei(t);
      assert.equal(hasStartCodeEmulation(nal.subarray(5)), false, JSON.stringify(t));
      assert.deepEqual(parseTimingSei(nal.subarray(4)), { version: 1, ...t });
    }
    // The zero runs really were escaped (the encoding is longer than the raw message).
    assert.ok(buildTimingSei(cases[0]!).length > 4 + 1 + 1 + 1 + 37 + 1);
  });

  it('ignores other UUIDs, other payload types, and truncated or foreign NAL units', () => {
    const other = buildUserDataUnregisteredNal(Buffer.alloc(16, 0x11), Buffer.alloc(21));
    assert.equal(parseTimingSei(other.subarray(4)), null);
    const ours = buildTimingSei({ frameIndex: 7, captureUs: 5, wallUs: 6 });
    assert.equal(parseTimingSei(ours.subarray(4, 20)), null, 'truncated');
    const notSei = Buffer.from(ours.subarray(4));
    notSei[0] = 0x09;
    assert.equal(parseTimingSei(notSei), null);
    // Two messages in one NAL (another payload type first): ours is still found.
    const rbsp = Buffer.concat([Buffer.from([1, 2, 0xaa, 0xbb]), removeEmulationPrevention(ours.subarray(5))]);
    const both = Buffer.concat([Buffer.from([6]), addEmulationPrevention(rbsp)]);
    assert.deepEqual(parseTimingSei(both), { version: 1, frameIndex: 7, captureUs: 5, wallUs: 6 });
    assert.throws(() => buildTimingSei({ frameIndex: 0, captureUs: 0, wallUs: 0 }));
    assert.throws(() => buildTimingSei({ frameIndex: 1, captureUs: 0.5, wallUs: 0 }));
  });
});
