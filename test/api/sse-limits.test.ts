import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStreams } from '../../src/api/sse.ts';
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

  it('a reading client gets every status while stalled clients hold slots', async () => {
    clients.pop()!.proc.kill();
    await new Promise((r) => setTimeout(r, 200));
    const live = await fetch(`${b.url}/api/events`);
    assert.equal(live.status, 200);
    const N = 1000;
    const decoder = new TextDecoder();
    let seen = 0;
    const reading = (async () => {
      for await (const chunk of live.body!) {
        seen += (decoder.decode(chunk as Uint8Array).match(/"status":"marker"/g) ?? []).length;
        if (seen >= N) break;
      }
    })();
    for (let i = 0; i < N; i++) {
      const r = await b.box.handleCommand('mark', { label: `m${i}` }, { source: 'cli' });
      assert.ok(r.ok, JSON.stringify(r));
      if (i % 20 === 0) await new Promise((res) => setTimeout(res, 1));
    }
    await reading;
    assert.equal(seen, N, 'the reading client got every marker');
  });
});

describe('event streams: backlog bound', () => {
  it('disconnects a client whose backlog in this process passes the limit, and serialises each status once', async () => {
    // A client whose socket accepts nothing more is modelled by corking the server side of a real connection:
    // what it is sent then queues in this process, as it would once the kernel's buffers are full.
    const source = new EventEmitter();
    const streams = new EventStreams(source as unknown as ConstructorParameters<typeof EventStreams>[0], { maxBacklogBytes: 16 * 1024, maxClients: 4 });
    const server = createServer((req, res) => {
      if (req.url === '/stalled') res.socket!.cork();
      streams.add(res as unknown as Parameters<EventStreams['add']>[0]);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    try {
      // Its headers never leave the corked socket: do not wait for them.
      const ac = new AbortController();
      void fetch(`http://127.0.0.1:${port}/stalled`, { signal: ac.signal }).catch(() => undefined);
      for (let i = 0; i < 100 && streams.size < 1; i++) await new Promise((r) => setTimeout(r, 10));
      const fine = await fetch(`http://127.0.0.1:${port}/fine`);
      assert.equal(fine.status, 200);
      let received = 0;
      const draining = (async () => {
        for await (const chunk of fine.body!) received += (chunk as Uint8Array).length;
      })().catch(() => undefined);
      let stringify = 0;
      const status = { status: 'marker', timestamp: 0, data: { label: 'x'.repeat(300) }, toJSON() { stringify++; return { status: this.status, timestamp: this.timestamp, data: this.data }; } };
      for (let i = 0; i < 200; i++) {
        source.emit('status', status);
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1)); // the reading client reads as it goes
      }
      assert.equal(stringify, 200, 'each status serialised once, not once per client');
      assert.equal(streams.dropped, 1, 'the stalled client was disconnected');
      assert.equal(streams.size, 1, 'the reading client stays');
      for (let i = 0; i < 100 && received < 200 * 300; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(received > 200 * 300, `the reading client got everything (${received} bytes)`);
      ac.abort();
      void draining;
    } finally {
      streams.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
