import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FloodLimiter } from '../../src/triggers/serial/flood-limiter.ts';

describe('FloodLimiter', () => {
  it('accepts N lines per sliding second, answers the first excess line and drops the rest silently', () => {
    const f = new FloodLimiter(3);
    const got = [0, 0, 0, 0, 0, 0].map((t) => f.admit(t));
    assert.deepEqual(got, ['accept', 'accept', 'accept', 'refuse_with_notice', 'refuse_silently', 'refuse_silently']);
  });

  it('accepts again once the oldest accepted line is a second old, and re-arms the notice', () => {
    const f = new FloodLimiter(2);
    assert.equal(f.admit(0), 'accept');
    assert.equal(f.admit(500_000), 'accept');
    assert.equal(f.admit(999_999), 'refuse_with_notice');
    assert.equal(f.admit(1_000_000), 'accept'); // the line at 0 left the window
    assert.equal(f.admit(1_200_000), 'refuse_with_notice'); // new burst, new notice
    assert.equal(f.admit(1_500_000), 'accept'); // the line at 500_000 left the window
  });

  it('a steady rate at the limit is never refused', () => {
    const f = new FloodLimiter(10);
    for (let i = 0; i < 1000; i++) assert.equal(f.admit(i * 100_000), 'accept');
  });

  it('refuses when the caller cannot take the line, without using a slot, under the same notice rule', () => {
    const f = new FloodLimiter(2);
    assert.equal(f.admit(0), 'accept');
    assert.equal(f.admit(1, false), 'refuse_with_notice');
    assert.equal(f.admit(2, false), 'refuse_silently');
    assert.equal(f.admit(3), 'accept'); // the refused lines did not fill the window
    assert.equal(f.admit(4, false), 'refuse_with_notice'); // re-armed by the accepted line
    assert.equal(f.admit(5), 'refuse_silently'); // now the window is full, still the same burst
  });
});
