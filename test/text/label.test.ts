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

describe('label rule in the command payloads (HTTP, serial, module all validate through them)', () => {
  it('marker and trial labels refuse bidi overrides, C1 controls and lone surrogates, and accept ordinary text', async () => {
    const { markSchema, startRecordingSchema } = await import('../../src/runtime/commands.ts');
    for (const bad of ['rew\u202eard', 'a\u0085b', 'x\ud800'])
      for (const r of [markSchema.safeParse({ label: bad }), startRecordingSchema.safeParse({ trial_label: bad })]) {
        assert.equal(r.success, false, JSON.stringify(bad));
        assert.match(r.error!.issues[0]!.message, /invisible or control character|lone surrogate/);
      }
    assert.equal(markSchema.safeParse({ label: 'stimulus on, "left"' }).success, true);
    assert.equal(startRecordingSchema.safeParse({ trial_label: '=1+1' }).success, true, 'formula-like text is data; the CSV writer neutralises it');
  });
});

describe('CSV cells a spreadsheet would run as formulas', () => {
  it('are neutralised with a leading apostrophe, and still quoted when needed', async () => {
    const { csvField } = await import('../../src/timing/csv-format.ts');
    assert.equal(csvField('=HYPERLINK("http://x")'), `"'=HYPERLINK(""http://x"")"`);
    assert.equal(csvField('+1'), "'+1");
    assert.equal(csvField('-2'), "'-2");
    assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvField('\t=1'), "'\t=1");
    assert.equal(csvField('reward, left'), '"reward, left"');
    assert.equal(csvField('plain'), 'plain');
  });
});
