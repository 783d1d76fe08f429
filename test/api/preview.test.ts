import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closeHttp, startHttp } from '../../src/api/server.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { sleep, startHttpBox, type HttpBox } from '../helpers/box.ts';

/** Width and height from a JPEG's SOF marker. */
function jpegSize(j: Buffer): { width: number; height: number } {
  assert.equal(j.readUInt16BE(0), 0xffd8, 'JPEG SOI');
  assert.equal(j.readUInt16BE(j.length - 2), 0xffd9, 'JPEG EOI');
  let i = 2;
  while (i < j.length) {
    const marker = j.readUInt16BE(i);
    const len = j.readUInt16BE(i + 2);
    if (marker >= 0xffc0 && marker <= 0xffc3) return { height: j.readUInt16BE(i + 5), width: j.readUInt16BE(i + 7) };
    i += 2 + len;
  }
  throw new Error('no SOF marker');
}

/** Reads a multipart/x-mixed-replace MJPEG response into JPEG images (independent of the server's parser). */
class MjpegReader {
  readonly images: Buffer[] = [];
  private buf = Buffer.alloc(0);
  readonly done: Promise<void>;

  constructor(
    res: Response,
    private readonly boundary: string,
  ) {
    this.done = (async () => {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        this.buf = Buffer.concat([this.buf, chunk]);
        this.parse();
      }
    })().catch(() => undefined);
  }

  private parse(): void {
    for (;;) {
      const head = this.buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const h = this.buf.subarray(0, head).toString('latin1');
      assert.ok(h.startsWith(`--${this.boundary}\r\n`), `part starts with the boundary: ${JSON.stringify(h.slice(0, 80))}`);
      assert.match(h, /Content-Type: image\/jpeg/i, 'part type');
      const len = Number(/Content-Length: (\d+)/i.exec(h)?.[1]);
      if (this.buf.length < head + 4 + len + 2) return;
      this.images.push(this.buf.subarray(head + 4, head + 4 + len));
      assert.equal(this.buf.subarray(head + 4 + len, head + 6 + len).toString(), '\r\n', 'part ends with CRLF');
      this.buf = this.buf.subarray(head + 6 + len);
    }
  }

  async waitFor(n: number, timeoutMs = 6000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.images.length < n) {
      if (Date.now() > until) throw new Error(`only ${this.images.length} of ${n} preview images within ${timeoutMs} ms`);
      await sleep(50);
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('live preview and snapshot', () => {
  let b: HttpBox;
  before(async () => {
    b = await startHttpBox({ token: 'preview-token-0123456789' });
  });
  after(async () => b.close());

  const previewState = async (): Promise<{ viewers: number; running: boolean; pid: number | null }> =>
    ((await (await b.api('/api/cameras/cam0')).json()) as { preview: { viewers: number; running: boolean; pid: number | null } }).preview;

  it('snapshot.jpg is one JPEG of the newest keyframe at the camera size', async () => {
    const r = await b.api('/api/cameras/cam0/snapshot.jpg');
    assert.equal(r.status, 200, 'snapshot status');
    assert.equal(r.headers.get('content-type'), 'image/jpeg', 'type');
    assert.equal(r.headers.get('cache-control'), 'no-store', 'not cached');
    assert.deepEqual(jpegSize(Buffer.from(await r.arrayBuffer())), { width: 320, height: 240 }, 'size');
    assert.equal((await previewState()).running, false, 'a snapshot starts no live preview');
  });

  it('one decoder for all viewers, started by the first, stopped after the last; images change', async () => {
    assert.deepEqual(await previewState(), { viewers: 0, running: false, pid: null }, 'idle before');
    const ac1 = new AbortController();
    const r1 = await b.api('/api/cameras/cam0/preview.mjpeg', { signal: ac1.signal });
    assert.equal(r1.status, 200, 'preview status');
    const type = r1.headers.get('content-type') ?? '';
    const boundary = /boundary=(\S+)/.exec(type)?.[1];
    assert.ok(type.startsWith('multipart/x-mixed-replace') && boundary, `type ${type}`);
    const v1 = new MjpegReader(r1, boundary);
    await v1.waitFor(3);
    const s1 = await previewState();
    assert.equal(s1.running, true, 'decoder running');
    assert.equal(s1.viewers, 1, 'one viewer');
    assert.ok(s1.pid && alive(s1.pid), 'decoder process alive');

    const ac2 = new AbortController();
    const v2 = new MjpegReader(await b.api('/api/cameras/cam0/preview.mjpeg', { signal: ac2.signal }), boundary);
    await v2.waitFor(2);
    const s2 = await previewState();
    assert.equal(s2.viewers, 2, 'two viewers');
    assert.equal(s2.pid, s1.pid, 'the second viewer shares the decoder');

    for (const img of v1.images) assert.deepEqual(jpegSize(img), { width: 320, height: 240 }, 'image size');
    assert.ok(!v1.images[0]!.equals(v1.images[2]!), 'the preview changes over time');

    ac1.abort();
    await v1.done;
    await sleep(200);
    assert.equal((await previewState()).running, true, 'still running for the second viewer');
    ac2.abort();
    await v2.done;
    let s3 = await previewState();
    for (let i = 0; i < 40 && (s3.running || alive(s1.pid)); i++) {
      await sleep(50);
      s3 = await previewState();
    }
    assert.deepEqual(s3, { viewers: 0, running: false, pid: null }, 'idle after the last viewer');
    assert.equal(alive(s1.pid), false, 'decoder process gone');
  });

  it('a decoder that crashes is restarted by its supervisor and the viewer keeps getting images', async () => {
    const ac = new AbortController();
    const v = new MjpegReader(await b.api('/api/cameras/cam0/preview.mjpeg', { signal: ac.signal }), 'rigcamframe');
    await v.waitFor(1);
    const first = await previewState();
    assert.ok(first.pid && alive(first.pid), 'decoder running');
    process.kill(first.pid, 'SIGKILL');
    const until = Date.now() + 8000;
    let now = await previewState();
    while (Date.now() < until && !(now.running && now.pid && now.pid !== first.pid)) {
      await sleep(100);
      now = await previewState();
    }
    assert.ok(now.running && now.pid !== first.pid, `a new decoder runs: ${JSON.stringify(now)}`);
    const had = v.images.length;
    await v.waitFor(had + 2);
    ac.abort();
    await v.done;
  });

  it('follows the camera when its pipeline is replaced (apply_config to a new size)', async () => {
    const ac = new AbortController();
    const r = await b.api('/api/cameras/cam0/preview.mjpeg', { signal: ac.signal });
    const v = new MjpegReader(r, 'rigcamframe');
    await v.waitFor(1);
    const applied = await b.api('/api/commands', { json: { command: 'apply_config', payload: { camera_id: 'cam0', width: 160, height: 120 } } });
    assert.equal(applied.status, 200, `apply_config: ${await applied.text()}`);
    const until = Date.now() + 8000;
    while (Date.now() < until && !v.images.some((img) => jpegSize(img).width === 160)) await sleep(100);
    assert.ok(v.images.some((img) => jpegSize(img).width === 160), 'preview images at the new size');
    ac.abort();
    await v.done;
  });

  it('refuses viewers beyond the limit with 503', async () => {
    const server = await startHttp({ config: b.config, box: b.box, store: b.store, root: b.root, log: silentLogger(), preview: { maxViewersPerCamera: 1 } });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/cameras/cam0/preview.mjpeg`;
    const headers = { authorization: `Bearer ${b.config.http.token}` };
    const ac = new AbortController();
    const first = await fetch(url, { headers, signal: ac.signal });
    assert.equal(first.status, 200, 'first viewer');
    const second = await fetch(url, { headers });
    assert.equal(second.status, 503, 'second viewer refused');
    assert.equal(second.headers.get('retry-after'), '5', 'retry-after');
    ac.abort();
    await closeHttp(server);
  });
});
