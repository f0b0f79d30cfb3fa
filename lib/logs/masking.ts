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
 * of them.
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
      this.re = new RegExp(alts.join('|'), 'g');
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

