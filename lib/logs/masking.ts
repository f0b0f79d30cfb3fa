/**
 * Masking (Drain3's LogMasker): variable parts of a message become placeholder tokens so that the constant
 * text is what the models see. All rules are compiled into ONE alternation and applied in a single left-to-
 * right pass: at each position the first rule (in configured order) that matches wins, and a masked span is
 * never re-scanned. This is the single-pass equivalent of applying the rules in order when the rules do not
 * match inside each other's placeholders (placeholders contain no digits or separators the rules look for).
 *
 * Most rules only start at a word boundary: they begin with a negative lookbehind whose class holds `\w`
 * (`(?<![\w.])…`). Each run of such rules (consecutive in configured order) goes into the alternation behind
 * one `(?<!\w)`: `blk|uuid|(?<!\w)(?:ip|…|num)` for the defaults, one (empty) capture group after each rule,
 * which says which rule matched. The matches are
 * the plain alternation's (a rule's own lookbehind already implies `(?<!\w)`, and the order is kept); inside
 * words, most of a message, the regex engine tries the two or three rules that can match there instead of all
 * of them. Ahead of the alternation a lookahead (startGuard) lets the engine step over the positions where no
 * rule can begin — judged by the characters each rule can start with (firstChars) — without trying any rule;
 * rules it cannot read leave the alternation without it.
 */
import { DeepSentryError } from '../errors';
import type { MaskRule } from './config';

/** A value that was masked: which rule, and the original text. */
export interface MaskedValue {
  rule: string;
  value: string;
}

/** A masked message with the values it hid, in order of appearance. */
export interface MaskResult {
  masked: string;
  values: MaskedValue[];
}

const REPEATS = /(<[A-Z][A-Z0-9_]*>)(?:,? +\1)+/g;

/** The tokens of a regex source: an escape (`\x`), a character class (`[…]`), or one character. */
const REGEX_TOKENS = /\\.|\[(?:\\.|[^\]\\])*\]|[^]/g;

/**
 * True when `pattern` can only match where the character before is not a word character: it starts with a
 * negative lookbehind of one character class that holds `\w` (`(?<![\w.])…`), and has no `|` outside groups
 * (which would leave the other alternatives without the lookbehind).
 */
export function startsAtBoundary(pattern: string): boolean {
  const head = /^\(\?<!\[(?!\^)((?:\\.|[^\]\\])*)\]\)/.exec(pattern);
  if (head === null || !(head[1].match(/\\.|[^\\]/g) ?? ([] as string[])).includes('\\w')) return false;
  let depth = 0;
  for (const t of pattern.match(REGEX_TOKENS) ?? []) {
    if (t === '(') depth++;
    else if (t === ')') depth--;
    else if (t === '|' && depth === 0) return false;
  }
  return true;
}

/** The characters a non-empty match can start with (see firstChars). */
export interface FirstChars {
  /** members of one character class: class escapes (`\d`), characters and ranges as `\uHHHH` escapes */
  members: string[];
  /** what a class cannot hold, as regex alternatives: `.`, negated or unconverted classes */
  others: string[];
}

/** A pattern this reading does not know (firstChars gives null). */
class Unknown extends Error {}

const hex4 = (c: number) => `\\u${c.toString(16).padStart(4, '0')}`;
const CLASS_ESCAPES = 'dDwWsS';

/**
 * Reads a regex source (no flags: `u` and `v` are never set on masking rules) for the characters a non-empty
 * match can start with. Knows characters, `.`, classes, the class escapes, escaped punctuation, groups (plain,
 * non-capturing, named), lookarounds and `^ $ \b \B` (they consume nothing), alternation and quantifiers; gives
 * null for anything else (a backreference, `\n`, `\x41`, a modifier group, a stray `{`...), so that what it gives
 * is never narrower than the truth.
 */
