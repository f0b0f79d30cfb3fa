/**
 * The masker's split alternation (lib/logs/masking.ts): rules that begin with a negative lookbehind holding
 * `\w` are tried only where the character before is not a word character. Which rules qualify, and that the
 * masks and values are those of the plain alternation of all rules (applied here as the reference) on
 * seeded random strings built from the characters the rules look for, and on edge cases.
 */
import { expect } from 'chai';
import { DEFAULT_MASK_RULES, type MaskRule } from '../../lib/logs/config';
import { firstChars, Masker, startsAtBoundary } from '../../lib/logs/masking';
import { mulberry32 } from '../../lib/backend/reference';

/** The plain alternation, first rule in order at the leftmost position: what Masker must compute. */
function reference(rules: readonly MaskRule[], message: string): { masked: string; values: Array<{ rule: string; value: string }> } {
  const re = new RegExp(rules.map((r) => `(${r.pattern.replace(/\\.|\[(?:\\.|[^\]])*\]|\((?!\?)/g, (m) => (m === '(' ? '(?:' : m))})`).join('|'), 'g');
  const values: Array<{ rule: string; value: string }> = [];
  const masked = message.replace(re, (...m: unknown[]) => {
    let i = 1;
    while (m[i] === undefined) i++;
    values.push({ rule: rules[i - 1].name, value: m[0] as string });
    return rules[i - 1].maskWith ?? `<${rules[i - 1].name.toUpperCase()}>`;
  });
  return { masked, values };
}

