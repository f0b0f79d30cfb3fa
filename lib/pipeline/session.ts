/**
 * Open sessions of the in-process API (`DeepSentry.session()`): a service pushes raw log lines as they come and
 * says when its input ends; the scores are those of `deepsentry score` on the same lines, because the same code
 * makes them: the live monitor's model scorer (ModelScorer, lib/live/model_scorer.ts) with the model's own session
 * configuration and batch scoring's rule for which ends are scored (lib/logs/sessions.ts sessionEnded).
 *
 * The contract:
 * - a session (segment) stays open across `push` calls until its idle timeout passes by the lines' own
 *   timestamps (logs.session.idleTimeoutMs of the model, as `score` and `live` cut them), its time window ends,
 *   or the input ends;
 * - `end()` is the end of input: the sessions still open end there. Their end is scored only when the model's
 *   sessions have no idle timeout or the session's lines have no timestamps; otherwise it is censored (the
 *   input stopped before the timeout said whether the session was over: `score` and `live` do the same);
 * - each result holds the lines scored by that call and the sessions that closed in it, each with its score
 *   (max over its lines and its scored end) and why it closed. A key split by the idle timeout closes once per
 *   segment; `score`'s sessions.csv (and the one-shot `scoreLines`) keep the max per key.
 *
 * Scoring never blocks the event loop: a model loaded from a directory is scored in a worker thread
 * (lib/live/worker.ts: the model is loaded there once more); a model only in memory (trained, not saved) is
 * scored in this thread in small chunks with the event loop let run between them. A large `push` is split
 * into calls of `chunkLines` lines either way, so no single step holds the event loop for long.
 */
import { DeepSentryError } from '../errors';
import type { ModelScorerOptions } from '../live/model_scorer';
import type { EndReason, LineScorer, RawLine, ScoredEvent } from '../live/types';
import type { DeepSentry } from './model';

/** Options of DeepSentry.session. */
export interface ScoringSessionOptions {
  /**
   * Score in a worker thread (default: true when the model was loaded from a directory, which the worker loads
   * it from; false for a model only in memory, scored in this thread in chunks that yield to the event loop).
   */
  worker?: boolean;
  /** Lines per scorer call (default 2048 in a worker, 256 in this thread): a larger push is split. */
  chunkLines?: number;
}

/** One line's score in one session (a line naming several sessions has one per session). */
export interface LineScore {
  /** the line's position in the session's whole input: 0 for the first line of the first push */
  index: number;
  session: string;
  score: number;
  /** score ≥ the model's saved threshold */
  anomaly: boolean;
}

/**
 * Why a session closed: `idle` (its idle timeout passed by log time), `window` (its time window ended),
 * `flush` (the end of input, scored: no idle timeout or no timestamps), `censored` (open at the end of input,
 * its end not scored), `evicted` (more than the model's logs.session.maxOpen sessions were open and it was
 * the least recently active: its end is not scored, as in `score`). `counts` is not a session of its own but
 * its key's count judgement (no lines): once the key has been quiet for the count horizon (an hour by default,
 * scoring.countTimeoutMs; or at the end of input), when the sessions counted together break a count relation —
 * its score is the last session's end plus the relations' weighted surprise.
 */
export type SessionEnd = EndReason | 'censored';

/** A session (segment) that closed: its score is the max over its lines and its end when that was scored. */
export interface ClosedSessionScore {
  session: string;
  score: number;
  anomaly: boolean;
  /** indices of its lines (LineScore.index) */
  lines: number[];
  end: SessionEnd;
}

/** What `push` and `end` return: the lines scored by that call and the sessions that closed in it. */
export interface ScoringUpdate {
  lines: LineScore[];
  sessions: ClosedSessionScore[];
  /** the model's saved threshold the `anomaly` decisions use */
  threshold: number;
}

