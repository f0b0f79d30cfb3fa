/**
 * NoveltyScorer: a simple, real LineScorer that needs no trained model. It is built from lib/logs' own pieces
 * (format detection and parsing, masking, session keys, the Sessionizer with its idle timeout and bound on
 * open sessions) and scores each line by how surprising its masked message is after the previous message of
 * the same session, given every transition seen so far in the stream:
 *
 *     score = -log2((count(prev → msg) + 1) / (count(prev → ·) + 2))        (bits; prev = <start> at first)
 *
 * and a session's end the same way with msg = <end>. A never-seen transition after a common message scores
 * high; a routine one scores near 0. It learns online, in input order, so it is deterministic and does not
 * depend on how lines are cut into batches. `expected` is the most frequent successor of `prev` so far.
 *
 * It is what the live tests and the benchmark drive the monitor with until the trained model's engine (the
 * BiLSTM detector) is plugged in through the same interface; it is not a stand-in for that model's quality.
 *
 * Its sessions, their clock and their half of the snapshot are SessionScorer's (lib/live/session_scorer.ts),
 * shared with the trained model's scorer so that both end sessions and restart alike.
 */
import { DeepSentryError, invalidParameterError } from '../errors';
import { resolveLogConfig, type LogConfig, type LogConfigOverrides } from '../logs/config';
import { createFormat, detectFormat, parseFormatArg, type FormatSpec, type LogFormat } from '../logs/formats';
import { Masker } from '../logs/masking';
import { resolveSessionMode, SessionKeyer } from '../logs/sessions';
import { SessionScorer, type OpenSession, type SessionsSnapshot } from './session_scorer';
import type { EndReason, LineScorer, RawLine, ScoredEvent, ScorerOptions } from './types';

/**
 * An event whose window is a view of its session's line array (up to `end`, at most `size` lines), copied
 * only when read: most events are never alerted on, and copying every window dominated the scorer's cost.
 */
class NoveltyEvent implements ScoredEvent {
  readonly endReason?: EndReason;
  readonly expected?: string;
  constructor(
    readonly seq: number,
    readonly lineNo: number,
    readonly offset: number,
    readonly session: string,
    readonly score: number,
    readonly isSessionEnd: boolean,
    endReason: EndReason | undefined,
    private readonly lines: string[],
    private readonly end: number,
    private readonly size: number,
    expected: string | undefined,
  ) {
    if (endReason !== undefined) this.endReason = endReason;
    if (expected !== undefined) this.expected = expected;
  }
  get window(): string[] {
    return this.lines.slice(Math.max(0, this.end - this.size), this.end);
  }
}

/** Options of the NoveltyScorer. */
export interface NoveltyScorerOptions extends ScorerOptions {
  /** lib/logs configuration (format, masking, sessions); `session.idleTimeoutMs`/`maxOpen` are overridden by the ScorerOptions when given. */
  logs?: LogConfigOverrides;
  /** Year for yearless timestamps (default 1970: the same on every run, unlike the file's mtime). */
  year?: number;
}

interface SessionState extends OpenSession {
  /** Previous masked message (START at the beginning). */
  prev: string;
}

const START = '\u0002start';
const END = '\u0003end';
const SEP = '\u0000';

/** The JSON state of a NoveltyScorer. */
interface NoveltySnapshot extends SessionsSnapshot<SessionState> {
  kind: 'novelty';
  format: FormatSpec | null;
  /** Lines held back until there are enough to detect the format. */
  pending: RawLine[];
  transitions: [string, number][];
  best: [string, { next: string; count: number }][];
}

export class NoveltyScorer extends SessionScorer<SessionState> implements LineScorer {
  readonly name = 'novelty';
  readonly savedThreshold: number | undefined = undefined;
  private readonly config: LogConfig;
  private readonly year: number;
  private readonly keyPatternGiven: boolean;
  private format: LogFormat | null = null;
  private formatSpec: FormatSpec | null = null;
  private masker: Masker;
  private keyer: SessionKeyer | null = null;
  private pending: RawLine[] = [];
  /** count(prev → next), and count(prev → ·) under key `prev + SEP`. */
  private transitions = new Map<string, number>();
  /** Most frequent successor of each message so far. */
  private best = new Map<string, { next: string; count: number }>();
  private out: ScoredEvent[] = [];

  constructor(opts: NoveltyScorerOptions = {}) {
    const logs = { ...(opts.logs ?? {}) } as LogConfigOverrides;
    const session = { ...(logs.session ?? {}) };
    if (opts.idleTimeoutMs !== undefined) session.idleTimeoutMs = opts.idleTimeoutMs;
    else if (session.idleTimeoutMs === undefined) session.idleTimeoutMs = 30_000;
    if (opts.maxOpenSessions !== undefined) session.maxOpen = opts.maxOpenSessions;
    logs.session = session;
    const config = resolveLogConfig(logs);
    const w = opts.windowLines ?? config.window.size;
    if (!Number.isInteger(w) || w < 1) throw invalidParameterError('windowLines', 'a positive integer', w);
    super(w, config.session.idleTimeoutMs, config.session.maxOpen, { skipOutOfOrder: config.outOfOrder === 'skip' });
    this.config = config;
    this.keyPatternGiven = opts.logs?.session?.keyPattern !== undefined;
    this.year = opts.year ?? this.config.year ?? 1970;
    this.masker = new Masker(this.config.masking.rules, this.config.masking.collapseRepeats);
    if (this.config.format !== 'auto') this.setFormat(this.config.format);
  }

