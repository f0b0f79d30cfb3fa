/**
 * The trained model's scorer: behind the live monitor's `LineScorer` seam (lib/live/types.ts), and the one
 * engine of `deepsentry score` (lib/pipeline/score.ts) and the in-process API (lib/pipeline/session.ts), which
 * set censorEnds so that ends are scored as batch scoring always scored them. It parses with the
 * model's own log configuration, keeps the open sessions in a Sessionizer (idle timeout, bound on open
 * sessions), and scores each line as it arrives by the window of the session's last W−1 messages and the line's
 * own message — all the windows of one `scoreLines` call in one batched detector call. A session's end (idle
 * timeout, eviction, end of input, time window) is scored as the end event after its last messages.
 *
 * Count relations (model.countModel) are judged per key once it has been quiet for the count horizon
 * (lib/models/counts.ts countHorizon): a session's end event then carries only its window's score, its counts
 * carry into the key's next session if one starts within the horizon, and when the horizon passes (or the input
 * ends) a `counts` end event judges them all — emitted only when a relation is broken. Without a horizon each
 * session's end event carries its own counts' surprise.
 *
 * Its sessions, their clock (event time; wall time once the stream is quiet) and their half of the snapshot are
 * SessionScorer's (session_scorer.ts), shared with NoveltyScorer so that both end sessions and
 * restart alike. Events compute their window and `expected` (the known message nearest the detector's prediction: one more
 * prediction) only when read, which the monitor does only for the events it alerts on.
 */
import { DeepSentryError } from '../errors';
import { configuredFormat, type LogFormat } from '../logs/formats';
import type { IssueLog } from '../logs/issues';
import { sessionEnded, type ClosedSession, type SessionKeyer } from '../logs/sessions';
import { END_MESSAGE, PAD_MESSAGE } from '../models/detector';
import { countHorizon } from '../models/counts';
import { lineageOf } from '../models/lineage';
import type { ScoringModel } from '../models/scoring';
import type { FeedbackSummary } from '../pipeline/feedback';
import { RECENT_DEFAULTS, RecentSessions } from './recent_sessions';
import { liveSessionKeyer, SessionScorer, type OpenSession, type SessionsSnapshot } from './session_scorer';
import { WindowTable } from './window_table';
import type { ParsedLines } from './parsed_lines';
import type { EndReason, EventContext, FeedbackRequest, LineScorer, RawLine, ScoredEvent, ScorerOptions } from './types';
import type { LogConfig } from '../logs/config';

/**
 * A model that learns feedback: `learnRecent` learns `req.sessions` (held by `recent`) as normal on a copy of
 * itself and returns the copy, saved as a new version where it has a directory (DeepSentry, lib/pipeline/model.ts,
 * with lib/pipeline/feedback.ts learnRecent). The scorer holds a ScoringModel; this is how it asks for more.
 */
export interface LearningModel extends ScoringModel {
  learnRecent(recent: RecentSessions, req: FeedbackRequest): Promise<{ model: ScoringModel; summary: FeedbackSummary }>;
}

function canLearn(m: ScoringModel): m is LearningModel {
  return typeof (m as Partial<LearningModel>).learnRecent === 'function';
}

/** Options of the model scorer. */
export interface ModelScorerOptions extends ScorerOptions {
  /**
   * Score only the sessions whose key passes (in-process only: a function does not cross to a worker
   * thread). A partitioned worker (lib/scale) scores the keys of its partition: a line naming sessions of
   * several partitions reaches each of them, and each scores its own.
   */
  ownsKey?: (key: string) => boolean;
  /**
   * Score session ends as batch scoring does (`deepsentry score`, lib/logs' sessionEnded): no end event for an
   * evicted session, nor, at the end of input (`flush`), for one that has timestamps when sessions have an idle
   * timeout (censored: the input stopped before the timeout said it was over). Such a session still closes
   * with an end event, of score -Infinity (no score: it never exceeds a threshold nor raises a max), so the
   * caller knows it closed. Default false: the live monitor scores every end. The in-process API
   * (lib/pipeline/session.ts) and `deepsentry score` (lib/pipeline/score.ts) set it.
   */
  censorEnds?: boolean;
  /**
   * Keep the sessions scored recently (every open one and this many ended ones, lib/live/recent_sessions.ts)
   * so that `feedback` can learn some of them as normal (the model must be a LearningModel). Default 0: none kept, no feedback.
   */
  feedbackSessions?: number;
  /**
   * Accept a model whose sessions are count windows. Only for one input read once from its start (`deepsentry
   * score`, the in-process API): a checkpoint does not hold the window count, so the live monitor refuses them.
   */
  countWindows?: boolean;
  /**
   * The compiled format to parse with, in this thread only (default: the model's, with its configured year or
   * 1970 for yearless timestamps). `deepsentry score` passes the one lib/logs opened the input with (the
   * file's year).
   */
  format?: LogFormat;
  /** Report lines not parsed, with bad timestamps or out of order here, with this input name (this thread only). */
  issues?: IssueLog;
  source?: string;
  /** Line events carry the line's message as parsed (`message`; in this thread only: lines.csv's text column). */
  withMessages?: boolean;
  /**
   * Receives the lines per masked message of a key's sessions counted together, as they are judged (at the
   * count horizon or at their end; in this thread only), whether or not the model has count relations: a key's
   * chains add up to all its lines except those of sessions evicted or censored (`deepsentry score` checks
   * them against the compositions known normal, lib/models/known_normal.ts).
   */
  onJudged?: (key: string, counts: Readonly<Record<string, number>>) => void;
  /**
   * Masked messages to set aside: a line (of a session this scorer scores) whose masked message is one of them
   * is counted as parsed and otherwise left out, as if it were not in the log: it joins no session, moves no
   * session's clock (it still moves the out-of-order reference, as parsing in another thread sees it: see
   * ParsedLines), enters no window, count or judgement, and its message is not added to the model's table.
   * `deepsentry score --set-aside-new` sets aside the messages a large share of the sessions hold that the
   * model never saw (lib/pipeline/score.ts); `deepsentry live --set-aside` carries them into the monitor.
   */
  setAside?: readonly string[];
  /**
   * A set-aside line comes out as a line event per session key it names, with `setAside` true and no score
   * (-Infinity, `unscored`): lines.csv keeps a row for it (in this thread only). Default false: no event.
   */
  setAsideEvents?: boolean;
}

