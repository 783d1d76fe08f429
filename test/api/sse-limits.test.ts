import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startHttpBox, type HttpBox } from '../helpers/box.ts';

/**
 * An event-stream client that connects and then never reads: a stalled phone, or a careless script. A real
 * socket with a small receive buffer (set before connecting, so the window stays small), so the kernel cannot
 * hide the backlog: what the client does not read piles up in the server.
 */
function stalledClient(url: string): Promise<{ proc: ChildProcess; head: string; closed: Promise<void> }> {
  const { hostname, port } = new URL(url);
  const py = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((${JSON.stringify(hostname)}, ${Number(port)}))
s.sendall(b"GET /api/events HTTP/1.1\\r\\nHost: ${hostname}:${port}\\r\\n\\r\\n")
head = s.recv(200)
sys.stdout.write(head.decode(errors="replace").split("\\r\\n")[0] + "\\n"); sys.stdout.flush()
sys.stdin.readline()  # stalled: read nothing until told to
s.settimeout(10)
while True:
    try:
        d = s.recv(65536)
    except Exception:
        break
    if not d:
        break
sys.stdout.write("CLOSED\\n"); sys.stdout.flush()
`;
  const proc = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const closed = new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('CLOSED')) resolve();
    });
    proc.once('exit', () => (out.includes('CLOSED') ? resolve() : reject(new Error(`client exited: ${out}`))));
  });
  closed.catch(() => undefined);
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', function first() {
      if (!out.includes('\n')) return;
      proc.stdout!.off('data', first);
      resolve({ proc, head: out.split('\n')[0]!, closed });
    });
    proc.once('error', reject);
  });
}

describe('event streams under clients that do not read', () => {
  let b: HttpBox;
  const clients: { proc: ChildProcess; closed: Promise<void> }[] = [];
  before(async () => {
    b = await startHttpBox({ extra: { telemetry: { emit_interval_ms: 60_000 }, http: { host: '127.0.0.1', port: 0, token: null, max_event_clients: 6, event_backlog_kb: 64 } } });
  });
  after(async () => {
    for (const c of clients) c.proc.kill();
    await b?.close();
  });

  it('serves up to max_event_clients, then answers 503 with Retry-After; a freed slot is reusable', async () => {
    for (let i = 0; i < 6; i++) {
      const c = await stalledClient(b.url);
      assert.match(c.head, /^HTTP\/1\.1 200/, `client ${i}`);
      clients.push(c);
    }
    const refused = await b.api('/api/events');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '10');
    assert.match(((await refused.json()) as { error: string }).error, /too many event-stream clients/);
    clients.pop()!.proc.kill();
    for (let i = 0; i < 50 && clients.length === 5; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const again = await stalledClient(b.url);
      if (/^HTTP\/1\.1 200/.test(again.head)) clients.push(again);
      else again.proc.kill();
    }
    assert.equal(clients.length, 6, 'the freed slot was given to a new client');
  });

  it('drops a client whose backlog passes event_backlog_kb instead of buffering without bound; readers are unaffected', async () => {
    // One reading client must keep receiving everything while the stalled ones are dropped.
    const reader = await fetch(`${b.url}/api/events`);
    assert.equal(reader.status, 503, 'all slots are held by stalled clients');
    clients.pop()!.proc.kill();
    await new Promise((r) => setTimeout(r, 200));
    const live = await fetch(`${b.url}/api/events`);
    assert.equal(live.status, 200);
    const N = Number(process.env.N ?? 5000);
    const decoder = new TextDecoder();
    let seen = 0;
    const reading = (async () => {
      for await (const chunk of live.body!) {
        seen += (decoder.decode(chunk as Uint8Array).match(/"status":"marker"/g) ?? []).length;
        if (seen >= N) break;
      }
    })();
    // 5,000 markers of ~450 bytes (2.2 MB each): more than a paused loopback socket's kernel buffers plus 64 KB;
    // without the limit each stalled client would hold all of it in this process.
    const label = 'x'.repeat(190);
    for (let i = 0; i < N; i++) {
      const r = await b.box.handleCommand('mark', { label: `${label}${i}` }, { source: 'cli' });
      assert.ok(r.ok, JSON.stringify(r));
      // The reader shares this process: give it turns, as a real client on its own machine would have.
      if (i % 20 === 0) await new Promise((res) => setTimeout(res, 1));
    }
    await reading;
    assert.equal(seen, N, 'the reading client got every marker');
    // Every stalled client was disconnected by the server: once it reads again it sees the end of the stream.
    for (const c of clients) c.proc.stdin!.write('go\n');
    await Promise.all(clients.map((c) => Promise.race([c.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('a stalled client was never dropped')), 15_000))])));
  });
});
