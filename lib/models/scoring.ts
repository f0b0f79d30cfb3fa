/**
 * The score arithmetic of a trained model: the table of message vectors of every masked message seen in training
 * (and met while scoring), the text autoencoder that encodes a new one, the detector, the count-based sequence
 * model and the count relations, and how their parts add up to a score. It scores sessions of masked messages
 * (batch) and windows (the live scorer, lib/live/model_scorer.ts); a message it has never seen is tokenised
 * with the saved vocabulary, encoded by the text model (batched, once per distinct message) and appended to the
 * table, and its reconstruction error is kept as a novelty term.
 *
 * A line's score = detectorWeight × the detector's score of the window ending at it (config
 * detector.model.score; lib/models' default `surprise` = −log of the actual message's share of the detector's
 * softmax over known messages + its rarity) + for a message never seen in training, its text-model
 * reconstruction error (`scoring.novelty`) + optionally the count-based sequence model's surprise
 * (`scoring.sequence`, see lib/models/sequence.ts). A session's score is the maximum over its lines and its end
 * event. Why the novelty term: an unseen message's vector may land near a known one, and the detector would then
 * judge it as that message; the text model knows it never learnt to reproduce it.
 *
 * Loading, saving and the scoring sessions of the pipeline are DeepSentry's (lib/pipeline/model.ts), which
 * extends this class.
 */
import { DeepSentryError } from '../errors';
import type { LogConfig } from '../logs/config';
import type { Vocabulary } from '../logs/vocabulary';
import { Masker } from '../logs/masking';
import { Tokenizer } from '../logs/tokenizer';
import { END_MESSAGE, PAD_MESSAGE, type Detector } from './detector';
import type { NamedWeight } from './params';
import type { TextAutoencoder } from './text';
import type { FittedThreshold } from './threshold';
import type { SequenceModel } from './sequence';
import { countMessages, type CountModel } from './counts';
import type { KnownNormal } from './known_normal';
import type { PipelineConfig } from '../pipeline/config';

/** The first id of a distinct message in the model's table (0 = window padding, 1 = end of session). */
export const FIRST_ID = 2;
/** The thresholds saved with a model (model.json `thresholds`). */
export interface ModelThresholds {
  /** sessions with score ≥ session.value are anomalies; fitted on held-back unlabelled sessions */
  session: FittedThreshold;
}

/** One session to score: its messages as model ids (see DeepSentry.messageId). */
export interface SessionInput {
  messageIds: ArrayLike<number>;
  /** the session really ended (idle timeout, time window): its end is scored as an event too */
  ended?: boolean;
  /**
   * the messages whose counts its end event judges by the count relations: default its own; null: none (an
   * earlier session of a chain counted together, lib/models/counts.ts countChains); a chain's last session gives
   * the whole chain's
   */
  countIds?: ArrayLike<number> | null;
}

/** Scores of sessions. */
export interface SessionScoresOut {
  /** per line, then the end event when the session ended */
  lineScores: Float32Array[];
  sessionScores: Float32Array;
}

/** Why a session scored as it did: its highest-scoring event (a line, or its end), as sessions.csv gives it. */
export interface SessionExplanation {
  /** masked text of that line, or `<end of session>` */
  message: string;
  /** the masked messages before it that the detector read (at most window − 1) */
  window: string[];
  /** the known message nearest the detector's prediction at that point (`<end of session>` for the end) */
  expected: string | undefined;
  /** the count relation the session violates, when its end event carries a count surprise */
  countRelation?: string;
}

/** A trained model's scoring part: see the module comment. */
export class ScoringModel {
  /** masked text → model id */
  private readonly index = new Map<string, number>();
  /** masked text of id FIRST_ID + i (training messages, then messages met while scoring) */
  protected readonly texts: string[];
  /** message vectors [rows, latentDim]; rows ≥ FIRST_ID + texts.length are unused capacity */
  private vectors: Float32Array;
  /** novelty term per id (0 for training messages) */
  private novelty: Float32Array;
  /** ids FIRST_ID … FIRST_ID+knownCount-1 were seen in training */
  readonly knownCount: number;
  /** ids whose vectors are not computed yet */
  private pending: number[] = [];
  /**
   * ids met while scoring that feedback accepted as normal messages (acceptMessages): no novelty term, and saved
   * with the training messages, after them, so that a model loaded again knows them
   */
  private readonly accepted: number[] = [];
  /** lines of each accepted message in the sessions that brought it (its entry of `counts` once saved) */
  private readonly acceptedLines: number[] = [];
  readonly masker: Masker;
  readonly tokenizer: Tokenizer;
  /**
   * compositions of sessions known to be normal (lib/models/known_normal.ts): filled by a normal-only training
   * and by feedback, null in a model trained without labels; the scorer reads it when `scoring.knownNormal`
   */
  knownNormal: KnownNormal | null = null;