export { liveSessionKeyer } from './session_scorer';

interface OpenState extends OpenSession {
  /** masked messages of the session's last W−1 lines (texts, not ids: ids of new messages depend on arrival order) */
  history: string[];
  /** lines per masked message, for the count relations judged at the session's end (model.countModel) */
  counts?: Record<string, number>;
  /** the model ids of `history` (not in a snapshot: rebuilt from the texts after a restore) */
  ids?: number[];
}

/**
 * A key whose sessions ended, counted together until it has been quiet for the count horizon: their lines per
 * masked message, and the last session's END window (its last W−1 messages), raw lines and last line.
 */
interface CountTally {
  counts: Record<string, number>;
  history: string[];
  lines: string[];
  seq: number;
  lineNo: number;
  offset: number;
  /** the session clock at the last line: judged once the clock reaches clock + horizon */
  clock: number;
}

/**
 * A session's state before its first line. Every field it will have is there from the start (counts too), in
 * one order, also in judgeCounts' state of a key: the states window() reads then have one shape, and its
 * optimised code is not thrown away when a session gets its counts.
 */
const newOpenState = (): OpenState => ({ history: [], ids: [], lines: [], seq: 0, lineNo: 0, offset: 0, clock: null, counts: undefined });

/** The JSON state of a ModelScorer (see snapshot). */
interface ModelScorerSnapshot extends SessionsSnapshot<OpenState> {
  kind: 'model';
  modelHash: string;
  /** keys waiting for their count judgement, oldest first (absent in checkpoints written before there were any) */
  tallies?: [string, CountTally][];
}

export type { ParsedLines } from './parsed_lines';

const NO_KEYS: readonly string[] = [];
/** the raw lines of a set-aside line's event: none (it is in no session) */
const NO_LINES: string[] = [];

/**
 * An event whose context is computed only when read: `window` copies the session's last lines, `expected`
 * runs a detector prediction (ModelScorer.context does it for all the alerted events of a call at once). The
 * monitor (and the worker thread's side of WorkerScorer) read them only for the events they alert on.
 */
export class ModelEvent implements ScoredEvent {
  score = 0;
  /** why the session ended (end events only) */
  declare readonly endReason?: EndReason;
  /*
   * The fields below are set on end events (own fields of every end event, set in the constructor: one shape for
   * all of them) and on few line events (messages, explained or alerted events); a line event reads them from
   * the prototype (their defaults are assigned after the class). There is a line event per line and per
   * session it names, the scorer's largest allocation: seven fields fewer in each.
   */
  /** added to the window's score: an end event's weighted count surprise (the window cache holds scores without it) */
  declare extra: number;
  /** the window's ids as a string (windowKey, set when predictExpected first needs it: the key of the expected-message cache) */
  declare key: string;
  /** the expected message once predicted (null: none) */
  declare predicted: string | null | undefined;
  /** an end that is not scored (ModelScorerOptions.censorEnds): score stays -Infinity */
  declare unscored: boolean;
  /** an end event's session as the Sessionizer closed it, and its lines per masked message (with count relations) */
  declare closed: ClosedSession | undefined;
  declare counts: Record<string, number> | undefined;
  /** a line event's message as parsed (ModelScorerOptions.withMessages) */
  declare message: string | undefined;
  /** a line set aside (ModelScorerOptions.setAside, with setAsideEvents): in no session, not scored */
  declare setAside: boolean;
  constructor(
    readonly seq: number,
    readonly lineNo: number,
    readonly offset: number,
    readonly session: string,
    readonly isSessionEnd: boolean,
    endReason: EndReason | undefined,
    /** the event's window is lines[end − span, end) (the array is only appended to after this) */
    private readonly lines: string[],
    private readonly end: number,
    private readonly span: number,
    /** the W ids the detector scored are windows[at, at + W) (the scorer call's buffer, never rewritten) */
    readonly windows: Int32Array,
    readonly at: number,
    private readonly owner: ModelScorer,
  ) {
    if (endReason !== undefined) {
      (this as { endReason?: EndReason }).endReason = endReason;
      this.extra = 0;
      this.predicted = undefined;
      this.unscored = false;
      this.closed = undefined;
      this.counts = undefined;
    }
  }
  /** the W ids the detector scored */
  get ids(): Int32Array {
    return this.windows.subarray(this.at, this.at + this.owner.windowSize);
  }
  get window(): string[] {
    return this.lines.slice(Math.max(0, this.end - this.span), this.end);
  }
  get expected(): string | undefined {
    if (this.predicted === undefined) this.owner.predictExpected([this]);
    return this.predicted ?? undefined;
  }
}

