/**
 * Lines parsed, keyed and masked in one thread and scored in another (ModelScorer.scoreParsed): the encoding
 * `deepsentry score`'s reader thread sends to its scoring thread (lib/pipeline/score_reader.ts), and the live
 * monitor's main thread sends to its scorer worker along with the lines (lib/live/worker.ts). Per line, what
 * ModelScorer.scoreLine computes from its text before it touches a session, with the same functions and the
 * same policy: parseLogLine (blank lines skipped, the latest timestamp so far for out-of-order lines), the
 * live session keyer, the model's masking. Session keys and masked texts cross once, then as indices.
 */
import { DeepSentryError } from '../errors';
import type { LogConfig } from '../logs/config';
import type { LogFormat } from '../logs/formats';
import type { IssueLog } from '../logs/issues';
import { isBlank } from '../logs/lines';
import { Masker } from '../logs/masking';
import { parseLogLine, type ParseStats } from '../logs/pipeline';
import type { SessionKeyer } from '../logs/sessions';
import { liveSessionKeyer } from './session_scorer';

/** A chunk of lines read, parsed, keyed and masked in another thread, for ModelScorer.scoreParsed. */
export interface ParsedLines {
  n: number;
  /** physical line numbers (an event's seq and lineNo when the scorer is not given the lines themselves) */
  lineNos: Float64Array;
  /** 1: parsed and scored; 0: blank, not parsed, a bad timestamp, or skipped out of order */
  parsed: Uint8Array;
  /** timestamps (NaN: none) */
  ts: Float64Array;
  /** session keys per line, and all the lines' keys in order as indices into the keys of this and the earlier chunks */
  keyCounts: Int32Array;
  keys: Int32Array;
  /** keys first met in this chunk (after a reset: in this chunk or since), in order */
  newKeys: string[];
  /** the keys of the earlier chunks are forgotten before this chunk's (the sender's table was full) */
  keysReset: boolean;
  /**
   * each line's masked message as an index into the texts of this and the earlier chunks (-1: none: no key, or
   * left to the scorer, see spans)
   */
  masked: Int32Array;
  /**
   * where each line's message lies in its text, [start, end) per line, for the lines whose masking is left to the
   * scorer (masked −1, keys): it masks text.slice(start, end) itself (null: every line with a key is masked here)
   */
  spans: Int32Array | null;
  /** masked texts first met in this chunk (after a reset: in this chunk or since), in order */
  texts: string[];
  /** the masked texts of the earlier chunks are forgotten before this chunk's (the sender's table was full) */
  textsReset: boolean;
  /** each line's time window's end (sessions by time), else null */
  deadlines: Float64Array | null;
  /** each line's message as parsed (withMessages), else null */
  messages: string[] | null;
  /** what parsing this chunk's lines added to the parse counters (the scorer counts them as its own) */
  parseStats: ParseStats;
}

/** Options of a ParsedEncoder. */
export interface EncoderOptions {
  /** the compiled format (default: the configuration's, with its configured year or 1970 for yearless timestamps) */
  format: LogFormat;
  /** the input's name in issues, and where they go (null: only counted) */
  name: string;
  issues: IssueLog | null;
  /** send each line's message as parsed */
  withMessages: boolean;
  /** at most this many session keys, and masked texts, remembered on both sides (default 100,000 each) */
  keysMax?: number;
  /**
   * Leave the masking of about this share of the lines to the scorer (0 … 1, default 0; changed as it goes by
   * setting `leaveMasking`): it gets where the message lies in the line's text (ParsedLines.spans) and masks it
   * itself, with the same masker. Which thread masks a line changes no result; it balances the two threads.
   */
  leaveMasking?: number;
}

/**
 * An empty array of strings whose elements are of any kind from the start: `[]` starts as an array of small
 * integers, and the first string pushed onto a chunk's new keys or texts (after the encoder was optimised, few
 * chunks push any) threw the encoder's optimised code away.
 */
function strings(): string[] {
  const a = [''];
  a.length = 0;
  return a;
}