  constructor(
    readonly config: PipelineConfig,
    readonly logConfig: LogConfig,
    readonly vocabulary: Vocabulary,
    readonly text: TextAutoencoder,
    readonly detector: Detector,
    messages: string[],
    vectors: Float32Array,
    readonly thresholds: ModelThresholds,
    readonly sequence: SequenceModel,
    readonly counts: number[] = [],
    readonly metrics: Record<string, unknown> = {},
    readonly dataHash = '',
    readonly countModel: CountModel | null = null,
  ) {
    const D = text.config.latentDim;
    if (vectors.length !== (messages.length + FIRST_ID) * D) {
      throw new DeepSentryError('DS_MODEL', `message vectors: ${vectors.length / D} rows for ${messages.length} messages (+${FIRST_ID} reserved)`);
    }
    this.texts = messages.slice();
    messages.forEach((m, i) => this.index.set(m, FIRST_ID + i));
    this.knownCount = messages.length;
    this.vectors = vectors;
    this.novelty = new Float32Array(Math.max(vectors.length / D, FIRST_ID));
    this.masker = new Masker(logConfig.masking.rules, logConfig.masking.collapseRepeats);
    this.tokenizer = new Tokenizer(logConfig.tokenizer);
  }

  /** The saved session threshold: sessions (and lines) with score ≥ it are anomalies. */
  get threshold(): number {
    return this.thresholds.session.value;
  }

  /** Number of ids in the message table (reserved ones included). */
  get tableSize(): number {
    return FIRST_ID + this.texts.length;
  }

  /** Masked text of a model id (undefined for the reserved ids). */
  messageText(id: number): string | undefined {
    return this.texts[id - FIRST_ID];
  }

  /** The model id of a masked message; a new one is added to the table (its vector computed on the next score). */
  messageId(masked: string): number {
    const id = this.index.get(masked);
    if (id !== undefined) return id;
    const nid = FIRST_ID + this.texts.length;
    this.texts.push(masked);
    this.index.set(masked, nid);
    this.pending.push(nid);
    return nid;
  }

  /** Encodes the messages added since the last call (one batched text-model pass) and their novelty. */
  private resolvePending(): void {
    if (this.pending.length === 0) return;
    const D = this.text.config.latentDim;
    const rows = this.tableSize;
    if (this.vectors.length < rows * D) {
      const v = new Float32Array(Math.max(rows, 2 * (this.vectors.length / D)) * D);
      v.set(this.vectors);
      this.vectors = v;
      const n = new Float32Array(v.length / D);
      n.set(this.novelty);
      this.novelty = n;
    }
    const seqs = this.pending.map((id) => {
      const ids = this.vocabulary.encode(this.tokenizer.tokenize(this.texts[id - FIRST_ID]).tokens);
      return ids.length > 0 ? ids : Int32Array.of(2); // an empty message reads as one <unk>
    });
    const vec = this.text.encode(seqs);
    const rec = this.config.scoring.novelty ? this.text.reconstructionError(seqs) : null;
    this.pending.forEach((id, i) => {
      this.vectors.set(vec.subarray(i * D, (i + 1) * D), id * D);
      this.novelty[id] = rec ? rec[i] : 0;
    });
    this.pending = [];
  }

  /** The vector table trimmed to the ids in use. */
  private table(): Float32Array {
    this.resolvePending();
    return this.vectors.subarray(0, this.tableSize * this.text.config.latentDim);
  }

