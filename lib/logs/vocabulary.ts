/**
 * Token vocabulary with fixed special ids: <pad>=0, <eos>=1 (also the decoder's go token), <unk>=2; then
 * tokens by descending count, ties in code-point order, so the same counts always give the same ids.
 */
import { promises as fsp } from 'node:fs';
import { DeepSentryError } from '../errors';

export const PAD_TOKEN = '<pad>';
export const EOS_TOKEN = '<eos>';
export const UNK_TOKEN = '<unk>';
/** Stable ids of the specials. */
export const PAD_ID = 0;
export const EOS_ID = 1;
export const UNK_ID = 2;
export const SPECIAL_TOKENS: readonly string[] = [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN];

/** The on-disk form (vocab.json). */
export interface VocabularyJson {
  format: 'deepsentry-vocabulary';
  version: 1;
  /** Token of each id: index = id; the first three are the specials. */
  tokens: string[];
  /** Count of each token in the data it was built from (0 for specials). */
  counts: number[];
  minCount: number;
  maxSize: number;
}

export class Vocabulary {
  private readonly ids: Map<string, number>;
  private constructor(
    /** Token of each id. */
    readonly tokens: readonly string[],
    readonly counts: readonly number[],
    readonly minCount: number,
    readonly maxSize: number,
  ) {
    this.ids = new Map(tokens.map((t, i) => [t, i]));
  }

  get size(): number {
    return this.tokens.length;
  }

  /**
   * Builds from token counts. Tokens with count < minCount are left out (they map to <unk>); at most
   * maxSize ids in all, specials included.
   */
  static build(counts: Map<string, number>, opts: { minCount: number; maxSize: number }): Vocabulary {
    if (!Number.isInteger(opts.maxSize) || opts.maxSize < SPECIAL_TOKENS.length) {
      throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected an integer >= ${SPECIAL_TOKENS.length} for maxSize but received ${opts.maxSize}`);
    }
    const entries = [...counts].filter(([t, c]) => c >= opts.minCount && !SPECIAL_TOKENS.includes(t));
    entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const kept = entries.slice(0, opts.maxSize - SPECIAL_TOKENS.length);
    return new Vocabulary([...SPECIAL_TOKENS, ...kept.map((e) => e[0])], [0, 0, 0, ...kept.map((e) => e[1])], opts.minCount, opts.maxSize);
  }

  /** Id of a token (<unk> when absent). */
  id(token: string): number {
    return this.ids.get(token) ?? UNK_ID;
  }

  /** Token ids of a token sequence, optionally followed by <eos>. */
  encode(tokens: readonly string[], appendEos = false): Int32Array {
    const out = new Int32Array(tokens.length + (appendEos ? 1 : 0));
    for (let i = 0; i < tokens.length; i++) out[i] = this.id(tokens[i]);
    if (appendEos) out[tokens.length] = EOS_ID;
    return out;
  }

  toJSON(): VocabularyJson {
    return { format: 'deepsentry-vocabulary', version: 1, tokens: [...this.tokens], counts: [...this.counts], minCount: this.minCount, maxSize: this.maxSize };
  }

  /** Checks and rebuilds a vocabulary from its JSON form; anything inconsistent is a DS_MODEL error. */
  static fromJSON(j: unknown, source = 'vocabulary'): Vocabulary {
    const o = j as Partial<VocabularyJson> | null;
    const bad = (what: string) => new DeepSentryError('DS_MODEL', `${source}: ${what}`);
    if (o === null || typeof o !== 'object' || o.format !== 'deepsentry-vocabulary') throw bad('not a deepsentry vocabulary (format field)');
    if (o.version !== 1) throw bad(`unsupported version ${String(o.version)} (this library reads 1)`);
    if (!Array.isArray(o.tokens) || !o.tokens.every((t) => typeof t === 'string')) throw bad('tokens must be an array of strings');
    if (!Array.isArray(o.counts) || o.counts.length !== o.tokens.length || !o.counts.every((c) => Number.isInteger(c) && c >= 0)) {
      throw bad('counts must be one non-negative integer per token');
    }
    for (let i = 0; i < SPECIAL_TOKENS.length; i++) if (o.tokens[i] !== SPECIAL_TOKENS[i]) throw bad(`id ${i} must be ${SPECIAL_TOKENS[i]}`);
    if (new Set(o.tokens).size !== o.tokens.length) throw bad('duplicate tokens');
    return new Vocabulary(o.tokens, o.counts as number[], o.minCount ?? 1, o.maxSize ?? o.tokens.length);
  }

  /** Writes vocab JSON atomically (temp file + rename). */
  async save(path: string): Promise<void> {
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      await fsp.writeFile(tmp, JSON.stringify(this.toJSON()) + '\n');
      await fsp.rename(tmp, path);
    } catch (e) {
      throw new DeepSentryError('DS_IO', `Cannot write vocabulary ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  static async load(path: string): Promise<Vocabulary> {
    let text: string;
    try {
      text = await fsp.readFile(path, 'utf8');
    } catch (e) {
      throw new DeepSentryError('DS_IO', `Cannot read vocabulary ${path}: ${(e as Error).message}`, { cause: e });
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new DeepSentryError('DS_MODEL', `${path}: invalid JSON: ${(e as Error).message}`);
    }
    return Vocabulary.fromJSON(j, path);
  }
}
