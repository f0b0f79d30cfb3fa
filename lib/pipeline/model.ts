/**
 * A trained DeepSentry model in memory: the log configuration it was trained with (format, masking, sessions),
 * the vocabulary, the text autoencoder, the table of message vectors of every masked message seen in training,
 * the detector and the fitted thresholds. It scores sessions of masked messages; a message it has never seen
 * is tokenised with the saved vocabulary, encoded by the text model (batched, once per distinct message) and
 * appended to the table, and its reconstruction error is kept as a novelty term.
 *
 * A line's score = detectorWeight × the detector's score of the window ending at it (config
 * detector.model.score; lib/models' default `surprise` = −log of the actual message's share of the detector's
 * softmax over known messages + its rarity) + for a message never seen in training, its text-model
 * reconstruction error (`scoring.novelty`) + optionally the count-based sequence model's surprise
 * (`scoring.sequence`, see sequence.ts). A session's score is the maximum over its lines and its end event.
 * Why the novelty term: an unseen message's vector may land near a known one, and the detector would then
 * judge it as that message; the text model knows it never learnt to reproduce it.
 */
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import { resolveLogConfig, type LogConfig } from '../logs/config';
import { Vocabulary } from '../logs/vocabulary';
import { Masker } from '../logs/masking';
import { Tokenizer } from '../logs/tokenizer';
import { Detector, END_MESSAGE, PAD_MESSAGE, type DetectorConfig } from '../models/detector';
import { loadModelDir, saveModelDir, type ModelContent, type ModelJson } from '../models/files';
import type { NamedWeight } from '../models/params';
import { TextAutoencoder, type TextModelConfig } from '../models/text';
import type { FittedThreshold } from '../models/threshold';
import { useBackend, type BackendChoice, type BackendSelection } from '../backend/select';
import type { Precision } from '../backend/binding';
import { resolvePipelineConfig, type PipelineConfig } from './config';
import { SequenceModel, type SequenceModelJson } from './sequence';
import { CountModel, countMessages, type CountModelJson } from './counts';
// Circular (session.ts → live.ts → this module), used only at call time (never while the modules load).
import { ScoringSession, type ScoringSessionOptions } from './session';

/** The first id of a distinct message in the model's table (0 = window padding, 1 = end of session). */
export const FIRST_ID = 2;

/** What model.json's `extra` holds for a pipeline model. */
export interface ModelExtra {
  /** masked text of message id FIRST_ID + i (the messages seen in training) */
  messages: string[];
  /** lines per message in the training data */
  counts: number[];
  /** the resolved lib/logs configuration the model parses with (format and session mode fixed) */
  logConfig: LogConfig;
  textConfig: TextModelConfig;
  detectorConfig: DetectorConfig;
  /** the count-based sequence model (see sequence.ts) */
  sequence: SequenceModelJson;
  /** the count relations within a session (see counts.ts); absent in models trained before they existed */
  countRelations?: CountModelJson;
}

/** The thresholds saved with a model (model.json `thresholds`). */
export interface ModelThresholds {
  /** sessions with score ≥ session.value are anomalies; fitted on held-back unlabelled sessions */
  session: FittedThreshold;
}

/** Options of DeepSentry.load. */
export interface LoadOptions {
  /** compute backend (default auto); tfjs is process-global, so this selects it for the whole process */
  backend?: BackendChoice;
  /** native kernel threads */
  threads?: number;
  /**
   * precision tier of the matrix products (default fp32): bf16 runs the LSTM and Dense products with bf16
   * operands and float32 accumulation on the native CPU kernels (README "Precision tiers"); process-wide
   */
  precision?: Precision;
}

/** The LoadOptions fields of `o` (an options object that extends them), for handing on to DeepSentry.load. */
export function pickLoadOptions(o: LoadOptions): LoadOptions {
  return {
    ...(o.backend ? { backend: o.backend } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.precision ? { precision: o.precision } : {}),
  };
}

/** One session to score: its messages as model ids (see DeepSentry.messageId). */
export interface SessionInput {
  messageIds: ArrayLike<number>;
  /** the session really ended (idle timeout, time window): its end is scored as an event too */
  ended?: boolean;
}

/** Scores of sessions. */
export interface SessionScoresOut {
  /** per line, then the end event when the session ended */
  lineScores: Float32Array[];
  sessionScores: Float32Array;
}