  /**
   * Feedback: the messages of sessions an operator marked normal are normal messages. Of `ids`, those met while
   * scoring (never seen in training) lose their novelty term — the text model's reconstruction error, which
   * would keep every session holding them flagged — and are saved as known messages with the model. Returns
   * how many messages were accepted now.
   */
  acceptMessages(ids: ArrayLike<number>): number {
    this.resolvePending();
    const known = FIRST_ID + this.knownCount;
    let added = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(Number.isInteger(id) && id >= FIRST_ID && id < this.tableSize)) throw new DeepSentryError('DS_OUT_OF_RANGE', `message id ${id} is not in the model's table (${this.tableSize} ids)`);
      if (id < known) continue;
      const k = this.accepted.indexOf(id);
      if (k >= 0) {
        this.acceptedLines[k]++;
        continue;
      }
      this.accepted.push(id);
      this.acceptedLines.push(1);
      this.novelty[id] = 0;
      added++;
    }
    return added;
  }

  /** Whether message `id` is one the model knows as normal: seen in training or accepted by feedback. */
  knows(id: number): boolean {
    return (id >= FIRST_ID && id < FIRST_ID + this.knownCount) || this.accepted.includes(id);
  }

  /** The masked texts the model knows as normal (training messages, then those feedback accepted), in saved order. */
  protected knownMessages(): { texts: string[]; counts: number[] } {
    return { texts: [...this.texts.slice(0, this.knownCount), ...this.accepted.map((id) => this.texts[id - FIRST_ID])], counts: this.counts.length === this.knownCount ? [...this.counts, ...this.acceptedLines] : this.counts };
  }

  /** The message-vector table [tableSize, latentDim] the detector reads (messages added since scoring encoded first). */
  messageTable(): Float32Array {
    return this.table();
  }

  /**
   * Scores sessions of model ids: per line (and end event for sessions that ended) and per session (max).
   * Identical windows are scored once; all sessions go through the detector in batched calls.
   */
  scoreSessions(sessions: readonly SessionInput[]): SessionScoresOut {
    if (sessions.length === 0) return { lineScores: [], sessionScores: new Float32Array(0) };
    const table = this.table();
    const rows = this.tableSize;
    for (const s of sessions) {
      for (let i = 0; i < s.messageIds.length; i++) {
        const id = s.messageIds[i];
        if (!(Number.isInteger(id) && id >= FIRST_ID && id < rows)) throw new DeepSentryError('DS_OUT_OF_RANGE', `message id ${id} is not in the model's table (${rows} ids)`);
      }
    }
    const r = this.detector.scoreSessions(table, sessions.map((s) => s.messageIds), this.detector.config.score, sessions.map((s) => s.ended === true));
    const nov = this.novelty;
    const wd = this.config.scoring.detectorWeight;
    const seq = this.config.scoring.sequence ? this.sequence : null;
    const rarity = this.config.scoring.rarity;
    const wc = this.countModel ? this.config.scoring.counts : 0;
    const sessionScores = new Float32Array(sessions.length);
    r.lineScores.forEach((ls, si) => {
      const ids = sessions[si].messageIds;
      // The count relations judge a session once it is over: their surprise goes on its end event (added to
      // the stored float32 score, as the live scorer adds it to the window's score).
      const countIds = sessions[si].countIds === undefined ? ids : sessions[si].countIds;
      const extra = wc > 0 && ls.length > ids.length && countIds !== null ? wc * this.countSurprise(countIds as ArrayLike<number>) : 0;
      let mx = -Infinity;
      let a = PAD_MESSAGE;
      let b = PAD_MESSAGE;
      for (let t = 0; t < ls.length; t++) {
        const x = t < ids.length ? ids[t] : END_MESSAGE;
        let v = wd * ls[t];
        if (t < ids.length) v += nov[x];
        if (seq) v += seq.surprise(a, b, x) + (rarity ? seq.rarity(x) : 0);
        ls[t] = v;
        if (t === ids.length && extra !== 0) {
          ls[t] += extra;
          v = ls[t];
        }
        if (v > mx) mx = v;
        a = b;
        b = x;
      }
      sessionScores[si] = mx;
    });
    return { lineScores: r.lineScores, sessionScores };
  }

  /**
   * The count surprise of a finished session's messages (0 without a count model; messages never seen in
   * training take part in no relation).
   */
  countSurprise(messageIds: ArrayLike<number>): number {
    return this.countModel ? this.countModel.surprise(countMessages(messageIds), this.config.scoring.countBreadth) : 0;
  }

  /**
   * Explains scored events by the W ids the detector read for each (the event's own message last, PAD before
   * its session's start, END_MESSAGE for a session's end): its message, the messages before it, the message the
   * detector expected there (one batched prediction for the items that do not bring it: `expected`, null for
   * none, as expectedMessages gives it), and for an end event given its session's lines per message id
   * (`counts`), the count relation the session violates most.
   */
  explainWindows(items: ReadonlyArray<{ window: Int32Array; counts?: Map<number, number>; expected?: string | null }>): SessionExplanation[] {
    const W = this.detector.config.window;
    const todo = items.flatMap((it, k) => (it.expected === undefined ? [k] : []));
    const wins = new Int32Array(todo.length * W);
    todo.forEach((k, r) => wins.set(items[k].window, r * W));
    const predicted = this.expectedMessages(wins, todo.length);
    const expected = items.map((it) => (it.expected === null ? undefined : it.expected));
    todo.forEach((k, r) => (expected[k] = predicted[r]));
    const text = (id: number) => this.messageText(id) ?? `#${id}`;
    return items.map(({ window, counts }, k) => {
      const target = window[W - 1];
      const out: SessionExplanation = {
        message: target === END_MESSAGE ? '<end of session>' : text(target),
        window: Array.from(window.subarray(0, W - 1)).filter((id) => id !== PAD_MESSAGE).map(text),
        expected: expected[k],
      };
      if (target === END_MESSAGE && counts && this.countModel && this.config.scoring.counts > 0) {
        const v = this.countModel.worstViolation(counts);
        if (v) {
          const r = v.relation;
          out.countRelation = `${r.a === 1 ? '' : `${r.a}·`}count(${text(r.i)}) = ${r.b === 1 ? '' : `${r.b}·`}count(${text(r.j)}) held in ${r.sessions - r.violations} of ${r.sessions} training sessions; here ${counts.get(r.i) ?? 0} and ${counts.get(r.j) ?? 0}${v.violated > 1 ? `; ${v.violated} relations broken` : ''}`;
        }
      }
      return out;
    });
  }

  /**
   * The window scores and predictions for the live scorer: for each window (W ids, the last one the actual
   * message or END), its score and the nearest known message to the detector's prediction.
   */
  scoreWindows(windows: Int32Array, count: number, withExpected: boolean): { scores: Float32Array; expected: (string | undefined)[] } {
    const table = this.table();
    const W = this.detector.config.window;
    const s = this.detector.scoreWindows(table, windows, count)[this.detector.config.score];
    const seq = this.config.scoring.sequence ? this.sequence.scoreWindows(windows, count, W, this.config.scoring.rarity) : null;
    const wd = this.config.scoring.detectorWeight;
    for (let i = 0; i < count; i++) {
      const a = windows[i * W + W - 1];
      s[i] = wd * s[i] + (a >= FIRST_ID ? this.novelty[a] : 0) + (seq ? seq[i] : 0);
    }
    const expected = withExpected ? this.expectedMessages(windows, count) : new Array<string | undefined>(count).fill(undefined);
    return { scores: s, expected };
  }

  /**
   * For each window (W ids), the known message nearest the detector's prediction (`<end of session>` for the
   * end; undefined for none): one batched prediction, no scores (explanations need only this).
   */
  expectedMessages(windows: Int32Array, count: number): (string | undefined)[] {
    const expected: (string | undefined)[] = new Array(count).fill(undefined);
    if (count === 0) return expected;
    const table = this.table();
    const pred = this.detector.predict(table, windows, count);
    const feats = this.detector.features(table);
    const F = this.detector.featureDim;
    const regression = this.detector.config.objective === 'regression';
    // the end of a session, the training messages and those feedback accepted
    const candidates = [END_MESSAGE, ...Array.from({ length: this.knownCount }, (_, k) => FIRST_ID + k), ...this.accepted];
    for (let i = 0; i < count; i++) {
      let best = -Infinity;
      let bestId = -1;
      for (const id of candidates) {
        let l = 0;
        for (let d = 0; d < F; d++) {
          const x = pred[i * F + d];
          const y = feats[id * F + d];
          l += regression ? -(x - y) * (x - y) : x * y;
        }
        if (l > best) {
          best = l;
          bestId = id;
        }
      }
      expected[i] = bestId === END_MESSAGE ? '<end of session>' : bestId >= FIRST_ID ? this.texts[bestId - FIRST_ID] : undefined;
    }
    return expected;
  }

  /** The weights of the whole model (text model, detector, the vectors of the known messages in knownMessages' order). */
  protected weights(): NamedWeight[] {
    const D = this.text.config.latentDim;
    const rows = FIRST_ID + this.knownCount;
    this.resolvePending();
    const values = new Float32Array((rows + this.accepted.length) * D);
    values.set(this.vectors.subarray(0, rows * D));
    this.accepted.forEach((id, k) => values.set(this.vectors.subarray(id * D, id * D + D), (rows + k) * D));
    return [...this.text.weights(), ...this.detector.weights(), { name: 'vectors', shape: [rows + this.accepted.length, D], values }];
  }

  /** Frees the tfjs variables. */
  dispose(): void {
    this.text.dispose();
    this.detector.dispose();
  }
}

