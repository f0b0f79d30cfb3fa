/**
 * The ingestion pipeline: lines → parsed → masked → interned message id (tokenised once per distinct masked
 * message) → session keys → Sessionizer. `LogProcessor` is the synchronous core (one batch at a time, no
 * per-line promises: this is the hot path); `openLogInput` / `readRecords` wrap it in async iteration over
 * files and streams.
 */
import { promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import { resolveLogConfig, type LogConfig, type LogConfigOverrides } from './config';
import { DeepSentryError } from '../errors';
import { createFormat, detectFormat, LOGHUB_TIME_LAYOUTS, ParseFailure, type Detection, type FormatOptions, type LogFormat, type ParsedLine } from './formats';
import { IssueLog } from './issues';
import { newReadStats, readLineBatches, type LineBatch, type ReadStats } from './lines';
import { Masker, type MaskedValue } from './masking';
import { resolveSessionMode, SessionKeyer, Sessionizer, type ClosedSession, type ResolvedSessionMode } from './sessions';
import { Tokenizer } from './tokenizer';
import { FIRST_MESSAGE_ID } from './windows';

/** One parsed, masked line. */
export interface LogRecord {
  /** Input name and 1-based physical line number. */
  file: string;
  line: number;
  /** Row: 0-based index among all parsed lines of the run (the row in lines.bin). */
  row: number;
  /** Epoch ms, or null if the format has no timestamps. */
  timestamp: number | null;
  /** Raw message (before masking) and the parsed fields. */
  message: string;
  fields: Record<string, string>;
  /** Per-line label from the format (BGL's first column), and whether it marks an anomaly. */
  label?: string;
  anomaly?: boolean;
  /** Masked message, and the values masking replaced (for diagnosis). */
  masked: string;
  maskedValues: MaskedValue[];
  /** Id of the distinct masked message (>= FIRST_MESSAGE_ID). */
  messageId: number;
  /** Sessions the line belongs to (empty: none): their keys and ids (ClosedSession.id). */
  sessionKeys: readonly string[];
  sessionIds: readonly number[];
}

const NO_IDS: readonly number[] = [];

/** One distinct masked message. */
export interface MessageEntry {
  id: number;
  text: string;
  tokens: string[];
  /** The token sequence was cut at tokenizer.maxTokens. */
  truncated: boolean;
  /** Lines with this message. */
  count: number;
}

/**
 * Interning table of distinct masked messages: tokenisation happens once per distinct message. Memory grows
 * with distinct messages, not with lines.
 */
export class MessageTable {
  private readonly ids = new Map<string, number>();
  /** Entry of message id `i` is `entries[i - FIRST_MESSAGE_ID]`. */
  readonly entries: MessageEntry[] = [];
  constructor(readonly tokenizer: Tokenizer) {}

  get size(): number {
    return this.entries.length;
  }

  intern(masked: string): number {
    const id = this.ids.get(masked);
    if (id !== undefined) {
      this.entries[id - FIRST_MESSAGE_ID].count++;
      return id;
    }
    const nid = FIRST_MESSAGE_ID + this.entries.length;
    const t = this.tokenizer.tokenize(masked);
    this.entries.push({ id: nid, text: masked, tokens: t.tokens, truncated: t.truncated, count: 1 });
    this.ids.set(masked, nid);
    return nid;
  }

  get(id: number): MessageEntry | undefined {
    return this.entries[id - FIRST_MESSAGE_ID];
  }

  /** Token counts over LINES (a message seen n times counts its tokens n times). */
  tokenCounts(): Map<string, number> {
    const c = new Map<string, number>();
    for (const e of this.entries) for (const t of e.tokens) c.set(t, (c.get(t) ?? 0) + e.count);
    return c;
  }
}

/** Counters of a run (all inputs). */
export interface ProcessStats {
  /** Non-blank lines that reached the parser. */
  candidates: number;
  /** Lines parsed and kept (rows). */
  parsed: number;
  /** Lines the format did not match. */
  unparsed: number;
  /** Lines with a missing or unparseable timestamp (skipped). */
  badTimestamp: number;
  /** Lines earlier than a line before them (kept or skipped per config). */
  outOfOrder: number;
  /** Parsed lines that name no session. */
  unsessioned: number;
  /** Parsed lines assigned to more than one session. */
  multiSession: number;
}

/** The counters parseLogLine keeps (a subset of ProcessStats). */
export type ParseStats = Pick<ProcessStats, 'candidates' | 'unparsed' | 'badTimestamp' | 'outOfOrder'>;

/**
 * One non-blank line's way into a record, the same for batch scoring, training and the live scorers
 * (lib/live/session_scorer.ts): parse it with `format`; a line the format does not match, or whose timestamp
 * is missing or bad, is reported to `issues` and counted, and gives null (never a fake record). A timestamp
 * earlier than `lastTs` (the latest seen before it) is reported and counted as out of order, and gives null
 * when such lines are skipped (logs.outOfOrder `skip`); kept, it does not move any clock (the caller advances
 * its clock only for a timestamp ≥ lastTs).
 */
export function parseLogLine(format: LogFormat, text: string, file: string, lineNo: number, lastTs: number, skipOutOfOrder: boolean, issues: IssueLog | null, st: ParseStats): ParsedLine | null {
  st.candidates++;
  const p = format.parse(text);
  if (p instanceof ParseFailure) {
    if (p.kind === 'unparsed') {
      issues?.add('unparsed', file, lineNo, `${p.reason}: ${JSON.stringify(text.length > 80 ? text.slice(0, 80) + '…' : text)}`);
      st.unparsed++;
    } else {
      issues?.add('bad_timestamp', file, lineNo, p.reason);
      st.badTimestamp++;
    }
    return null;
  }
  const ts = p.timestamp;
  if (ts !== null && ts < lastTs) {
    issues?.add('out_of_order', file, lineNo, `timestamp ${new Date(ts).toISOString()} is earlier than ${new Date(lastTs).toISOString()} seen before`);
    st.outOfOrder++;
    if (skipOutOfOrder) return null;
  }
  return p;
}

/** Options of a LogProcessor. */
export interface ProcessorOptions {
  /** Receives each closed session (synchronously). */
  onSession?: (s: ClosedSession) => void;
  /** The session key pattern was set explicitly (auto session mode then uses it for any format). */
  keyPatternGiven?: boolean;
  /** Shared issue log (a new one from the config otherwise). */
  issues?: IssueLog;
}

/** The synchronous core; one per run. */
export class LogProcessor {
  readonly config: LogConfig;
  readonly issues: IssueLog;
  readonly masker: Masker;
  readonly messages: MessageTable;
  readonly sessions: Sessionizer;
  readonly stats: ProcessStats = { candidates: 0, parsed: 0, unparsed: 0, badTimestamp: 0, outOfOrder: 0, unsessioned: 0, multiSession: 0 };
  private keyer: SessionKeyer | null = null;
  private readonly opts: ProcessorOptions;
  private lastTsByFile = new Map<string, number>();

  constructor(config: LogConfig, opts: ProcessorOptions = {}) {
    this.config = config;
    this.opts = opts;
    this.issues = opts.issues ?? new IssueLog(config.strict, config.reportFirst);
    this.masker = new Masker(config.masking.rules, config.masking.collapseRepeats);
    this.messages = new MessageTable(new Tokenizer(config.tokenizer));
    const isCount = config.session.mode === 'count';
    this.sessions = new Sessionizer(
      { idleTimeoutMs: config.session.idleTimeoutMs, maxOpen: config.session.maxOpen, maxLines: isCount ? config.session.windowLines : null },
      opts.onSession ?? (() => {}),
    );
  }

  /** The session mode, fixed by the first input's format. */
  get sessionMode(): ResolvedSessionMode | null {
    return this.keyer?.mode ?? null;
  }

  /**
   * Processes one batch of lines of `file` in `format`; `onRecord` receives each kept record. Rows are
   * numbered across all batches and inputs.
   */
  processBatch(batch: LineBatch, file: string, format: LogFormat, onRecord?: (r: LogRecord) => void): void {
    let keyer = this.keyer;
    const { lines, lineNos } = batch;
    const issues = this.issues;
    const st = this.stats;
    const masker = this.masker;
    const messages = this.messages;
    const sessions = this.sessions;
    const normal = format.label?.normal;
    const skipOoo = this.config.outOfOrder === 'skip';
    let lastTs = this.lastTsByFile.get(file) ?? -Infinity;
    for (let i = 0; i < lines.length; i++) {
      const p = parseLogLine(format, lines[i], file, lineNos[i], lastTs, skipOoo, issues, st);
      if (p === null) continue;
      keyer ??= this.startSessions(format, p, file, lineNos[i]);
      const ts = p.timestamp;
      if (ts !== null && ts >= lastTs) {
        lastTs = ts;
        sessions.advance(ts);
      }
      const { masked, values } = masker.mask(p.message);
      const messageId = messages.intern(masked);
      const keys = keyer.keys(p, ts);
      const row = st.parsed++;
      let sessionIds: readonly number[] = NO_IDS;
      if (keys.length === 0) st.unsessioned++;
      else {
        if (keys.length > 1) st.multiSession++;
        const deadline = keyer.mode === 'time' ? keyer.windowEnd : undefined;
        const id0 = sessions.add(keys[0], row, messageId, ts, deadline);
        if (onRecord !== undefined) sessionIds = [id0];
        for (let k = 1; k < keys.length; k++) {
          const id = sessions.add(keys[k], row, messageId, ts, deadline);
          if (onRecord !== undefined) (sessionIds as number[]).push(id);
        }
      }
      if (onRecord !== undefined) {
        const r: LogRecord = { file, line: lineNos[i], row, timestamp: ts, message: p.message, fields: p.fields, masked, maskedValues: values, messageId, sessionKeys: keys, sessionIds };
        if (p.label !== undefined) {
          r.label = p.label;
          if (normal !== undefined) r.anomaly = !normal.includes(p.label);
        }
        onRecord(r);
      }
    }
    this.lastTsByFile.set(file, lastTs);
  }

  /**
   * Fixes the session mode at the first parsed line: only then does a format that learns its timestamp from
   * the lines (a loghub format string, JSON's `ts`/`time`/`timestamp` keys) know whether it has one. `time`
   * sessions on lines without a timestamp would be no sessions at all: that is a DS_CONFIG error saying what
   * to change, not an empty result.
   */
  private startSessions(format: LogFormat, first: ParsedLine, file: string, line: number): SessionKeyer {
    const hasTimestamp = format.hasTimestamp || first.timestamp !== null;
    const mode = resolveSessionMode(this.config.session, { name: format.name, hasTimestamp, hasSessionKey: format.hasSessionKey }, this.opts.keyPatternGiven ?? false);
    if (mode === 'time' && !hasTimestamp) {
      const fields = Object.keys(first.fields);
      throw new DeepSentryError(
        'DS_CONFIG',
        `session mode "time" needs a timestamp on every line, but the ${format.name} lines of ${file} carry none (first parsed line ${line}${fields.length > 0 ? `, fields ${fields.join(', ')}` : ''}): ` +
          (format.name === 'json'
            ? 'name the time field (logs.format "json:time=PATH") or cut count windows (logs.session.mode "count")'
            : `name the time fields in the format string (<Date> <Time>, <Timestamp>, … in a layout such as ${LOGHUB_TIME_LAYOUTS.slice(0, 4).map((l) => l.format).join(', ')}) or cut count windows (logs.session.mode "count")`),
      );
    }
    this.keyer = new SessionKeyer(mode, this.config.session);
    if (mode === 'count') this.sessions.maxLines = this.config.session.windowLines;
    return this.keyer;
  }

  /** End of all input: closes the open sessions. */
  finish(): void {
    this.sessions.flush();
  }
}

/** An opened input: its format (given or detected) and its line batches. */
export interface OpenedInput {
  name: string;
  format: LogFormat;
  /** Set when the format was auto-detected. */
  detection?: Detection;
  batches: AsyncGenerator<LineBatch>;
  stats: ReadStats;
}

/** Format options for an input: the configured year, or the file's modification year (1970 for streams). */
async function formatOptions(config: LogConfig, source: string | Readable): Promise<FormatOptions> {
  let year = config.year;
  if (year === null) {
    year = 1970;
    if (typeof source === 'string') {
      try {
        year = (await fsp.stat(source)).mtime.getUTCFullYear();
      } catch {
        // unreadable: the reader reports it
      }
    }
  }
  return { year, utcOffsetMinutes: config.utcOffsetMinutes };
}

/** How an input is read, apart from the log configuration (which a model saves: these are per run). */
export interface InputOptions {
  /** keep the lines before the damage of a truncated or corrupt gzip input (see ReadOptions.acceptTruncated) */
  acceptTruncated?: boolean;
}

/**
 * Opens a file or byte stream: with format `auto`, reads ahead until `detectLines` non-blank lines (or the
 * end) and detects; the lines read ahead are replayed, nothing is lost.
 */
export async function openLogInput(source: string | Readable, config: LogConfig, issues: IssueLog, name?: string, o: InputOptions = {}): Promise<OpenedInput> {
  const inputName = name ?? (typeof source === 'string' ? source : '<stream>');
  const stats = newReadStats();
  const opts = await formatOptions(config, source);
  const batches = readLineBatches(source, { name: inputName, maxLineBytes: config.maxLineBytes, issues, stats, acceptTruncated: o.acceptTruncated === true });
  if (config.format !== 'auto') return { name: inputName, format: createFormat(config.format, opts), batches, stats };
  const ahead: LineBatch[] = [];
  const sample: string[] = [];
  while (sample.length < config.detectLines) {
    const r = await batches.next();
    if (r.done) break;
    ahead.push(r.value);
    for (const l of r.value.lines) if (sample.length < config.detectLines) sample.push(l);
  }
  const detection = detectFormat(sample, opts, inputName);
  async function* replay(): AsyncGenerator<LineBatch> {
    yield* ahead;
    yield* batches;
  }
  return { name: inputName, format: createFormat(detection.spec, opts), detection, batches: replay(), stats };
}

/**
 * Parsed records of one input as an async iterator (the library's streaming API; the live monitor and tests
 * use it). Sessions close into `onSession`; bad lines go to `issues` (given, or a new one; strict throws).
 */
export async function* readRecords(
  source: string | Readable,
  overrides: LogConfigOverrides = {},
  opts: { onSession?: (s: ClosedSession) => void; issues?: IssueLog; name?: string } & InputOptions = {},
): AsyncGenerator<LogRecord> {
  const config = resolveLogConfig(overrides);
  const issues = opts.issues ?? new IssueLog(config.strict, config.reportFirst);
  const proc = new LogProcessor(config, { onSession: opts.onSession, issues, keyPatternGiven: overrides.session?.keyPattern !== undefined });
  const input = await openLogInput(source, config, issues, opts.name, opts);
  const buf: LogRecord[] = [];
  for await (const batch of input.batches) {
    proc.processBatch(batch, input.name, input.format, (r) => buf.push(r));
    yield* buf;
    buf.length = 0;
  }
  proc.finish();
}
