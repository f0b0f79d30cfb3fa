/**
 * Masking (Drain3's LogMasker): variable parts of a message become placeholder tokens so that the constant
 * text is what the models see. All rules are compiled into ONE alternation and applied in a single left-to-
 * right pass: at each position the first rule (in configured order) that matches wins, and a masked span is
 * never re-scanned. This is the single-pass equivalent of applying the rules in order when the rules do not
 * match inside each other's placeholders (placeholders contain no digits or separators the rules look for).
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

export class Masker {
  /** Rule names, in order; also the capture-group order of the combined regex. */
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
      // Inner capturing groups would shift the group numbers: make them non-capturing.
      return `(${r.pattern.replace(/\\.|\[(?:\\.|[^\]])*\]|\((?!\?)/g, (m) => (m === '(' ? '(?:' : m))})`;
    });
    this.re = parts.length > 0 ? new RegExp(parts.join('|'), 'g') : /(?!)/g;
  }

  /** Masks `message`; `values` lists what each placeholder replaced. */
  mask(message: string): MaskResult {
    const values: MaskedValue[] = [];
    const names = this.names;
    const ph = this.placeholders;
    const re = this.re;
    // An exec loop rather than replace(re, fn): no per-match argument arrays, and no copy when nothing matches.
    re.lastIndex = 0;
    let masked = '';
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(message)) !== null) {
      const v = m[0];
      if (v === '') {
        re.lastIndex++; // a rule that can match the empty string must not stall the scan
        continue;
      }
      let i = 1;
      while (m[i] === undefined) i++;
      values.push({ rule: names[i - 1], value: v });
      masked += message.slice(last, m.index) + ph[i - 1];
      last = m.index + v.length;
    }
    if (last === 0) return { masked: message, values };
    masked += message.slice(last);
    if (this.collapseRepeats && values.length > 1 && (masked.includes('> <') || masked.includes('>, <'))) {
      return { masked: masked.replace(REPEATS, '$1'), values };
    }
    return { masked, values };
  }
}