/**
 * Session keys and masked texts cross once (then as indices): at most this many of each are remembered on both
 * sides, then both forget them and start over (they are met again in later chunks).
 */
const KEYS_MAX = 100_000;

/**
 * Encodes lines into ParsedLines chunks, in input order: it holds what spans chunks (the latest timestamp, the
 * keys and texts already sent, the parse counters), so one encoder feeds one scorer.
 */
export class ParsedEncoder {
  /** the latest timestamp parsed so far (the scorer's event-time clock; a restored scorer's is set here too) */
  lastTs: number | null = null;
  /** parse counters of every line encoded so far */
  readonly parseStats: ParseStats = { candidates: 0, unparsed: 0, badTimestamp: 0, outOfOrder: 0 };
  private readonly keyer: SessionKeyer;
  private readonly byTime: boolean;
  private readonly masker: Masker;
  private readonly skipOutOfOrder: boolean;
  private readonly textIds = new Map<string, number>();
  private readonly keyIds = new Map<string, number>();
  private readonly keysMax: number;
  /** see EncoderOptions.leaveMasking; `credit` spreads the lines left evenly (each line adds the share, one left costs 1) */
  leaveMasking: number;
  private credit = 0;
  /** a chunk is being encoded (begin … end) */
  private open = false;

  constructor(
    config: LogConfig,
    private readonly o: EncoderOptions,
  ) {
    this.keyer = liveSessionKeyer(config, true);
    this.byTime = this.keyer.mode === 'time';
    // the model's masker (ScoringModel builds it from the same two settings)
    this.masker = new Masker(config.masking.rules, config.masking.collapseRepeats);
    this.skipOutOfOrder = config.outOfOrder === 'skip';
    this.keysMax = o.keysMax ?? KEYS_MAX;
    this.leaveMasking = o.leaveMasking ?? 0;
  }

  /** Lines texts[from, from + n), numbered lineNos[from, from + n), as one chunk. */
  encode(texts: readonly string[], lineNos: ArrayLike<number>, from: number, n: number): ParsedLines {
    const c = this.begin(n);
    for (let i = 0; i < n; i++) this.line(c, texts[from + i]!, lineNos[from + i]!);
    return this.end(c);
  }

