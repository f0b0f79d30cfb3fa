/**
 * Configuration of the log-ingestion layer: ONE defaults object (Drain3's TemplateMinerConfig pattern) and a
 * merge that overrides only the keys a caller or a config file sets. Every option is documented on its type.
 */
import { DeepSentryError, describeValue } from '../errors';
import type { FormatSpec } from './formats';

/** One masking instruction (Drain3 `MaskingInstruction`): every match of `pattern` becomes `maskWith`. */
export interface MaskRule {
  /** Name of the rule; the masked value is kept on the record under this name (e.g. `ip`). */
  name: string;
  /** JavaScript regular-expression source (no flags, no capturing groups needed; groups are made non-capturing). */
  pattern: string;
  /** Placeholder token that replaces a match; default `<NAME>` (the upper-cased name). Must look like `<WORD>`. */
  maskWith?: string;
}

/** How lines are grouped into sessions. */
export interface SessionConfig {
  /**
   * `key`: every line naming a key matched by `keyPattern` belongs to that key's session (HDFS: block id).
   * `field`: the session key is a parsed field (`field`, or the format's own session key: a JSON path, a
   * regex group named `session`/`key`). `time`: tumbling windows of `windowMs` by the line's timestamp.
   * `count`: consecutive blocks of `windowLines` lines. `auto` (default): `key` when `keyPattern` is set and
   * the format is `hdfs` or the pattern was given explicitly, `field` when the format yields a session key,
   * else `time` when the format has timestamps, else `count`.
   */
  mode: 'auto' | 'key' | 'field' | 'time' | 'count';
  /** Regex source of the session key inside the raw message (mode `key`). Default HDFS's `blk_-?\d+`. */
  keyPattern: string;
  /**
   * A line naming several distinct keys: `all` (default, the loghub HDFS convention) puts the line in EVERY
   * named key's session, in order of first mention; `first` puts it only in the first key's session.
   * The same key named twice in one line counts once.
   */
  multiKey: 'all' | 'first';
  /** Parsed field holding the session key (mode `field`); empty = the format's own session key. */
  field: string;
  /** Window length in ms for mode `time`. */
  windowMs: number;
  /** Lines per window for mode `count`. */
  windowLines: number;
  /**
   * A session with no line for this long (on the clock the caller advances: event time in batch, whatever
   * the live monitor passes) is closed. null = never by idleness (batch default: sessions end with the input).
   */
  idleTimeoutMs: number | null;
  /** At most this many sessions are open at once; the least recently active one is closed early (counted as evicted). */
  maxOpen: number;
}

/** The whole configuration of lib/logs. */
export interface LogConfig {
  /** A built-in format name (`hdfs`, `bgl`, `spark`, `zookeeper`, `hpc`, `thunderbird`, `rfc5424`, `rfc3164`, `json`), `auto`, or a spec. */
  format: string | FormatSpec;
  /** Non-blank lines read before auto-detecting the format. */
  detectLines: number;
  /** true: the first bad line (see IssueKind) is an error naming file and line. false: skip, count, report. */
  strict: boolean;
  /** Longest accepted line in bytes (without its newline); longer lines are skipped whole, never buffered whole. */
  maxLineBytes: number;
  /** How many issues are kept with their line numbers for the report (all are counted). */
  reportFirst: number;
  /** Out-of-order timestamps: `keep` the line (default; counted and reported) or `skip` it. The session clock never goes back. */
  outOfOrder: 'keep' | 'skip';
  /** Yearless timestamps (RFC 3164): the year of the first line; null = the input file's modification year (1970 for streams). */
  year: number | null;
  /** Offset added to zone-less timestamps, in minutes east of UTC (0 = they are UTC). */
  utcOffsetMinutes: number;
  masking: {
    /** Ordered rules; at each position of the message the first rule (in this order) that matches wins. */
    rules: MaskRule[];
    /**
     * A run of the same placeholder separated only by spaces or commas (`<IP>, <IP> <IP>`) becomes one
     * placeholder: a list of N values is one variable, not N. All values stay on the record.
     */
    collapseRepeats: boolean;
  };
  tokenizer: {
    /** Lower-case word tokens (placeholders keep their case). */
    lowercase: boolean;
    /** Longest token sequence of a message; longer ones are truncated and counted. */
    maxTokens: number;
  };
  vocabulary: {
    /** Tokens seen fewer times than this (counted over lines, not distinct messages) map to `<unk>`. */
    minCount: number;
    /** Largest vocabulary size, specials included; the most frequent tokens are kept (ties: code-point order). */
    maxSize: number;
  };
  session: SessionConfig;
  window: {
    /** Messages per detector window (the last one is the prediction target). */
    size: number;
  };
}