export function firstChars(pattern: string): FirstChars | null {
  const members = new Set<string>();
  const others = new Set<string>();
  let i = 0;
  const fail = (): never => {
    throw new Unknown();
  };
  /** alternatives up to a `)` or the end: whether the whole can match the empty string */
  const alternatives = (): boolean => {
    let nullable = sequence();
    while (pattern[i] === '|') {
      i++;
      nullable = sequence() || nullable;
    }
    return nullable;
  };
  /** terms up to `|`, `)` or the end: each term's first characters count until one cannot match empty */
  const sequence = (): boolean => {
    let open = true; // every term so far can match empty: the next one's first characters count
    while (i < pattern.length && pattern[i] !== '|' && pattern[i] !== ')') {
      const m = new Set<string>();
      const o = new Set<string>();
      let nullable = atom(m, o);
      const q = /^(?:[*+?]|\{(\d+)(?:,\d*)?\})\??/.exec(pattern.slice(i, i + 24));
      if (q !== null) {
        if (q[0][0] === '*' || q[0][0] === '?' || Number(q[1]) === 0) nullable = true;
        i += q[0].length;
      }
      if (open) {
        for (const x of m) members.add(x);
        for (const x of o) others.add(x);
      }
      open = open && nullable;
    }
    return open;
  };
  /** one atom at i: its first characters into m and o, and whether it can match empty */
  const atom = (m: Set<string>, o: Set<string>): boolean => {
    const c = pattern[i];
    if (c === '(') {
      const head = /^\((\?(?:[:=!]|<[=!]|<[A-Za-z_$][\w$]*>))?/.exec(pattern.slice(i, i + 64)) as RegExpExecArray;
      if (pattern[i + 1] === '?' && head[1] === undefined) fail();
      i += head[0].length;
      const g = head[1];
      // a lookaround consumes nothing: its characters are not the match's
      const look = g === '?=' || g === '?!' || g === '?<=' || g === '?<!';
      const nullable = look ? (sub(new Set(), new Set()), true) : sub(m, o);
      if (pattern[i] !== ')') fail();
      i++;
      return nullable;
    }
    if (c === '[') {
      const cls = /^\[(?:\\.|[^\]\\])*\]/.exec(pattern.slice(i)) ?? fail();
      i += cls[0].length;
      classMembers(cls[0], m, o);
      return false;
    }
    if (c === '\\') {
      const e = pattern[i + 1] ?? fail();
      i += 2;
      if (CLASS_ESCAPES.includes(e)) m.add(`\\${e}`);
      else if (e === 'b' || e === 'B') return true;
      else if (/[A-Za-z0-9_]/.test(e)) fail();
      else m.add(hex4(e.charCodeAt(0)));
      return false;
    }
    if (c === '^' || c === '$') {
      i++;
      return true;
    }
    if (c === '.') {
      i++;
      o.add('.');
      return false;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{' || c === ']' || c === '}' || c === ')' || c === '|') fail();
    i++;
    m.add(/[A-Za-z0-9_]/.test(c) ? c : hex4(c.charCodeAt(0)));
    return false;
  };
  /** a group's alternatives, their first characters into m and o (not straight into the pattern's) */
  const sub = (m: Set<string>, o: Set<string>): boolean => {
    const saveM = new Set(members);
    const saveO = new Set(others);
    members.clear();
    others.clear();
    const nullable = alternatives();
    for (const x of members) m.add(x);
    for (const x of others) o.add(x);
    members.clear();
    others.clear();
    for (const x of saveM) members.add(x);
    for (const x of saveO) others.add(x);
    return nullable;
  };
  try {
    alternatives();
    if (i !== pattern.length) fail();
  } catch (e) {
    if (e instanceof Unknown) return null;
    throw e;
  }
  return { members: [...members], others: [...others] };
}

/**
 * A class's characters as members of another class (`[a-f\d.]` → `\u0061-\u0066`, `\d`, `\u002e`), or the
 * class itself as an alternative when it is negated, empty, or holds what this reading leaves alone (an escape
 * other than a class escape or punctuation, a `-` next to a class escape).
 */
function classMembers(cls: string, m: Set<string>, o: Set<string>): void {
  const inner = cls.slice(1, -1);
  if (inner.startsWith('^') || inner === '') {
    o.add(cls);
    return;
  }
  // items: a character code, or a class escape (a string)
  const items: (number | string)[] = [];
  for (const t of inner.match(/\\.|[^]/g) as string[]) {
    if (t.length === 1) items.push(t === '-' ? -1 : t.charCodeAt(0));
    else if (CLASS_ESCAPES.includes(t[1])) items.push(t);
    else if (/[A-Za-z0-9_]/.test(t[1])) {
      o.add(cls);
      return;
    } else items.push(t.charCodeAt(1));
  }
  const out: string[] = [];
  for (let k = 0; k < items.length; k++) {
    const x = items[k];
    if (x === -1) {
      // a dash: a literal at either end, else a range between two characters
      if (k === 0 || k === items.length - 1) {
        out.push(hex4(45));
        continue;
      }
      o.add(cls);
      return;
    }
    if (typeof x === 'string') {
      if (items[k + 1] === -1 && k + 1 !== items.length - 1) {
        o.add(cls);
        return;
      }
      out.push(x);
      continue;
    }
    const y = items[k + 2];
    if (items[k + 1] === -1 && k + 2 < items.length && typeof y === 'number' && y !== -1) {
      out.push(`${hex4(x)}-${hex4(y)}`);
      k += 2;
    } else if (items[k + 1] === -1 && k + 2 < items.length) {
      o.add(cls);
      return;
    } else out.push(hex4(x));
  }
  for (const x of out) m.add(x);
}

/**
 * A lookahead that holds wherever some rule's match can begin (see firstChars): a character a rule can start
 * with, and for the rules that start only at a word boundary, after a character that is not a word character.
 * The regex engine then tries the rules only there (inside words, at most positions, none can begin). Null when
 * a rule is beyond firstChars. A position it skips is one where no rule has a non-empty match: at most an empty
 * one, which masks nothing, so the matches are the alternation's.
 */