/** The session API over a trained model: see the module comment. Calls run one after another, in call order. */
export class ScoringSession {
  private scorer: Promise<LineScorer> | null = null;
  private readonly inWorker: boolean;
  private readonly chunk: number;
  private next = 0;
  /** open segments by key, with the max of their line scores so far */
  private readonly open = new Map<string, ClosedSessionScore>();
  private state: 'open' | 'ended' | 'closed' = 'open';
  /** the previous call: calls are chained so that lines are scored in push order */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly model: DeepSentry,
    options: ScoringSessionOptions = {},
  ) {
    if (options.worker === true && model.directory === null) {
      throw new DeepSentryError('DS_INVALID_ARGUMENT', 'session({ worker: true }): the model was not loaded from a directory (save it and DeepSentry.load it), so a worker thread cannot load it');
    }
    this.inWorker = options.worker ?? model.directory !== null;
    const c = options.chunkLines ?? (this.inWorker ? 2048 : 256);
    if (!Number.isInteger(c) || c < 1) throw new DeepSentryError('DS_INVALID_ARGUMENT', `session({ chunkLines }): expected an integer >= 1 but received ${String(c)}`);
    this.chunk = c;
  }

  /** The scorer, started on first use: the model's own session configuration, ends scored as `score` does. */
  private start(): Promise<LineScorer> {
    const m = this.model;
    const options: Omit<ModelScorerOptions, 'ownsKey'> = { idleTimeoutMs: m.logConfig.session.idleTimeoutMs, censorEnds: true, countWindows: true };
    this.scorer ??= m.openScorer(options, this.inWorker);
    return this.scorer;
  }

  /** Runs `fn` after the calls before it (whether they failed or not). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const r = this.queue.then(fn, fn);
    this.queue = r.catch(() => undefined);
    return r;
  }

  /** Scores raw log lines (one string per line, no newline) in the open sessions; see ScoringUpdate. */
  push(lines: readonly string[]): Promise<ScoringUpdate> {
    if (!Array.isArray(lines)) return Promise.reject(new DeepSentryError('DS_INVALID_ARGUMENT', `push(lines): expected an array of strings but received ${typeof lines}`));
    for (let i = 0; i < lines.length; i++) {
      if (typeof lines[i] !== 'string') return Promise.reject(new DeepSentryError('DS_INVALID_ARGUMENT', `push(lines): lines[${i}] is ${typeof lines[i]}, not a string`));
    }
    if (this.state !== 'open') return Promise.reject(this.notOpen('push'));
    const first = this.next;
    this.next += lines.length;
    return this.serial(async () => {
      const scorer = await this.start();
      const out = this.update();
      for (let i = 0; i < lines.length; i += this.chunk) {
        const raw: RawLine[] = [];
        for (let j = i; j < Math.min(lines.length, i + this.chunk); j++) raw.push({ seq: first + j, lineNo: first + j + 1, offset: 0, text: lines[j] });
        this.take(await scorer.scoreLines(raw), out);
        if (!this.inWorker) await new Promise((r) => setImmediate(r));
      }
      return out;
    });
  }

  /**
   * The end of input: the open sessions end (their end scored or censored as the module comment says), and
   * the scorer is released. Returns the lines of no call (none) and the sessions that closed now.
   */
  end(): Promise<ScoringUpdate> {
    if (this.state !== 'open') return Promise.reject(this.notOpen('end'));
    this.state = 'ended';
    return this.serial(async () => {
      const out = this.update();
      try {
        if (this.scorer !== null) this.take(await (await this.scorer).flush(), out);
      } finally {
        await this.release();
      }
      return out;
    });
  }

  /** Discards the session without ending it (no scores for its open sessions) and releases the scorer. */
  close(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    const ended = this.state === 'ended';
    this.state = 'closed';
    if (ended) return this.queue.then(() => undefined); // end() released the scorer
    return this.serial(() => this.release());
  }

  private async release(): Promise<void> {
    const s = this.scorer;
    this.scorer = null;
    this.open.clear();
    // The in-process scorer shares the caller's model: closing it would dispose the model.
    if (s !== null && this.inWorker) await (await s).close();
  }

  private notOpen(call: string): DeepSentryError {
    return new DeepSentryError('DS_INVALID_ARGUMENT', `${call}(): the session has ${this.state === 'ended' ? 'ended (end() was called)' : 'been closed'}; open a new one with model.session()`);
  }

  private update(): ScoringUpdate {
    return { lines: [], sessions: [], threshold: this.model.threshold };
  }

  /** Folds scored events into the open segments: line events into `out.lines`, end events close their segment. */
  private take(events: ScoredEvent[], out: ScoringUpdate): void {
    const t = out.threshold;
    for (const e of events) {
      let s = this.open.get(e.session);
      if (s === undefined) this.open.set(e.session, (s = { session: e.session, score: -Infinity, anomaly: false, lines: [], end: 'censored' }));
      if (e.score > s.score) s.score = e.score;
      if (e.isSessionEnd) {
        this.open.delete(e.session);
        // An end that is not scored comes with score -Infinity (ModelScorer's censorEnds): evicted, or censored
        // at the end of input.
        const unscored = e.score === -Infinity;
        s.end = e.endReason === 'flush' && unscored ? 'censored' : (e.endReason ?? 'flush');
        s.anomaly = s.score >= t;
        out.sessions.push(s);
      } else {
        s.lines.push(e.seq);
        out.lines.push({ index: e.seq, session: e.session, score: e.score, anomaly: e.score >= t });
      }
    }
  }
}