/**
 * Default masking rules, Drain3-style. Each match must stand alone: it may not continue a word on either side
 * (the boundary lookarounds). Order matters: block ids before numbers, addresses before paths and numbers, and
 * identifiers holding a digit (`<ID>`: `core.2275`, `rdd_16_4`, `storage1024`) before plain numbers. Without
 * the `id` rule the loghub 2k samples gave 1,028 distinct masked messages for BGL (loghub's ground truth: 120
 * templates), 389 for Spark (36), 124 for HPC (46); with it 139, 38 and 54 (HDFS unchanged: 14 of 14).
 */
export const DEFAULT_MASK_RULES: MaskRule[] = [
  { name: 'blk', pattern: String.raw`blk_-?\d+`, maskWith: '<BLK>' },
  { name: 'uuid', pattern: String.raw`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`, maskWith: '<UUID>' },
  // IPv4 with optional port.
  { name: 'ip', pattern: String.raw`(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])`, maskWith: '<IP>' },
  // IPv6: bracketed with port ([::1]:8080), full 8 groups, or compressed (::); at least one `:` pair.
  {
    name: 'ipv6',
    pattern: String.raw`(?<![\w:.])(?:\[(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\](?::\d{1,5})?|(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?|::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})?)(?![\w:.])`,
    maskWith: '<IP>',
  },
  { name: 'hex', pattern: String.raw`(?<![\w.])0[xX][0-9a-fA-F]+(?![\w.])`, maskWith: '<HEX>' },
  // Absolute paths; a first segment starting with a digit is left to the ip/number rules (/10.0.0.1:80).
  { name: 'path', pattern: String.raw`(?<![\w./])(?:/[A-Za-z_.~$-][\w.~$+-]*)(?:/[\w.~$+-]+)*/?`, maskWith: '<PATH>' },
  // A Java-style exception class and everything after it (its message varies with the instance).
  { name: 'exception', pattern: String.raw`(?<![\w.$])(?:[a-z_]\w*\.)+\w*(?:Exception|Error)\b(?::.*)?$`, maskWith: '<EXCEPTION>' },
  // An identifier with a digit in it (`core.2275`, `rdd_16_4`, `storage1024`, `attempt_2017…_1145`, `J08`,
  // `0014a150`): as Drain treats every token holding a digit as a parameter. Letters are required (a plain
  // number is the next rule's).
  // (Written as "letters then a digit, or digits then a letter" rather than with two lookaheads: the rule is
  // tried at every word start, and scanning each word twice cost a third of the masking speed.)
  { name: 'id', pattern: String.raw`(?<![\w.-])(?:[A-Za-z][A-Za-z_.-]*\d|\d[\d.]*[A-Za-z_])(?:[\w.-]*\w)?(?!\w)`, maskWith: '<ID>' },
  { name: 'num', pattern: String.raw`(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w])`, maskWith: '<NUM>' },
];

/** The one defaults object. */
export const DEFAULT_LOG_CONFIG: LogConfig = {
  format: 'auto',
  detectLines: 20,
  strict: false,
  maxLineBytes: 1 << 20,
  reportFirst: 10,
  outOfOrder: 'keep',
  year: null,
  utcOffsetMinutes: 0,
  masking: { rules: DEFAULT_MASK_RULES, collapseRepeats: true },
  tokenizer: { lowercase: false, maxTokens: 64 },
  vocabulary: { minCount: 1, maxSize: 10_000 },
  session: {
    mode: 'auto',
    keyPattern: String.raw`blk_-?\d+`,
    multiKey: 'all',
    field: '',
    windowMs: 60_000,
    windowLines: 100,
    idleTimeoutMs: null,
    maxOpen: 100_000,
  },
  window: { size: 10 },
};

/** A partial configuration: any key may be left out, nested objects too. */
export type LogConfigOverrides = {
  [K in keyof LogConfig]?: K extends 'format' | 'year' ? LogConfig[K] : LogConfig[K] extends object ? Partial<LogConfig[K]> : LogConfig[K];
};

function cfgError(path: string, expected: string, actual: unknown): DeepSentryError {
  return new DeepSentryError('DS_CONFIG', `Expected ${expected} for logs.${path} but received ${describeValue(actual)}`);
}

function checkInt(path: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw cfgError(path, `an integer >= ${min}`, v);
  return v;
}

/**
 * Defaults overridden by `overrides` (only the keys it sets), checked: a wrong type or value is a DS_CONFIG
 * error naming the key. Unknown keys are errors too (a typo must not be silently ignored).
 */
