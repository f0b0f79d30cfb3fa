/**
 * Tokenizer: a masked message → tokens. Placeholders (`<IP>`) are one token each, words are runs of letters,
 * digits and `_`, and every other non-space character is a token of its own (punctuation carries structure:
 * `a=b`, `x: y`). Runs once per DISTINCT masked message (the pipeline interns them), so clarity beats speed.
 */

/** Tokenizer options (LogConfig.tokenizer). */
export interface TokenizerOptions {
  /** Lower-case word tokens; placeholders keep their case so they never collide with words. */
  lowercase: boolean;
  /** Longest token sequence; longer ones are truncated (see `truncated`). */
  maxTokens: number;
}

/** Tokens of one message. */
export interface Tokenized {
  tokens: string[];
  /** The message had more than maxTokens tokens and was cut. */
  truncated: boolean;
}

const TOKEN_RE = /<[A-Z][A-Z0-9_]*>|[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;

export class Tokenizer {
  /** Messages truncated so far (by this instance). */
  truncatedCount = 0;
  constructor(readonly options: TokenizerOptions) {}

  tokenize(message: string): Tokenized {
    const max = this.options.maxTokens;
    const lower = this.options.lowercase;
    const tokens: string[] = [];
    let truncated = false;
    TOKEN_RE.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = TOKEN_RE.exec(message)) !== null) {
      if (tokens.length === max) {
        truncated = true;
        break;
      }
      const t = m[0];
      tokens.push(lower && t.charCodeAt(0) !== 60 /* < */ ? t.toLowerCase() : t);
    }
    if (truncated) this.truncatedCount++;
    return { tokens, truncated };
  }
}