  /**
   * The lines of one chunk a slice at a time (the live monitor's main thread yields to its event loop between
   * slices): begin(n), then addLines until all n lines are in, then end. The same chunk as encode gives; the
   * encoder takes no other lines meanwhile (they would come before these in its clock and tables).
   */
  begin(n: number): ChunkInProgress {
    if (this.open) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'ParsedEncoder: a chunk is already being encoded (end it first)');
    this.open = true;
    const keysReset = this.keyIds.size > this.keysMax;
    if (keysReset) this.keyIds.clear();
    const textsReset = this.textIds.size > this.keysMax;
    if (textsReset) this.textIds.clear();
    const before = { ...this.parseStats };
    const c: ParsedLines = {
      n,
      lineNos: new Float64Array(n),
      parsed: new Uint8Array(n),
      ts: new Float64Array(n).fill(NaN),
      keyCounts: new Int32Array(n),
      keys: new Int32Array(0),
      newKeys: strings(),
      keysReset,
      masked: new Int32Array(n).fill(-1),
      spans: this.leaveMasking > 0 ? new Int32Array(2 * n) : null,
      texts: strings(),
      textsReset,
      deadlines: this.byTime ? new Float64Array(n) : null,
      messages: this.o.withMessages ? new Array<string>(n).fill('') : null,
      parseStats: before,
    };
    return { chunk: c, at: 0, keyIdx: [] };
  }

  /** The next lines of a chunk begun with begin(): `lines[from, from + count)`. */
  addLines(p: ChunkInProgress, lines: readonly { text: string; lineNo: number }[], from: number, count: number): void {
    if (p.at + count > p.chunk.n) throw new DeepSentryError('DS_INVALID_ARGUMENT', `ParsedEncoder: ${p.at + count} lines given to a chunk of ${p.chunk.n}`);
    for (let i = 0; i < count; i++) {
      const l = lines[from + i]!;
      this.line(p, l.text, l.lineNo);
    }
  }

  /** The chunk begun with begin(), all its lines in. */
  end(p: ChunkInProgress): ParsedLines {
    const c = p.chunk;
    if (p.at !== c.n) throw new DeepSentryError('DS_INVALID_ARGUMENT', `ParsedEncoder: a chunk of ${c.n} lines ended after ${p.at}`);
    this.open = false;
    c.keys = Int32Array.from(p.keyIdx);
    const st = this.parseStats;
    const before = c.parseStats;
    c.parseStats = { candidates: st.candidates - before.candidates, unparsed: st.unparsed - before.unparsed, badTimestamp: st.badTimestamp - before.badTimestamp, outOfOrder: st.outOfOrder - before.outOfOrder };
    return c;
  }

  /** Gives up a chunk begun with begin() (its lines will not be scored): the encoder takes another. */
  abandon(): void {
    this.open = false;
  }

  /** One line, the next of the chunk in progress. */
  private line(p: ChunkInProgress, text: string, lineNo: number): void {
    const c = p.chunk;
    const i = p.at++;
    c.lineNos[i] = lineNo;
    // SessionScorer.parseLine: blank lines skipped, the latest timestamp so far for out-of-order lines
    if (isBlank(text)) return;
    const parsed = parseLogLine(this.o.format, text, this.o.name, lineNo, this.lastTs ?? -Infinity, this.skipOutOfOrder, this.o.issues, this.parseStats);
    if (parsed === null) return;
    const ts = parsed.timestamp;
    c.parsed[i] = 1;
    if (ts !== null) {
      c.ts[i] = ts;
      if (this.lastTs === null || ts >= this.lastTs) this.lastTs = ts;
    }
    const keyer = this.keyer;
    const keys = keyer.keys(parsed, ts);
    c.keyCounts[i] = keys.length;
    const keyIds = this.keyIds;
    for (const k of keys) {
      let id = keyIds.get(k);
      if (id === undefined) {
        id = keyIds.size;
        keyIds.set(k, id);
        c.newKeys.push(k);
      }
      p.keyIdx.push(id);
    }
    if (c.deadlines) c.deadlines[i] = keyer.windowEnd;
    if (c.messages) c.messages[i] = parsed.message;
    if (keys.length === 0) return;
    if (c.spans !== null && (this.credit += this.leaveMasking) >= 1) {
      // The message is (nearly always) a piece of the line: the scorer slices and masks it. One that is not
      // (a JSON string with escapes) is masked here.
      const at = text.indexOf(parsed.message);
      if (at >= 0) {
        this.credit -= 1;
        c.spans[2 * i] = at;
        c.spans[2 * i + 1] = at + parsed.message.length;
        return;
      }
    }
    const masked = this.masker.maskText(parsed.message);
    const textIds = this.textIds;
    let id = textIds.get(masked);
    if (id === undefined) {
      id = textIds.size;
      textIds.set(masked, id);
      c.texts.push(masked);
    }
    c.masked[i] = id;
  }
}

/** A chunk being encoded a slice at a time (ParsedEncoder.begin). */
export interface ChunkInProgress {
  readonly chunk: ParsedLines;
  /** lines in so far */
  at: number;
  /** the session keys of the lines in so far, as indices */
  readonly keyIdx: number[];
}

/** The memory of a chunk that moves to the other thread instead of being copied. */
export function parsedTransfer(c: ParsedLines): ArrayBuffer[] {
  const t = [c.lineNos.buffer, c.parsed.buffer, c.ts.buffer, c.keyCounts.buffer, c.keys.buffer, c.masked.buffer] as ArrayBuffer[];
  if (c.deadlines) t.push(c.deadlines.buffer as ArrayBuffer);
  if (c.spans) t.push(c.spans.buffer as ArrayBuffer);
  return t;
}