describe('masking: one alternation, boundary rules behind one lookbehind', () => {
  it('knows which rules start only at a word boundary', () => {
    expect(DEFAULT_MASK_RULES.map((r) => [r.name, startsAtBoundary(r.pattern)])).to.deep.equal([
      ['blk', false],
      ['uuid', false],
      ['ip', true],
      ['ipv6', true],
      ['hex', true],
      ['path', true],
      ['exception', true],
      ['id', true],
      ['num', true],
    ]);
    expect(startsAtBoundary(String.raw`(?<![.\w])(?:a|b)\d`)).to.equal(true);
    expect(startsAtBoundary(String.raw`(?<![\w.])x|y`)).to.equal(false); // y has no lookbehind
    expect(startsAtBoundary(String.raw`(?<![^\w])x`)).to.equal(false); // negated class
    expect(startsAtBoundary(String.raw`(?<![\\w])x`)).to.equal(false); // a backslash and a w, not \w
    expect(startsAtBoundary(String.raw`(?<![.])x`)).to.equal(false);
    expect(startsAtBoundary(String.raw`(?<![|\w])x[|]`)).to.equal(true); // | in classes is a character
  });

  it('masks as the plain alternation does, on random strings and edge cases', () => {
    const rules: MaskRule[] = [...DEFAULT_MASK_RULES, { name: 'mixed', pattern: String.raw`(?<![\w])zz\d|q\d`, maskWith: '<MIXED>' }];
    const alphabet = 'abefxX0123456789__..::--//  [],blk_zzqException';
    const rand = mulberry32(7);
    const cases = [
      '',
      'blk_123 ablk_-45 x1 1x a.b.c 10.0.0.1:50010 a10.0.0.1 deadbeef-dead-beef-dead-beefdeadbeef',
      'xdeadbeef-dead-beef-dead-beefdeadbeef /a/b c/d 0x1F a0x1F java.io.IOException: boom',
      'zz1 azz1 aq1 q1 size 12 12 12, 12 ::1 a::1 [fe80::1]:80',
    ];
    for (let n = 0; n < 3000; n++) {
      let s = '';
      const len = Math.floor(rand() * 48);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      cases.push(s);
    }
    for (const collapse of [false, true]) {
      const m = new Masker(rules, collapse);
      for (const s of cases) {
        const want = reference(rules, s);
        const got = m.mask(s);
        expect(got.values, s).to.deep.equal(want.values);
        if (!collapse) expect(got.masked, s).to.equal(want.masked);
        // the text-only path (scoring) gives the same text, with or without collapsed repeats
        expect(m.maskText(s), s).to.equal(got.masked);
      }
    }
  });

  it('masks as the plain alternation does with numbered backreferences, empty matches and inner groups', () => {
    // Numbered backreferences in a rule refer to the alternation's groups (one per rule: never one that has
    // matched), inner groups are made non-capturing, a rule may match the empty string: the marker groups that
    // say which rule matched must change none of it.
    const rules: MaskRule[] = [
      { name: 'self', pattern: String.raw`(\d)a` },
      { name: 'other', pattern: String.raw`b(c)` },
      { name: 'later', pattern: String.raw`(?<![\w])de` },
      { name: 'empty', pattern: String.raw`x*` },
      { name: 'far', pattern: String.raw`f\9` },
    ];
    const alphabet = '0123abcdefx \u0009';
    const rand = mulberry32(11);
    const cases = ['1a1', '1a', 'bc', 'b1cc', ' de', 'de', 'xx', 'f', 'f\t', 'f9'];
    for (let n = 0; n < 2000; n++) {
      let s = '';
      const len = Math.floor(rand() * 24);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      cases.push(s);
    }
    // the reference's alternation, an empty match left as it is (the masker skips it)
    const plain = new RegExp(rules.map((r) => `(${r.pattern.replace(/\\.|\[(?:\\.|[^\]])*\]|\((?!\?)/g, (x) => (x === '(' ? '(?:' : x))})`).join('|'), 'g');
    const m = new Masker(rules, false);
    for (const s of cases) {
      const want = reference(rules, s);
      const got = m.mask(s);
      expect(got.values, s).to.deep.equal(want.values.filter((v) => v.value !== ''));
      const masked = s.replace(plain, (...x: unknown[]) => {
        let i = 1;
        while (x[i] === undefined) i++;
        return x[0] === '' ? '' : `<${rules[i - 1].name.toUpperCase()}>`;
      });
      expect(got.masked, s).to.equal(masked);
      expect(m.maskText(s), s).to.equal(got.masked);
    }
  });

  it('numbers its groups right when a rule has a named group; refuses a named backreference', () => {
    const rules: MaskRule[] = [
      { name: 'a', pattern: String.raw`(?<![\w])(?<n>\d+)` },
      { name: 'b', pattern: String.raw`x\d` },
    ];
    expect(new Masker(rules, false).mask('x1 22 a33').masked).to.equal('<B> <A> a33');
    expect(() => new Masker([{ name: 'r', pattern: String.raw`(?<d>\d)\k<d>` }]))
      .to.throw(/masking rule 0 \(r\).*named backreference/)
      .with.property('code', 'DS_CONFIG');
  });
  it('reads the characters a match can start with, or gives up', () => {
    const f = (p: string) => firstChars(p);
    expect(f(String.raw`blk_-?\d+`)).to.deep.equal({ members: ['b'], others: [] });
    expect(f(String.raw`(?<![\w.])[-+]?\d+`)).to.deep.equal({ members: ['\\u002d', '\\u002b', '\\d'], others: [] });
    expect(f(String.raw`(?:x*|y)z`)).to.deep.equal({ members: ['x', 'y', 'z'], others: [] });
    expect(f(String.raw`(?=q)a{0,2}[a-c]`)).to.deep.equal({ members: ['a', '\\u0061-\\u0063'], others: [] });
    expect(f(String.raw`^\b.|[^a]`)).to.deep.equal({ members: [], others: ['.', '[^a]'] });
    // a dash next to a class escape, or after a range, stays a class of its own
    expect(f(String.raw`[\d-a]`)).to.deep.equal({ members: [], others: [String.raw`[\d-a]`] });
    expect(f(String.raw`[a-c-e]`)).to.deep.equal({ members: [], others: ['[a-c-e]'] });
    expect(f(String.raw`[-a\]]`)).to.deep.equal({ members: ['\\u002d', '\\u0061', '\\u005d'], others: [] });
    expect(f(String.raw`[\b]`)).to.deep.equal({ members: [], others: [String.raw`[\b]`] }); // a class kept whole
    for (const unknown of [String.raw`(\d)\1`, String.raw`\x41`, String.raw`\u0041`, String.raw`\n`, String.raw`(?i:a)`, 'a{', '{1}']) {
      expect(f(unknown), unknown).to.equal(null);
    }
  });

  it('tries the rules only where one can start: the plain alternation\'s matches on random rules and strings', () => {
    // Random rules from characters, classes, dots, groups, alternatives, quantifiers (some that match empty),
    // lookarounds, anchors and word-boundary lookbehinds; random strings of the characters they look for.
    const rand = mulberry32(23);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const atoms = ['a', 'b', 'x', '1', ' ', '-', String.raw`\d`, String.raw`\w`, String.raw`\s`, String.raw`\.`, '[a-c]', '[^a ]', '[-x1]', String.raw`[\d.]`, '.', String.raw`\-`];
    const quants = ['', '', '', '?', '*', '+', '{0,2}', '{1,2}', '??', '+?'];
    const zeroWidth = ['^', '$', String.raw`\b`, String.raw`\B`, '(?=a)', '(?!b)', '(?<=x)', '(?<!1)'];
    const term = (depth: number): string => {
      const r = rand();
      if (r < 0.1) return pick(zeroWidth);
      if (r < 0.25 && depth < 2) {
        const alts = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => seq(depth + 1));
        return `${pick(['(?:', '('])}${alts.join('|')})${pick(quants)}`;
      }
      return pick(atoms) + pick(quants);
    };
    const seq = (depth: number): string => Array.from({ length: 1 + Math.floor(rand() * 3) }, () => term(depth)).join('');
    const alphabet = 'abx1 -.c_';
    let guarded = 0;
    for (let n = 0; n < 300; n++) {
      const rules: MaskRule[] = Array.from({ length: 1 + Math.floor(rand() * 4) }, (_, i) => ({ name: `r${i}`, pattern: `${rand() < 0.4 ? String.raw`(?<![\w.])` : ''}${seq(0)}${rand() < 0.2 ? `|${seq(0)}` : ''}` }));
      if (rules.every((r) => firstChars(r.pattern) !== null)) guarded++;
      const plain = new RegExp(rules.map((r) => `(${r.pattern.replace(/\\.|\[(?:\\.|[^\]])*\]|\((?!\?)/g, (x) => (x === '(' ? '(?:' : x))})`).join('|'), 'g');
      const m = new Masker(rules, false);
      for (let k = 0; k < 20; k++) {
        let s = '';
        const len = Math.floor(rand() * 16);
        for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
        const values: Array<{ rule: string; value: string }> = [];
        // an empty match masks nothing (the masker steps over it)
        const masked = s.replace(plain, (...x: unknown[]) => {
          let i = 1;
          while (x[i] === undefined) i++;
          if (x[0] === '') return '';
          values.push({ rule: rules[i - 1]!.name, value: x[0] as string });
          return `<${rules[i - 1]!.name.toUpperCase()}>`;
        });
        const got = m.mask(s);
        const what = `${JSON.stringify(rules.map((r) => r.pattern))} on ${JSON.stringify(s)}`;
        expect(got.masked, what).to.equal(masked);
        expect(got.values, what).to.deep.equal(values);
      }
    }
    expect(guarded, 'rule sets read to their first characters').to.be.greaterThan(250);
  });
});
