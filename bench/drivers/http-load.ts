/**
 * Load generator, run as its own process so it does not share rigcam's event loop: `n` GET requests over
 * `concurrency` keep-alive connections to one loopback URL, after a short warm-up. Prints one JSON line.
 * Usage: node --import tsx bench/drivers/http-load.ts <url> <n> <concurrency>
 */
import http from 'node:http';

const [url, nArg, cArg] = process.argv.slice(2);
if (!url || !nArg || !cArg) throw new Error('usage: http-load.ts <url> <n> <concurrency>');
const target = new URL(url);
if (target.hostname !== '127.0.0.1') throw new Error('the load generator only targets 127.0.0.1');
const n = Number(nArg);
const concurrency = Number(cArg);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function get(): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(target, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function load(count: number, latUs: number[] | null): Promise<{ errors: number; non2xx: number; bytes: number }> {
  let next = 0;
  let errors = 0;
  let non2xx = 0;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next += 1;
      const t0 = process.hrtime.bigint();
      try {
        const r = await get();
        if (r.status < 200 || r.status > 299) non2xx += 1;
        bytes += r.bytes;
      } catch {
        errors += 1;
      }
      latUs?.push(Number((process.hrtime.bigint() - t0) / 1000n));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { errors, non2xx, bytes };
}

await load(Math.min(200, n), null);
const lat: number[] = [];
const t0 = performance.now();
const r = await load(n, lat);
const seconds = (performance.now() - t0) / 1000;
lat.sort((a, b) => a - b);
const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil((p / 100) * lat.length) - 1))]!;
agent.destroy();
process.stdout.write(
  `${JSON.stringify({ requests: lat.length, seconds, rps: lat.length / seconds, p50Us: pct(50), p99Us: pct(99), maxUs: lat[lat.length - 1], ...r, bytesPerResponse: r.bytes / lat.length })}\n`,
);