/** Why a session scored as it did: its highest-scoring event (a line, or its end), as sessions.csv gives it. */
export interface SessionExplanation {
  /** index of the event in the session (its lines, then the end event at index = number of lines) */
  index: number;
  /** masked text of that line, or `<end of session>` */
  message: string;
  /** the masked messages before it that the detector read (at most window − 1) */
  window: string[];
  /** the known message nearest the detector's prediction at that point (`<end of session>` for the end) */
  expected: string | undefined;
  /** the count relation the session violates, when its end event carries a count surprise */
  countRelation?: string;
}

/** What DeepSentry.scoreLines returns. */
export interface ScoreLinesResult {
  /** one entry per input line and session it belongs to (lines that parse into no session have none) */
  lines: Array<{ index: number; session: string; score: number; anomaly: boolean }>;
  /**
   * one entry per session key, in the order their first segment closed (as sessions.csv): max score over its
   * segments (each: its lines and its end when that is scored), and the input indices of its lines
   */
  sessions: Array<{ session: string; score: number; anomaly: boolean; lines: number[] }>;
  /** the saved threshold the decisions use */
  threshold: number;
}

/** Selects the backend once per process unless the caller already did. */
export function ensureBackend(o: LoadOptions = {}): BackendSelection {
  return useBackend(o.backend ?? 'auto', { ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.precision ? { precision: o.precision } : {}) });
}