export function resolveLogConfig(overrides: LogConfigOverrides | Record<string, unknown> = {}): LogConfig {
  const o = overrides as Record<string, unknown>;
  const base = DEFAULT_LOG_CONFIG as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) if (!(k in base)) throw new DeepSentryError('DS_CONFIG', `Unknown option logs.${k}`);
  for (const [k, v] of Object.entries(base)) {
    const ov = o[k];
    if (ov === undefined) out[k] = v;
    else if (v !== null && typeof v === 'object' && !Array.isArray(v) && k !== 'format') {
      if (typeof ov !== 'object' || ov === null || Array.isArray(ov)) throw cfgError(k, 'an object', ov);
      for (const kk of Object.keys(ov)) if (!(kk in (v as object))) throw new DeepSentryError('DS_CONFIG', `Unknown option logs.${k}.${kk}`);
      out[k] = { ...(v as object), ...(ov as object) };
    } else out[k] = ov;
  }
  const c = out as unknown as LogConfig;
  if (typeof c.format !== 'string' && (typeof c.format !== 'object' || c.format === null)) throw cfgError('format', 'a format name or spec', c.format);
  checkInt('detectLines', c.detectLines, 1);
  if (typeof c.strict !== 'boolean') throw cfgError('strict', 'a boolean', c.strict);
  checkInt('maxLineBytes', c.maxLineBytes, 16);
  checkInt('reportFirst', c.reportFirst, 0);
  if (c.outOfOrder !== 'keep' && c.outOfOrder !== 'skip') throw cfgError('outOfOrder', '"keep" or "skip"', c.outOfOrder);
  if (c.year !== null) checkInt('year', c.year, 1);
  if (typeof c.utcOffsetMinutes !== 'number' || !Number.isInteger(c.utcOffsetMinutes) || Math.abs(c.utcOffsetMinutes) > 24 * 60) {
    throw cfgError('utcOffsetMinutes', 'an integer in -1440..1440', c.utcOffsetMinutes);
  }
  if (!Array.isArray(c.masking.rules)) throw cfgError('masking.rules', 'an array of {name, pattern, maskWith?}', c.masking.rules);
  c.masking.rules.forEach((r, i) => {
    if (typeof r !== 'object' || r === null || typeof r.name !== 'string' || !/^\w+$/.test(r.name)) throw cfgError(`masking.rules[${i}].name`, 'a word', r?.name);
    if (typeof r.pattern !== 'string' || r.pattern === '') throw cfgError(`masking.rules[${i}].pattern`, 'a regex source', r.pattern);
    if (r.maskWith !== undefined && (typeof r.maskWith !== 'string' || !/^<\w+>$/.test(r.maskWith))) {
      throw cfgError(`masking.rules[${i}].maskWith`, 'a placeholder like <NUM>', r.maskWith);
    }
  });
  if (typeof c.masking.collapseRepeats !== 'boolean') throw cfgError('masking.collapseRepeats', 'a boolean', c.masking.collapseRepeats);
  if (typeof c.tokenizer.lowercase !== 'boolean') throw cfgError('tokenizer.lowercase', 'a boolean', c.tokenizer.lowercase);
  checkInt('tokenizer.maxTokens', c.tokenizer.maxTokens, 1);
  checkInt('vocabulary.minCount', c.vocabulary.minCount, 1);
  checkInt('vocabulary.maxSize', c.vocabulary.maxSize, 4);
  const s = c.session;
  if (!['auto', 'key', 'field', 'time', 'count'].includes(s.mode)) throw cfgError('session.mode', 'auto|key|field|time|count', s.mode);
  if (typeof s.keyPattern !== 'string') throw cfgError('session.keyPattern', 'a regex source', s.keyPattern);
  try {
    new RegExp(s.keyPattern);
  } catch (e) {
    throw new DeepSentryError('DS_CONFIG', `Invalid regex for logs.session.keyPattern ${JSON.stringify(s.keyPattern)}: ${(e as Error).message}`);
  }
  if (s.multiKey !== 'all' && s.multiKey !== 'first') throw cfgError('session.multiKey', '"all" or "first"', s.multiKey);
  if (typeof s.field !== 'string') throw cfgError('session.field', 'a field name', s.field);
  checkInt('session.windowMs', s.windowMs, 1);
  checkInt('session.windowLines', s.windowLines, 1);
  if (s.idleTimeoutMs !== null) checkInt('session.idleTimeoutMs', s.idleTimeoutMs, 1);
  checkInt('session.maxOpen', s.maxOpen, 1);
  checkInt('window.size', c.window.size, 2);
  return c;
}