// The defaults of ModelEvent's fields that line events rarely set (see the class).
Object.assign(ModelEvent.prototype, { extra: 0, key: '', predicted: undefined, unscored: false, closed: undefined, counts: undefined, message: undefined, setAside: false });

/** At most this many window scores are remembered (about 100 bytes each); the cache starts over when full. */
const SCORE_CACHE_MAX = 100_000;

export class ModelScorer extends SessionScorer<OpenState> implements LineScorer {
  /** The name of every ModelScorer (its checkpoints carry it). */
  static readonly NAME = 'bilstm';
  readonly name = ModelScorer.NAME;
  readonly savedThreshold: number;
  private readonly format: LogFormat;
  private readonly keyer: SessionKeyer;
  private readonly W: number;
  /** weight of the count relations' surprise on end events (0: the model has none, or scoring.counts is 0) */
  private countWeight: number;
  /** quiet time after which a key's count relations are judged (null: each session at its end; see countHorizon) */
  private readonly countHorizon: number | null;
  private readonly onJudged: ((key: string, counts: Readonly<Record<string, number>>) => void) | undefined;
  /** lines per message are counted: for the count relations, or for onJudged */
  private tallied: boolean;
  /** keys whose sessions ended and whose count judgement waits for the horizon, in order of their last line */
  private tallies = new Map<string, CountTally>();
  /**
   * when the oldest entry of `tallies` is due (Infinity: none waits; −Infinity: `tallies` changed since, look
   * again): the clock moves at nearly every line, and most of the time the oldest waiting key is not due yet,
   * which is one comparison (see clockMoved)
   */
  private nextDue = Infinity;
  /** the sessions scored recently, for feedback (null: not kept) */
  private readonly recent: RecentSessions | null;
  /** a model that learnt feedback, waiting for swapModel */
  private pending: ScoringModel | null = null;
  /** events of the current call, in order */
  private out: ModelEvent[] = [];
  /** scores of windows already scored (see finish) */
  private readonly scoreCache: WindowTable;
  /** the distinct windows of a call not scored before, in order: row k of its detector call is entry k */
  private readonly fresh: WindowTable;
  /** expected messages of windows already predicted, by windowKey (null: none) */
  private readonly expectedCache = new Map<string, string | null>();
  /** events of the last call (what `context` indices refer to) */
  private last: ModelEvent[] = [];
  /** the windows of the events of the current call, W ids each (see window) */
  private windows: Int32Array;
  private used = 0;
  /** the W ids of a window while its cache key is made */
  private readonly keyScratch: number[];

  /** the masked texts and session keys scoreParsed has been given so far (ParsedLines.masked and .keys index them) */
  private readonly parsedTexts: string[] = [];
  private readonly parsedKeys: string[] = [];

  private readonly ownsKey: ((key: string) => boolean) | undefined;
  /** see ModelScorerOptions.censorEnds */
  private readonly censorEnds: boolean;
  private readonly withMessages: boolean;
  /** see ModelScorerOptions.setAside (null: none) and setAsideEvents */
  private readonly setAside: ReadonlySet<string> | null;
  private readonly setAsideEvents: boolean;
  /** see parsedInputConfig */
  private readonly encodable: boolean;