  private setFormat(spec: FormatSpec | string): void {
    const fopts = { year: this.year, utcOffsetMinutes: this.config.utcOffsetMinutes };
    this.format = createFormat(spec, fopts);
    this.formatSpec = typeof spec === 'string' ? parseFormatArg(spec) : spec;
    const mode = resolveSessionMode(this.config.session, this.format, this.keyPatternGiven);
    if (mode === 'count') {
      throw new DeepSentryError('DS_UNSUPPORTED', `the live NoveltyScorer needs sessions by key, field or time; format '${this.format.name}' has neither a session key nor timestamps (set logs.session.keyPattern or mode)`);
    }
    this.keyer = new SessionKeyer(mode, this.config.session);
  }

  async scoreLines(lines: RawLine[]): Promise<ScoredEvent[]> {
    if (this.format === null) {
      for (const l of lines) this.pending.push(l);
      if (this.pending.filter((l) => l.text.trim() !== '').length < this.config.detectLines) return this.drain();
      this.detect();
      lines = this.pending;
      this.pending = [];
    }
    this.addLines(lines);
    return this.drain();
  }

  private detect(): void {
    const sample = this.pending.map((l) => l.text).filter((t) => t.trim() !== '').slice(0, this.config.detectLines);
    const d = detectFormat(sample, { year: this.year, utcOffsetMinutes: this.config.utcOffsetMinutes }, 'the live input');
    this.setFormat(d.spec);
  }

  private drain(): ScoredEvent[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  protected scoreLine(l: RawLine): void {
    const p = this.parseLine(this.format!, l);
    if (p === null) return;
    const ts = p.timestamp;
    const masked = this.masker.maskText(p.message);
    const keys = this.keyer!.keys(p, ts);
    if (keys.length === 0) {
      // No session: scored on its own, after START, and not remembered as anyone's previous message.
      const expected = this.expect(START);
      this.out.push(new NoveltyEvent(l.seq, l.lineNo, l.offset, '-', this.learn(START, masked), false, undefined, [l.text], 1, 1, expected));
      return;
    }
    for (const key of keys) {
      const s = this.session(key, () => ({ prev: START, lines: [], seq: 0, lineNo: 0, offset: 0, clock: null }));
      // Scored and learned before addLine: an eviction it causes learns that session's END after this line.
      const expected = this.expect(s.prev);
      const score = this.learn(s.prev, masked);
      s.prev = masked;
      this.addLine(key, s, l, ts, this.keyer!.mode === 'time' ? this.keyer!.windowEnd : undefined); // may evict the least recently active session: its end event comes first
      this.out.push(new NoveltyEvent(l.seq, l.lineNo, l.offset, key, score, false, undefined, s.lines, s.lines.length, this.windowLines, expected));
    }
  }

  /** Surprisal of prev → next in bits, then counts the transition. */
  private learn(prev: string, next: string): number {
    const kTotal = prev + SEP;
    const kPair = prev + SEP + next;
    const total = this.transitions.get(kTotal) ?? 0;
    const pair = this.transitions.get(kPair) ?? 0;
    const score = -Math.log2((pair + 1) / (total + 2));
    this.transitions.set(kTotal, total + 1);
    this.transitions.set(kPair, pair + 1);
    const b = this.best.get(prev);
    if (b === undefined || pair + 1 > b.count) this.best.set(prev, { next, count: pair + 1 });
    return score;
  }

  private expect(prev: string): string | undefined {
    const b = this.best.get(prev);
    if (b === undefined) return undefined;
    return b.next === END ? '(end of session)' : b.next;
  }

  /** A session ended (idle, evicted, end of input, time window): scored as its transition to END. */
  protected ended(key: string, s: SessionState, endReason: EndReason): void {
    const expected = this.expect(s.prev);
    const score = this.learn(s.prev, END);
    this.out.push(new NoveltyEvent(s.seq, s.lineNo, s.offset, key, score, true, endReason, s.lines, s.lines.length, this.windowLines, expected));
  }

  async tick(nowMs: number): Promise<ScoredEvent[]> {
    if (this.format !== null) this.advanceIdle(nowMs); // no sessions before the format is known
    return this.drain();
  }

  async flush(): Promise<ScoredEvent[]> {
    if (this.format === null && this.pending.length > 0) {
      this.detect();
      const p = this.pending;
      this.pending = [];
      for (const l of p) this.scoreLine(l);
    }
    this.endAll();
    return this.drain();
  }

  async snapshot(): Promise<NoveltySnapshot> {
    return {
      kind: 'novelty',
      format: this.formatSpec,
      pending: this.pending,
      transitions: [...this.transitions],
      best: [...this.best],
      ...this.snapshotSessions(),
    };
  }

  async restore(state: unknown): Promise<void> {
    const s = state as NoveltySnapshot;
    if (typeof s !== 'object' || s === null || s.kind !== 'novelty' || !Array.isArray(s.transitions) || !Array.isArray(s.sessions)) {
      throw new DeepSentryError('DS_CONFIG', 'the checkpointed scorer state is not a NoveltyScorer state');
    }
    this.pending = s.pending ?? [];
    if (s.format) this.setFormat(s.format);
    this.transitions = new Map(s.transitions);
    this.best = new Map(s.best ?? []);
    this.restoreSessions(s);
  }

  async close(): Promise<void> {
    this.sessions.clear();
    this.transitions.clear();
  }
}

/** Factory in the ScorerFactory shape (the model directory is not used: this scorer learns online). */
export async function createNoveltyScorer(_modelDir: string, options: NoveltyScorerOptions): Promise<NoveltyScorer> {
  return new NoveltyScorer(options);
}