function startGuard(rules: readonly MaskRule[]): string | null {
  const anywhere: FirstChars = { members: [], others: [] };
  const boundary: FirstChars = { members: [], others: [] };
  for (const r of rules) {
    const f = firstChars(r.pattern);
    if (f === null) return null;
    const to = startsAtBoundary(r.pattern) ? boundary : anywhere;
    to.members.push(...f.members);
    to.others.push(...f.others);
  }
  const alternatives = (f: FirstChars) => [...(f.members.length > 0 ? [`[${[...new Set(f.members)].join('')}]`] : []), ...new Set(f.others)];
  const parts = alternatives(anywhere);
  const b = alternatives(boundary);
  if (b.length > 0) parts.push(`(?<!\\w)(?:${b.join('|')})`);
  return parts.length === 0 ? '(?!)' : `(?=${parts.join('|')})`;
}

export class Masker {
  /** Rule names, in order. */
  readonly names: readonly string[];
  /** Placeholder of each rule. */
  readonly placeholders: readonly string[];
  private readonly re: RegExp;

  constructor(
    rules: readonly MaskRule[],
    private readonly collapseRepeats = true,
  ) {
    this.names = rules.map((r) => r.name);
    this.placeholders = rules.map((r) => r.maskWith ?? `<${r.name.toUpperCase()}>`);
    const parts = rules.map((r, i) => {
      try {
        new RegExp(r.pattern);
      } catch (e) {
        throw new DeepSentryError('DS_CONFIG', `Invalid regex in masking rule ${i} (${r.name}) ${JSON.stringify(r.pattern)}: ${(e as Error).message}`);
      }
      if (/\\k</.test(r.pattern)) {
        throw new DeepSentryError('DS_CONFIG', `masking rule ${i} (${r.name}) ${JSON.stringify(r.pattern)}: a named backreference (\\k<…>) is not supported in masking rules`);
      }
      // Inner capturing groups, named or not, would shift the group numbers: make them non-capturing. The rule's
      // group is an empty one after it: the regex engine then makes no copy of the matched text per capture (the
      // match array holds '' for it), and a numbered backreference, which refers to a group of another rule or
      // of a rule not yet matched, still matches the empty string.
      return `(?:${r.pattern.replace(/\\.|\[(?:\\.|[^\]])*\]|\((?!\?)|\(\?<(?![=!])[^>]*>/g, (m) => (m.startsWith('(') ? '(?:' : m))})()`;
    });
    if (parts.length === 0) this.re = /(?!)/g;
    else {
      // Configured order; each run of consecutive rules that start only at a word boundary shares one (?<!\w).
      const alts: string[] = [];
      for (let i = 0; i < parts.length; ) {
        if (!startsAtBoundary(rules[i].pattern)) alts.push(parts[i++]);
        else {
          const run: string[] = [];
          while (i < parts.length && startsAtBoundary(rules[i].pattern)) run.push(parts[i++]);
          alts.push(`(?<!\\w)(?:${run.join('|')})`);
        }
      }
      const guard = startGuard(rules);
      this.re = new RegExp(guard === null ? alts.join('|') : `${guard}(?:${alts.join('|')})`, 'g');
    }
  }

  /** Masks `message`; `values` lists what each placeholder replaced. */
  mask(message: string): MaskResult {
    const values: MaskedValue[] = [];
    return { masked: this.apply(message, values), values };
  }

  /**
   * The masked text of `message` alone, as `mask(message).masked`: for callers that never read the values
   * (scoring), with no record per masked value (a few per line, most of what masking allocated).
   */
  maskText(message: string): string {
    return this.apply(message, null);
  }

  /** Masks `message`, pushing what each placeholder replaced onto `values` when given. */
  private apply(message: string, values: MaskedValue[] | null): string {
    const names = this.names;
    const ph = this.placeholders;
    const re = this.re;
    // An exec loop rather than replace(re, fn): no per-match argument arrays, and no copy when nothing matches.
    re.lastIndex = 0;
    let masked = '';
    let last = 0;
    let n = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(message)) !== null) {
      const v = m[0];
      if (v === '') {
        re.lastIndex++; // a rule that can match the empty string must not stall the scan
        continue;
      }
      let g = 1;
      while (m[g] === undefined) g++;
      const i = g - 1; // group g is rule g − 1
      values?.push({ rule: names[i], value: v });
      n++;
      masked += message.slice(last, m.index) + ph[i];
      last = m.index + v.length;
    }
    if (last === 0) return message;
    masked += message.slice(last);
    if (this.collapseRepeats && n > 1 && (masked.includes('> <') || masked.includes('>, <'))) return masked.replace(REPEATS, '$1');
    return masked;
  }
}