  constructor(
    /** the model scoring now (swapModel replaces it) */
    public model: ScoringModel,
    opts: ModelScorerOptions = {},
  ) {
    const c = model.logConfig;
    const format = opts.format ?? configuredFormat(c);
    const keyer = liveSessionKeyer(c, opts.countWindows === true);
    const W = model.detector.config.window;
    const idle = opts.idleTimeoutMs === undefined ? (c.session.idleTimeoutMs ?? 30_000) : opts.idleTimeoutMs;
    super(opts.windowLines ?? W, idle, opts.maxOpenSessions ?? c.session.maxOpen, {
      skipOutOfOrder: c.outOfOrder === 'skip',
      maxLines: keyer.mode === 'count' ? c.session.windowLines : null,
      ...(opts.issues ? { issues: opts.issues } : {}),
      ...(opts.source !== undefined ? { source: opts.source } : {}),
    });
    this.savedThreshold = model.threshold;
    this.format = format;
    this.keyer = keyer;
    this.W = W;
    this.ownsKey = opts.ownsKey;
    this.censorEnds = opts.censorEnds === true;
    this.withMessages = opts.withMessages === true;
    for (const m of opts.setAside ?? []) {
      // an empty text is set aside by nothing: a silent no-op is what the caller did not mean
      if (typeof m !== 'string' || m.trim() === '') throw new DeepSentryError('DS_INVALID_ARGUMENT', `setAside: expected masked messages (non-empty text, as deepsentry score names them) but received ${JSON.stringify(m)}`);
    }
    this.setAside = opts.setAside !== undefined && opts.setAside.length > 0 ? new Set(opts.setAside) : null;
    this.setAsideEvents = opts.setAsideEvents === true;
    this.encodable = opts.format === undefined && opts.issues === undefined && opts.ownsKey === undefined && !this.withMessages && keyer.mode !== 'count';
    this.countWeight = model.countModel ? model.config.scoring.counts : 0;
    this.countHorizon = countHorizon(model.config.scoring.countTimeoutMs, idle, keyer.mode);
    this.onJudged = opts.onJudged;
    this.tallied = this.countWeight > 0 || this.onJudged !== undefined;
    this.windows = new Int32Array(64 * W);
    this.keyScratch = new Array<number>(W).fill(0);
    this.scoreCache = new WindowTable(W);
    this.fresh = new WindowTable(W);
    const keep = opts.feedbackSessions ?? 0;
    this.recent = keep > 0 ? new RecentSessions({ ...RECENT_DEFAULTS, sessions: keep }) : null;
  }

  /** The detector's window (W ids). */
  get windowSize(): number {
    return this.W;
  }

  /**
   * Writes the W ids of a window — the session's last W−1 messages (padded at the start) and the target id —
   * into this call's window buffer and returns where. One buffer per call, grown by doubling (a full one is
   * left to the events that point into it), rather than a typed array per event: allocating one per line was
   * most of the garbage collector's work.
   */
  private window(s: OpenState, target: number): number {
    const W = this.W;
    if (this.used + W > this.windows.length) {
      const grown = new Int32Array(Math.max(2 * this.windows.length, 64 * W));
      grown.set(this.windows.subarray(0, this.used));
      this.windows = grown;
    }
    const at = this.used;
    this.used += W;
    const ids = (s.ids ??= s.history.map((m) => this.model.messageId(m)));
    const w = this.windows;
    const n = Math.min(ids.length, W - 1);
    const o = ids.length - n;
    for (let i = 0; i < W - 1 - n; i++) w[at + i] = PAD_MESSAGE;
    for (let i = 0; i < n; i++) w[at + W - 1 - n + i] = ids[o + i];
    w[at + W - 1] = target;
    return at;
  }

  /**
   * The expected-message cache key of the window at `at`: its ids as UTF-16 code units while every id fits in one (W
   * characters), else `#` and the ids joined with commas (at least 2W − 1 + 1 characters: never equal to a key
   * of the short form).
   */
  private windowKey(w: Int32Array, at: number): string {
    const W = this.W;
    if (this.model.tableSize <= 0xffff) {
      const k = this.keyScratch;
      for (let i = 0; i < W; i++) k[i] = w[at + i];
      return String.fromCharCode.apply(null, k);
    }
    return '#' + Array.prototype.join.call(w.subarray(at, at + W), ',');
  }

  async scoreLines(lines: RawLine[]): Promise<ScoredEvent[]> {
    this.addLines(lines);
    return this.finish();
  }

  protected scoreLine(l: RawLine): void {
    // counted as parsed in scoreKeys (a line set aside moves no session clock)
    const p = this.parseText(this.format, l);
    if (p === null) return;
    const ts = p.timestamp;
    const keys = this.keyer.keys(p, ts);
    this.scoreKeys(l, ts, keys, p.message, null, this.keyer.mode === 'time' ? this.keyer.windowEnd : undefined);
  }

  /**
   * The log configuration another thread parses, keys and masks lines with for scoreParsed (a ParsedEncoder
   * over it does what scoreLine does), or null when this scorer parses otherwise (a format, issue log or key
   * filter of its own, messages kept: options of this thread only).
   */
  get parsedInputConfig(): LogConfig | null {
    return this.encodable ? this.model.logConfig : null;
  }

  /**
   * Scores lines read, parsed, keyed and masked in another thread (a ParsedEncoder with this scorer's parse
   * policy, keyer and masking: lib/live/parsed_lines.ts), as scoreLines scores their text: `lines`, when given,
   * are the lines themselves (their seq, offset and text go into events and windows), else each line is
   * known by its number only (ParsedLines.lineNos).
   */
  async scoreParsed(c: ParsedLines, lines?: readonly RawLine[]): Promise<ScoredEvent[]> {
    this.absorbParsed(c);
    return this.scoreAbsorbed(c, lines);
  }

