import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { labelProblem, labelSchema } from '../../src/text/label.ts';

describe('label rule', () => {
  it('accepts printable text in any script, emoji, commas, quotes and formula-like starts', () => {
    for (const s of ['reward', 'stimulus on, left', 'say "hi"', 'Maus 12 — Ölfläche', 'マウス', '🐭 trial', '=SUM(A1)', '-3 dB', '@home', 'a\u00a0b'])
      assert.equal(labelProblem(s), null, s);
  });

  it('refuses C0/C1 controls, bidi controls, invisible joiners, line separators and lone surrogates, naming the code point', () => {
    const cases: [string, RegExp][] = [
      ['a\u0000b', /U\+0000/],
      ['a\tb', /U\+0009/],
      ['line\nbreak', /U\+000A/],
      ['a\u007fb', /U\+007F/],
      ['a\u0085b', /U\+0085/], // NEL (C1)
      ['a\u009bb', /U\+009B/], // CSI (C1): terminal escape without ESC
      ['evil\u202eexe.txt', /U\+202E/], // right-to-left override
      ['a\u2066b\u2069', /U\+2066/],
      ['a\u200bb', /U\+200B/],
      ['a\u2028b', /U\+2028/],
      ['\ufeffbom', /U\+FEFF/],
      ['half \ud83d pair', /lone surrogate/],
      ['\udc00 low first', /lone surrogate/],
    ];
    for (const [s, why] of cases) assert.match(labelProblem(s) ?? 'accepted', why, JSON.stringify(s));
  });

  it('counts characters, not UTF-16 units, for the length limit', () => {
    assert.equal(labelSchema(3).safeParse('🐭🐭🐭').success, true);
    assert.equal(labelSchema(3).safeParse('🐭🐭🐭🐭').success, false);
  });

  it('GPIO marker labels in the config follow it', () => {
    const gpio = (label: string) => ({ gpio: { inputs: [{ line: 24, mode: 'marker', label }] } });
    assert.equal(parseConfig(gpio('reward')).gpio.inputs[0]!.label, 'reward');
    assert.throws(() => parseConfig(gpio('rew\u202eard')), /gpio\.inputs\[0\]\.label: contains an invisible or control character \(U\+202E\)/);
  });
});