export class DeepSentry {
  /** masked text → model id */
  private readonly index = new Map<string, number>();
  /** masked text of id FIRST_ID + i (training messages, then messages met while scoring) */
  private readonly texts: string[];
  /** message vectors [rows, latentDim]; rows ≥ FIRST_ID + texts.length are unused capacity */
  private vectors: Float32Array;
  /** novelty term per id (0 for training messages) */
  private novelty: Float32Array;
  /** ids FIRST_ID … FIRST_ID+knownCount-1 were seen in training */
  readonly knownCount: number;
  /** ids whose vectors are not computed yet */
  private pending: number[] = [];
  readonly masker: Masker;
  readonly tokenizer: Tokenizer;
  /** set by load: where the model came from */
  directory: string | null = null;
  /** set by load: the backend options it was loaded with (a session's worker thread loads it with them too) */
  loadOptions: LoadOptions = {};
  /**
   * set by training (not saved): the per-key scores of the held-back training sessions the threshold was fitted
   * on, for evaluations that compare threshold rules without retraining (bench/accuracy.ts)
   */
  heldBackScores: Float64Array | null = null;

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
      const extra = wc > 0 && ls.length > ids.length ? wc * this.countSurprise(ids) : 0;
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
    return this.countModel ? this.countModel.surprise(countMessages(messageIds)) : 0;
  }

  /**
   * Explains scored sessions: each one's highest-scoring event (`lineScores` as scoreSessions returned them),
   * the window the detector read there, the message it expected (one batched prediction for all of them), and
   * the violated count relation when the end event carries one.
   */
  explainSessions(items: ReadonlyArray<{ messageIds: ArrayLike<number>; lineScores: ArrayLike<number> }>): SessionExplanation[] {
    const W = this.detector.config.window;
    const wins = new Int32Array(items.length * W).fill(PAD_MESSAGE);
    const tops = items.map(({ messageIds, lineScores }, k) => {
      let index = 0;
      for (let t = 1; t < lineScores.length; t++) if (lineScores[t] > lineScores[index]) index = t;
      const target = index < messageIds.length ? messageIds[index] : END_MESSAGE;
      const from = Math.max(0, index - (W - 1));
      for (let t = from; t < index; t++) wins[k * W + W - 1 - (index - t)] = messageIds[t];
      wins[k * W + W - 1] = target;
      return { index, target, from };
    });
    const { expected } = items.length > 0 ? this.scoreWindows(wins, items.length, true) : { expected: [] };
    const text = (id: number) => this.messageText(id) ?? `#${id}`;
    return items.map(({ messageIds }, k) => {
      const { index, target, from } = tops[k];
      const out: SessionExplanation = {
        index,
        message: target === END_MESSAGE ? '<end of session>' : text(target),
        window: Array.from(messageIds).slice(from, index).map(text),
        expected: expected[k],
      };
      if (target === END_MESSAGE && this.countModel && this.config.scoring.counts > 0) {
        const c = countMessages(messageIds);
        const v = this.countModel.worstViolation(c);
        if (v) {
          const r = v.relation;
          out.countRelation = `${r.a === 1 ? '' : `${r.a}·`}count(${text(r.i)}) = ${r.b === 1 ? '' : `${r.b}·`}count(${text(r.j)}) held in ${r.sessions - r.violations} of ${r.sessions} training sessions; here ${c.get(r.i) ?? 0} and ${c.get(r.j) ?? 0}`;
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
    const expected: (string | undefined)[] = new Array(count).fill(undefined);
    if (withExpected && count > 0) {
      const pred = this.detector.predict(table, windows, count);
      const feats = this.detector.features(table);
      const F = this.detector.featureDim;
      const regression = this.detector.config.objective === 'regression';
      for (let i = 0; i < count; i++) {
        let best = -Infinity;
        let bestId = -1;
        for (let id = 1; id < FIRST_ID + this.knownCount; id++) {
          if (id >= 1 && id < FIRST_ID && id !== END_MESSAGE) continue;
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
    }
    return { scores: s, expected };
  }

  /** The weights of the whole model (text model, detector, training message vectors). */
  private weights(): NamedWeight[] {
    const D = this.text.config.latentDim;
    const rows = FIRST_ID + this.knownCount;
    this.resolvePending();
    return [
      ...this.text.weights(),
      ...this.detector.weights(),
      { name: 'vectors', shape: [rows, D], values: this.vectors.slice(0, rows * D) },
    ];
  }

  /** What model.json holds besides the weights (saved by `save`, copied by `clone`). */
  private content(): ModelContent {
    const extra: ModelExtra = {
      messages: this.texts.slice(0, this.knownCount),
      counts: this.counts,
      logConfig: this.logConfig,
      textConfig: this.text.config,
      detectorConfig: this.detector.config,
      sequence: this.sequence.toJSON(),
      ...(this.countModel ? { countRelations: this.countModel.toJSON() } : {}),
    };
    return {
      config: this.config,
      vocabulary: this.vocabulary.toJSON(),
      thresholds: this.thresholds,
      metrics: this.metrics,
      dataHash: this.dataHash,
      extra: extra as unknown as Record<string, unknown>,
    };
  }

  /** Writes the model directory atomically (see lib/models/files.ts). */
  async save(dir: string): Promise<void> {
    await saveModelDir(dir, this.content(), this.weights());
  }

  /**
   * An independent copy, as `save` then `load` would give (its own weights and metrics; messages met while
   * scoring are added again when met), with the same directory and load options: feedback fine-tunes it while
   * this model keeps scoring (lib/pipeline/feedback.ts learnRecent).
   */
  clone(): DeepSentry {
    const json = JSON.parse(JSON.stringify(this.content())) as ModelJson;
    const m = DeepSentry.fromJson(json, this.weights().map((w) => ({ ...w, values: w.values.slice() })), `a copy of ${this.directory ?? 'a model in memory'}`);
    m.directory = this.directory;
    m.loadOptions = { ...this.loadOptions };
    return m;
  }

  /**
   * Loads a model directory written by `deepsentry train` (format, checksums and shapes checked: anything
   * wrong is a DS_MODEL error naming the file) and selects the compute backend.
   */
  static async load(dir: string, options: LoadOptions = {}): Promise<DeepSentry> {
    const { json, weights } = await loadModelDir(dir);
    ensureBackend(options);
    const m = DeepSentry.fromJson(json, weights, path.join(path.resolve(dir), 'model.json'));
    m.directory = path.resolve(dir);
    m.loadOptions = pickLoadOptions(options);
    return m;
  }

  /** Rebuilds a model from a loaded model.json and its weights. */
  static fromJson(json: ModelJson, weights: NamedWeight[], source: string): DeepSentry {
    const bad = (what: string) => new DeepSentryError('DS_MODEL', `${source}: ${what}`);
    const extra = json.extra as unknown as ModelExtra | undefined;
    if (!extra || !Array.isArray(extra.messages) || typeof extra.logConfig !== 'object' || typeof extra.textConfig !== 'object' || typeof extra.detectorConfig !== 'object') {
      throw bad('not a DeepSentry pipeline model (extra.messages / logConfig / textConfig / detectorConfig missing): was it written by `deepsentry train`?');
    }
    const th = json.thresholds as ModelThresholds | null;
    if (!th || typeof th !== 'object' || !th.session || typeof th.session.value !== 'number') throw bad('thresholds.session is missing');
    if (!Number.isFinite(th.session.value)) throw bad(`thresholds.session.value is ${th.session.value}, not a finite number`);
    let config: PipelineConfig;
    let logConfig: LogConfig;
    try {
      config = resolvePipelineConfig(json.config, source);
      logConfig = resolveLogConfig(extra.logConfig as unknown as Record<string, unknown>);
    } catch (e) {
      throw bad(`configuration: ${(e as Error).message}`);
    }
    const vocabulary = Vocabulary.fromJSON(json.vocabulary, `${source} vocabulary`);
    const text = TextAutoencoder.fromWeights(extra.textConfig, weights, source);
    const detector = Detector.fromWeights(extra.detectorConfig, weights, source);
    const vec = weights.find((w) => w.name === 'vectors');
    const D = extra.textConfig.latentDim;
    if (!vec || vec.shape.length !== 2 || vec.shape[1] !== D || vec.shape[0] !== FIRST_ID + extra.messages.length) {
      throw bad(`weight "vectors" is missing or not [${FIRST_ID + extra.messages.length}, ${D}]`);
    }
    if (text.config.vocabSize !== vocabulary.size) throw bad(`the text model has ${text.config.vocabSize} token ids but the vocabulary ${vocabulary.size}`);
    const sequence = SequenceModel.fromJSON(extra.sequence, source);
    const countModel = extra.countRelations === undefined ? null : CountModel.fromJSON(extra.countRelations, source);
    return new DeepSentry(config, logConfig, vocabulary, text, detector, extra.messages, vec.values, th, sequence, extra.counts ?? [], (json.metrics ?? {}) as Record<string, unknown>, json.dataHash, countModel);
  }

  /**
   * Opens a scoring session (lib/pipeline/session.ts): push raw lines as they come, `end()` at the end of
   * input. Sessions stay open across pushes until their idle timeout by log time or the end of input, and the
   * scores are `deepsentry score`'s on the same lines. Scoring runs in a worker thread for a model loaded
   * from a directory (in this thread in chunks for one only in memory): the event loop is never held long.
   * `end()` or `close()` releases the worker thread; a session left open keeps it (and the process) alive.
   */
  session(options: ScoringSessionOptions = {}): ScoringSession {
    return new ScoringSession(this, options);
  }

  /**
   * One-shot scoring of a batch of raw log lines, the batch being the whole input: `session()`, one `push`,
   * `end()`. The result is `deepsentry score`'s on the same lines (sessions cut by the idle timeout by log
   * time; at the end of the batch a session's end is censored when the model's sessions have an idle timeout
   * and its lines timestamps). Returns each line event (one per line and session it belongs to, `index` = the
   * line's position in `lines`) and each session key's score (max over its segments, as sessions.csv), with
   * the decision at the saved threshold. For a continuing stream, keep a `session()` open instead.
   */
  async scoreLines(lines: readonly string[], options: ScoringSessionOptions = {}): Promise<ScoreLinesResult> {
    const s = this.session(options);
    try {
      const a = await s.push(lines);
      const b = await s.end();
      const out: ScoreLinesResult = { lines: a.lines, sessions: [], threshold: a.threshold };
      const byKey = new Map<string, ScoreLinesResult['sessions'][number]>();
      for (const seg of [...a.sessions, ...b.sessions]) {
        const k = byKey.get(seg.session);
        if (k === undefined) byKey.set(seg.session, { session: seg.session, score: seg.score, anomaly: false, lines: seg.lines.slice() });
        else {
          if (seg.score > k.score) k.score = seg.score;
          k.lines.push(...seg.lines);
        }
      }
      for (const k of byKey.values()) out.sessions.push({ ...k, lines: k.lines.sort((x, y) => x - y), anomaly: k.score >= out.threshold });
      return out;
    } finally {
      await s.close();
    }
  }

  /** Frees the tfjs variables. */
  dispose(): void {
    this.text.dispose();
    this.detector.dispose();
  }
}