  /**
   * Takes in the session keys and masked texts a chunk sends for the first time (later chunks refer to them by
   * index), before the chunk is scored (scoreAbsorbed): each chunk once, in the order they were encoded.
   */
  absorbParsed(c: ParsedLines): void {
    const texts = this.parsedTexts;
    if (c.textsReset) texts.length = 0;
    for (const t of c.texts) texts.push(t);
    const keyNames = this.parsedKeys;
    if (c.keysReset) keyNames.length = 0;
    for (const k of c.newKeys) keyNames.push(k);
  }

  /** Scores a chunk taken in by absorbParsed (the chunks absorbed since then are scored after it). */
  async scoreAbsorbed(c: ParsedLines, lines?: readonly RawLine[]): Promise<ScoredEvent[]> {
    if (lines !== undefined && lines.length !== c.n) throw new DeepSentryError('DS_INVALID_ARGUMENT', `a parsed chunk of ${c.n} lines was given ${lines.length} lines`);
    const texts = this.parsedTexts;
    const keyNames = this.parsedKeys;
    const ps = this.parseStats;
    ps.candidates += c.parseStats.candidates;
    ps.unparsed += c.parseStats.unparsed;
    ps.badTimestamp += c.parseStats.badTimestamp;
    ps.outOfOrder += c.parseStats.outOfOrder;
    let k = 0;
    // One line record and one key array for the whole chunk, rewritten per line: scoreKeys keeps neither (it
    // copies what it keeps), and a record and an array per line were garbage at every line.
    const own: RawLine = { seq: 0, lineNo: 0, offset: 0, text: '' };
    const one: string[] = [''];
    for (let i = 0; i < c.n; i++) {
      if (c.parsed[i] === 0) continue;
      const t = c.ts[i];
      const ts = Number.isNaN(t) ? null : t;
      // counted as parsed in scoreKeys (a line set aside moves no session clock)
      const nk = c.keyCounts[i];
      let keys: readonly string[] = NO_KEYS;
      if (nk === 1) {
        one[0] = keyNames[c.keys[k]];
        keys = one;
      } else if (nk > 1) {
        const ks = new Array<string>(nk);
        for (let j = 0; j < nk; j++) ks[j] = keyNames[c.keys[k + j]];
        keys = ks;
      }
      k += nk;
      let l = own;
      if (lines !== undefined) l = lines[i];
      else l.seq = l.lineNo = c.lineNos[i];
      const m = c.masked[i];
      let message = c.messages ? c.messages[i] : '';
      // masking left to this scorer: the message is where the sender found it in the line's text
      if (m < 0 && nk > 0 && c.spans !== null) {
        if (lines === undefined) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'a parsed chunk that leaves masking to the scorer needs its lines');
        message = l.text.slice(c.spans[2 * i], c.spans[2 * i + 1]);
      }
      this.scoreKeys(l, ts, keys, message, m >= 0 ? texts[m] : null, c.deadlines ? c.deadlines[i] : undefined);
    }
    this.linesArrived();
    return this.finish();
  }

  /**
   * Scores a parsed line in each of its sessions `keys`: `message` is its message as parsed (masked here
   * unless `maskedText` is given), `deadline` its time window's end (sessions by time).
   */
  private scoreKeys(l: RawLine, ts: number | null, keys: readonly string[], message: string, maskedText: string | null, deadline: number | undefined): void {
    // Masked and interned only when the line belongs to a session this scorer scores: a message of no scored
    // session never enters the model's table (`deepsentry score` counts the new messages it met).
    let text: string | null = null;
    for (const key of keys) {
      if (this.ownsKey !== undefined && !this.ownsKey(key)) continue;
      text = maskedText ?? this.model.masker.maskText(message);
      break;
    }
    if (text !== null && this.setAside !== null && this.setAside.has(text)) {
      this.lineSetAside(ts);
      if (this.setAsideEvents) this.setAsideLine(l, keys, message);
      return;
    }
    this.lineParsed(ts);
    if (text === null) return;
    const id = this.model.messageId(text);
    // the table's copy of the text: a session's history keeps one shared string per message, not one per line
    const masked = this.model.messageText(id) as string;
    for (const key of keys) {
      if (this.ownsKey !== undefined && !this.ownsKey(key)) continue;
      this.recent?.add(key, masked);
      const s = this.session(key, newOpenState);
      // A new session: the key's earlier sessions within the count horizon are counted with it.
      const tally = s.history.length === 0 && this.tallies.size > 0 ? this.tallies.get(key) : undefined;
      if (tally !== undefined) {
        this.tallies.delete(key);
        this.nextDue = -Infinity;
        s.counts = tally.counts;
      }
      const at = this.window(s, id);
      const ids = s.ids as number[];
      s.history.push(masked);
      ids.push(id);
      if (s.history.length > this.W - 1) {
        s.history.shift();
        ids.shift();
      }
      if (this.tallied) {
        const c = (s.counts ??= {});
        c[masked] = (c[masked] ?? 0) + 1;
      }
      // Events keep (s.lines, end) rather than a copy of the window per line (see OpenSession.lines).
      const before = this.out.length;
      this.addLine(key, s, l, ts, deadline);
      const e = new ModelEvent(l.seq, l.lineNo, l.offset, key, false, undefined, s.lines, s.lines.length, this.windowLines, this.windows, at, this);
      if (this.withMessages) e.message = message;
      // A count window closes as its last line is added: that line's event goes before the window's end. (An
      // eviction of another session, also in addLine, stays before this line's event.)
      const last = this.out.length > before ? this.out[this.out.length - 1] : undefined;
      if (last !== undefined && last.isSessionEnd && last.session === key) this.out.splice(this.out.length - 1, 0, e);
      else this.out.push(e);
    }
  }

  /** A line set aside (setAsideEvents): an event per session key it names, in no session and without a score. */
  private setAsideLine(l: RawLine, keys: readonly string[], message: string): void {
    for (const key of keys) {
      if (this.ownsKey !== undefined && !this.ownsKey(key)) continue;
      const e = new ModelEvent(l.seq, l.lineNo, l.offset, key, false, undefined, NO_LINES, 0, 0, this.windows, 0, this);
      e.score = -Infinity;
      e.unscored = true;
      e.setAside = true;
      if (this.withMessages) e.message = message;
      this.out.push(e);
    }
  }

  protected override endScored(c: ClosedSession): boolean {
    return !this.censorEnds || sessionEnded(c.reason, this.idleTimeoutMs, c.lastTs);
  }

  /** An evicted or censored session (censorEnds): its end event without a score (-Infinity; see finish). */
  protected override endedUnscored(key: string, s: OpenState, endReason: EndReason, c: ClosedSession): void {
    this.recent?.end(key);
    const at = this.window(s, END_MESSAGE);
    const e = new ModelEvent(s.seq, s.lineNo, s.offset, key, true, endReason, s.lines, s.lines.length, this.windowLines, this.windows, at, this);
    e.closed = c;
    e.score = -Infinity;
    e.predicted = null;
    e.unscored = true;
    this.out.push(e);
  }

  /** A session ended: its end event, the window of its last messages and END_MESSAGE. */
  protected ended(key: string, s: OpenState, endReason: EndReason, c: ClosedSession): void {
    this.recent?.end(key);
    const at = this.window(s, END_MESSAGE);
    const e = new ModelEvent(s.seq, s.lineNo, s.offset, key, true, endReason, s.lines, s.lines.length, this.windowLines, this.windows, at, this);
    e.closed = c;
    this.out.push(e);
    if (!(this.tallied && s.counts)) return;
    if (this.countHorizon !== null && s.clock !== null) {
      // Judged once the key has been quiet for the horizon (clockMoved), unless it goes on before.
      this.nextDue = -Infinity;
      this.tallies.set(key, { counts: s.counts, history: s.history.slice(), lines: s.lines.slice(Math.max(0, s.lines.length - this.windowLines)), seq: s.seq, lineNo: s.lineNo, offset: s.offset, clock: s.clock });
      if (this.tallies.size > this.maxTallies) this.judgeOldest();
      return;
    }
    this.onJudged?.(key, s.counts);
    if (!(this.countWeight > 0)) return;
    // As scoreSessions does in batch: the count relations' surprise goes on the end event.
    e.counts = s.counts;
    e.extra = this.countWeight * this.countSurprise(s.counts);
  }

  /** Lines per masked message as lines per model id, what the count relations read. */
  private countsById(counts: Record<string, number>): Map<number, number> {
    const byId = new Map<number, number>();
    for (const [m, n] of Object.entries(counts)) byId.set(this.model.messageId(m), n);
    return byId;
  }

  /** The count relations' surprise of lines per masked message (lib/models/counts.ts). */
  private countSurprise(counts: Record<string, number>): number {
    return this.model.countModel ? this.model.countModel.surprise(this.countsById(counts), this.model.config.scoring.countBreadth) : 0;
  }

  /** At most this many keys wait for their count judgement (as many as open sessions); the oldest is judged early. */
  private get maxTallies(): number {
    return Math.max(1, this.maxOpen);
  }

  private judgeOldest(): void {
    const first = this.tallies.entries().next();
    if (first.done) return;
    const [key, t] = first.value;
    this.tallies.delete(key);
    this.nextDue = -Infinity;
    this.judgeCounts(key, t);
  }

  /**
   * A key quiet for the count horizon, or the end of input: its `counts` end event when its sessions break a
   * relation — the last session's END window's score plus the weighted surprise, as batch scoring puts it on
   * that session's end (lib/models/scoring.ts scoreSessions with the chain's countIds).
   */
  private judgeCounts(key: string, t: CountTally): void {
    this.onJudged?.(key, t.counts);
    if (!(this.countWeight > 0)) return;
    const surprise = this.countSurprise(t.counts);
    if (!(surprise > 0)) return;
    const st: OpenState = { history: t.history, ids: t.history.map((m) => this.model.messageId(m)), lines: t.lines, seq: t.seq, lineNo: t.lineNo, offset: t.offset, clock: t.clock, counts: undefined };
    const at = this.window(st, END_MESSAGE);
    const e = new ModelEvent(t.seq, t.lineNo, t.offset, key, true, 'counts', t.lines, t.lines.length, this.windowLines, this.windows, at, this);
    e.closed = { id: -1, key, rows: [], messageIds: [], firstTs: null, lastTs: null, reason: 'idle' };
    e.counts = t.counts;
    e.extra = this.countWeight * surprise;
    this.out.push(e);
  }

  protected override clockMoved(now: number): void {
    // The judging in a method of its own: at nearly every line nothing is due, and code first run long after
    // the scorer's line loop was optimised (the first key due) threw that loop's optimised code away, once per
    // statement reached for the first time, when it was inlined here.
    if (now < this.nextDue) return;
    this.judgeDue(now);
  }

  /** Judges the keys quiet for the count horizon by `now`, oldest first, and notes when the next one is due. */
  private judgeDue(now: number): void {
    const H = this.countHorizon;
    this.nextDue = Infinity;
    if (H === null) return;
    // In order of their last line: the first one not due ends the search.
    for (const [key, t] of this.tallies) {
      if (t.clock + H > now) {
        this.nextDue = t.clock + H;
        return;
      }
      this.tallies.delete(key);
      this.judgeCounts(key, t);
    }
  }

  /** End of input: every key still waiting is judged on what it has (its last session had ended). */
  protected override allEnded(): void {
    const all = [...this.tallies];
    this.tallies.clear();
    this.nextDue = -Infinity;
    for (const [key, t] of all) this.judgeCounts(key, t);
  }

  /**
   * Scores the windows collected since the last call and hands the events out: each distinct window not
   * scored before goes through the detector, all of them in one batched call. A window's score depends on
   * its W ids only (the model is fixed, a message's vector never changes once computed), and on HDFS-like
   * logs most windows repeat, so most lines skip the detector (the profile was ~70% BiLSTM + scoring).
   */
  private finish(): ScoredEvent[] {
    const batch = this.out;
    this.out = [];
    // The events of this call keep pointing into the current window buffer: the next call writes a new one.
    this.windows = new Int32Array(Math.max(64 * this.W, this.used));
    this.used = 0;
    const W = this.W;
    const cache = this.scoreCache;
    const fresh = this.fresh;
    fresh.clear();
    const rows = new Int32Array(batch.length).fill(-1);
    this.last = batch;
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i];
      if (e.unscored) continue;
      const known = cache.find(e.windows, e.at);
      if (known >= 0) {
        e.score = cache.value(known);
        continue;
      }
      const r = fresh.find(e.windows, e.at);
      rows[i] = r >= 0 ? r : fresh.add(e.windows, e.at, 0);
    }
    const n = fresh.size;
    if (n > 0) {
      const all = fresh.ids.slice(0, n * W);
      const { scores } = this.model.scoreWindows(all, n, false);
      for (let i = 0; i < batch.length; i++) if (rows[i] >= 0) batch[i].score = scores[rows[i]];
      if (cache.size + n > SCORE_CACHE_MAX) cache.clear();
      for (let r = 0; r < n; r++) cache.add(all, r * W, scores[r]);
    }
    for (const e of batch) if (e.extra !== 0) e.score = Math.fround(e.score + e.extra);
    return batch;
  }

  /**
   * Window and expected message of events of the last call, by index: the windows not predicted before go
   * through one batched prediction (per event, the prediction and its setup cost ~1 ms: a third of the
   * monitor's time on hdfs-dev with an adaptive threshold alerting a few hundred times).
   */
  async context(indices: number[]): Promise<EventContext[]> {
    const events = indices.map((i) => {
      const e = this.last[i];
      if (e === undefined) throw new DeepSentryError('DS_OUT_OF_RANGE', `no event ${i} in the last scorer result (${this.last.length} events)`);
      return e;
    });
    this.predictExpected(events);
    return events.map((e) => {
      const c: EventContext = e.predicted === undefined || e.predicted === null ? { window: e.window } : { window: e.window, expected: e.predicted };
      if (e.endReason === 'counts' && e.counts) {
        // the expected message was just predicted: explainWindows only finds the relation
        const r = this.model.explainWindows([{ window: e.ids, counts: this.countsById(e.counts), expected: e.predicted ?? null }])[0]?.countRelation;
        if (r !== undefined) c.countRelation = r;
      }
      return c;
    });
  }

  /** Sets `predicted` of these events: windows not predicted before in one batched prediction. */
  predictExpected(events: ModelEvent[]): void {
    const todo = new Map<string, ModelEvent[]>();
    for (const e of events) {
      if (e.predicted !== undefined) continue;
      const key = (e.key ||= this.windowKey(e.windows, e.at));
      const known = this.expectedCache.get(key);
      if (known !== undefined) {
        e.predicted = known;
        continue;
      }
      const group = todo.get(key);
      if (group === undefined) todo.set(key, [e]);
      else group.push(e);
    }
    if (todo.size === 0) return;
    const groups = [...todo.values()];
    const all = new Int32Array(groups.length * this.W);
    groups.forEach((g, i) => all.set(g[0].ids, i * this.W));
    const expected = this.model.expectedMessages(all, groups.length);
    if (this.expectedCache.size + groups.length > SCORE_CACHE_MAX) this.expectedCache.clear();
    [...todo.keys()].forEach((key, i) => {
      const x = expected[i] ?? null;
      this.expectedCache.set(key, x);
      for (const e of groups[i]) e.predicted = x;
    });
  }

  async tick(nowMs: number): Promise<ScoredEvent[]> {
    this.advanceIdle(nowMs);
    return this.finish();
  }

  async flush(): Promise<ScoredEvent[]> {
    this.endAll();
    return this.finish();
  }

  /** The history is appended to and shifted in place: a snapshot takes a copy. */
  protected override snapshotSession(s: OpenState): OpenState {
    const { ids: _ids, ...rest } = super.snapshotSession(s);
    const out: OpenState = { ...rest, history: s.history.slice(), ...(s.counts ? { counts: { ...s.counts } } : {}) };
    if (out.counts === undefined) delete out.counts; // a checkpoint holds counts only for the sessions that have them
    return out;
  }

  async snapshot(): Promise<ModelScorerSnapshot> {
    return {
      kind: 'model',
      modelHash: this.model.dataHash,
      ...this.snapshotSessions(),
      tallies: [...this.tallies].map(([k, t]) => [k, { ...t, counts: { ...t.counts }, history: t.history.slice(), lines: t.lines.slice() }]),
    };
  }

  async restore(state: unknown): Promise<void> {
    const s = state as ModelScorerSnapshot;
    if (typeof s !== 'object' || s === null || s.kind !== 'model' || !Array.isArray(s.sessions)) {
      throw new DeepSentryError('DS_CONFIG', 'the checkpointed scorer state is not a model scorer state');
    }
    if (s.modelHash !== this.model.dataHash) throw new DeepSentryError('DS_CONFIG', 'the checkpoint was written with a different model (training data hash differs)');
    this.restoreSessions(s);
    this.tallies = new Map(Array.isArray(s.tallies) ? s.tallies : []);
    this.nextDue = -Infinity;
    this.recent?.restored(this.sessions.keys());
    this.out = [];
    this.last = [];
  }

  /** The model's version: 1 as trained, +1 per feedback (lib/models/lineage.ts). */
  get modelVersion(): number {
    return lineageOf(this.model).version;
  }

  /**
   * Learns `req.sessions` (scored recently) as normal on a copy of the model (learnRecent), saved to the
   * model's directory when it has one; this scorer keeps scoring with its model until `swapModel`.
   */
  async feedback(req: FeedbackRequest): Promise<FeedbackSummary> {
    if (this.recent === null) throw new DeepSentryError('DS_UNSUPPORTED', 'this scorer keeps no recent sessions (feedbackSessions is 0): nothing to learn from');
    const model = this.model;
    if (!canLearn(model)) throw new DeepSentryError('DS_UNSUPPORTED', "this scorer's model cannot learn feedback: give it a DeepSentry model (DeepSentry.load)");
    if (this.pending !== null) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'a feedback is waiting to be swapped in: call swapModel first');
    const learnt = await model.learnRecent(this.recent, req);
    this.pending = learnt.model;
    const summary = learnt.summary;
    return summary;
  }

  /**
   * Puts the model of the last `feedback` in place of the current one, between two calls: open sessions keep
   * their state (their history is message texts), only the window caches start over. Returns the version now scoring.
   */
  async swapModel(): Promise<number> {
    const next = this.pending;
    if (next === null) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'no feedback is waiting to be swapped in');
    if (next.detector.config.window !== this.W) throw new DeepSentryError('DS_MODEL', `the new model's window (${next.detector.config.window}) is not the scorer's (${this.W})`);
    this.pending = null;
    const old = this.model;
    this.model = next;
    this.countWeight = next.countModel ? next.config.scoring.counts : 0;
    this.tallied = this.countWeight > 0 || this.onJudged !== undefined;
    this.scoreCache.clear();
    this.expectedCache.clear();
    this.last = [];
    old.dispose();
    return this.modelVersion;
  }

  async close(): Promise<void> {
    this.sessions.clear();
    this.pending?.dispose();
    this.model.dispose();
  }
}
