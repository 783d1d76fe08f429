import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHttpBox, type HttpBox } from '../helpers/box.ts';

/**
 * A page on another site must not reach the API through the visitor's browser: no preview slot held by a
 * cross-site <img>, no download, no event stream, no command. The box's own page and scripts still work.
 */
describe('API: cross-site requests', () => {
  let b: HttpBox;
  before(async () => {
    b = await startHttpBox({ token: 'origin-test-token-0123456789' });
  });
  after(async () => {
    await b?.close();
  });

  const routes = ['/api/status', '/api/cameras/cam0/preview.mjpeg', '/api/cameras/cam0/snapshot.jpg', '/api/events', '/api/sessions', '/api/recordings/1/video'];

  it('refuses Sec-Fetch-Site cross-site and same-site on every API route, before auth and before any work', async () => {
    for (const site of ['cross-site', 'same-site']) {
      for (const route of routes) {
        const res = await b.api(route, { headers: { 'sec-fetch-site': site } });
        assert.equal(res.status, 403, `${site} ${route}`);
        const body = (await res.json()) as { error: string };
        assert.match(body.error, /cross-site request refused/);
      }
    }
    const mark = await b.api('/api/markers', { json: { label: 'x' }, headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(mark.status, 403);
    const n = (b.db.prepare("SELECT count(*) AS n FROM events WHERE kind = 'marker'").get() as { n: number }).n;
    assert.equal(n, 0, 'no marker placed');
  });

  it('refuses a foreign or malformed Origin, accepts the box\'s own', async () => {
    for (const origin of ['http://evil.example', 'http://127.0.0.1:1', 'null', 'not a url']) {
      const res = await b.api('/api/markers', { json: { label: 'x' }, headers: { origin } });
      assert.equal(res.status, 403, origin);
      assert.match(((await res.json()) as { error: string }).error, /refused/);
    }
    const own = await b.api('/api/markers', { json: { label: 'own page' }, headers: { origin: b.url, 'sec-fetch-site': 'same-origin' } });
    assert.equal(own.status, 200, await own.text());
  });

  it('scripts (no browser headers) and typed-in navigation still work; the page itself is served', async () => {
    assert.equal((await b.api('/api/status')).status, 200);
    assert.equal((await b.api('/api/status', { headers: { 'sec-fetch-site': 'none' } })).status, 200);
    const page = await fetch(b.url + '/', { headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(page.status, 200, 'a link to the page from elsewhere opens it');
  });
});
