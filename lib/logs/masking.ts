/**
 * Masking (Drain3's LogMasker): variable parts of a message become placeholder tokens so that the constant
 * text is what the models see. All rules are compiled into ONE alternation and applied in a single left-to-
 * right pass: at each position the first rule (in configured order) that matches wins, and a masked span is
 * never re-scanned. This is the single-pass equivalent of applying the rules in order when the rules do not
 * match inside each other's placeholders (placeholders contain no digits or separators the rules look for).
 *
 * Most rules only start at a word boundary: they begin with a negative lookbehind whose class holds `\w`
 * (`(?<![\w.])…`). Inside a word only the other rules can match, so the alternation is split by the character
 * before the position: `(?<=\w)(?:other rules)|(?<!\w)(?:all rules)`, each list in configured order. The
 * matches are the same as the plain alternation's (at every position the same rules are tried in the same
 * order, less those that cannot match there); inside words, most of a message, the regex engine tries two or
 * three rules instead of all of them.
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

export class Masker {
  /** Rule names, in order. */
  readonly names: readonly string[];
  /** Placeholder of each rule. */
  readonly placeholders: readonly string[];
  private readonly re: RegExp;
  /** rule index of each capture group of `re` (group g is groupRule[g - 1]) */
  private readonly groupRule: readonly number[];

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
      // Inner capturing groups, named or not, would shift the group numbers: make them non-capturing.
      return `(${r.pattern.replace(/\\.|\[(?:\\.|[^\]])*\]|\((?!\?)|\(\?<(?![=!])[^>]*>/g, (m) => (m.startsWith('(') ? '(?:' : m))})`;
    });
    const all = rules.map((_, i) => i);
    const inWord = all.filter((i) => !startsAtBoundary(rules[i].pattern));
    if (parts.length === 0) {
      this.re = /(?!)/g;
      this.groupRule = [];
    } else if (inWord.length === parts.length) {
      this.re = new RegExp(parts.join('|'), 'g');
      this.groupRule = all;
    } else {
      const inside = inWord.length > 0 ? `(?<=\\w)(?:${inWord.map((i) => parts[i]).join('|')})|` : '';
      this.re = new RegExp(`${inside}(?<!\\w)(?:${parts.join('|')})`, 'g');
      this.groupRule = [...inWord, ...all];
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
      const i = this.groupRule[g - 1];
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

