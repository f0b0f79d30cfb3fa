/**
 * A trained DeepSentry model in memory: lib/models' ScoringModel (message table, text model, detector, score
 * arithmetic) with the log configuration it was trained with (format, masking, sessions) and the fitted
 * thresholds, plus what the pipeline does with it: load and save the model directory, and open scoring sessions
 * (the in-process API) over the live model scorer (lib/live/model_scorer.ts), in this thread or a worker thread.
 */
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import { resolveLogConfig, type LogConfig } from '../logs/config';
import { Vocabulary } from '../logs/vocabulary';
import { Detector, type DetectorConfig } from '../models/detector';
import { loadModelDir, saveModelDir, type ModelContent, type ModelJson } from '../models/files';
import { learnRecent, type FeedbackSummary } from './feedback';
import type { RecentSessions } from '../live/recent_sessions';
import type { FeedbackRequest } from '../live/types';
import type { NamedWeight } from '../models/params';
import { TextAutoencoder, type TextModelConfig } from '../models/text';
import { FIRST_ID, ScoringModel, type ModelThresholds } from '../models/scoring';
import { SequenceModel, type SequenceModelJson } from '../models/sequence';
import { CountModel, type CountModelJson } from '../models/counts';
import { KnownNormal, type KnownNormalJson } from '../models/known_normal';
import { useBackend, type BackendChoice, type BackendSelection } from '../backend/select';
import { ModelScorer, type ModelScorerOptions } from '../live/model_scorer';
import type { LineScorer } from '../live/types';
import { WorkerScorer } from '../live/worker';
import type { Precision } from '../backend/binding';
import { resolvePipelineConfig, type PipelineConfig } from './config';
import { ScoringSession, type ScoringSessionOptions } from './session';

export { FIRST_ID, type ModelThresholds, type SessionExplanation, type SessionInput, type SessionScoresOut } from '../models/scoring';

/** What model.json's `extra` holds for a pipeline model. */
export interface ModelExtra {
  /** masked text of message id FIRST_ID + i (the messages seen in training, then those feedback accepted as normal) */
  messages: string[];
  /** lines per message in the training data (for an accepted message: in the sessions that brought it) */
  counts: number[];
  /** the resolved lib/logs configuration the model parses with (format and session mode fixed) */
  logConfig: LogConfig;
  textConfig: TextModelConfig;
  detectorConfig: DetectorConfig;
  /** the count-based sequence model (see lib/models/sequence.ts) */
  sequence: SequenceModelJson;
  /** the count relations within a session (see lib/models/counts.ts); absent in models trained before they existed */
  countRelations?: CountModelJson;
  /** compositions of sessions known to be normal (see lib/models/known_normal.ts); absent when it holds none */
  knownNormal?: KnownNormalJson;
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

/** What DeepSentry.scoreLines returns. */
export interface ScoreLinesResult {
  /** one entry per input line and session it belongs to (lines that parse into no session have none) */
  lines: Array<{ index: number; session: string; score: number; anomaly: boolean }>;
  /**
   * one entry per session key, in the order their first segment closed (as sessions.csv): max score over its
   * segments (each: its lines and its end when that is scored), and the input indices of its lines. Unlike
   * sessions.csv, a key whose composition the model knows normal (lib/models/known_normal.ts: models trained with
   * normal labels, or given feedback) keeps this score: the streaming scorer reports segments as they close
   */
  sessions: Array<{ session: string; score: number; anomaly: boolean; lines: number[] }>;
  /** the saved threshold the decisions use */
  threshold: number;
}

/** Selects the backend once per process unless the caller already did. */
export function ensureBackend(o: LoadOptions = {}): BackendSelection {
  return useBackend(o.backend ?? 'auto', { ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.precision ? { precision: o.precision } : {}) });
}

export class DeepSentry extends ScoringModel {
  /** set by load: where the model came from */
  directory: string | null = null;
  /** set by load: the backend options it was loaded with (a session's worker thread loads it with them too) */
  loadOptions: LoadOptions = {};
  /**
   * set by training (not saved): the per-key scores of the held-back training sessions the threshold was fitted
   * on, for evaluations that compare threshold rules without retraining (bench/accuracy.ts)
   */
  heldBackScores: Float64Array | null = null;

  /** What model.json holds besides the weights (saved by `save`, copied by `clone`). */
  private content(): ModelContent {
    const known = this.knownMessages();
    const extra: ModelExtra = {
      messages: known.texts,
      counts: known.counts,
      logConfig: this.logConfig,
      textConfig: this.text.config,
      detectorConfig: this.detector.config,
      sequence: this.sequence.toJSON(),
      ...(this.countModel ? { countRelations: this.countModel.toJSON() } : {}),
      ...(this.knownNormal && this.knownNormal.size > 0 ? { knownNormal: this.knownNormal.toJSON() } : {}),
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
   * Learns `req.sessions` (held by a live scorer's `recent`) as normal on a copy of this model, saved as a new
   * version to its directory when it has one (lib/pipeline/feedback.ts learnRecent): the model scorer's
   * `feedback` (POST /feedback) calls it, this model keeps scoring meanwhile.
   */
  learnRecent(recent: RecentSessions, req: FeedbackRequest): Promise<{ model: DeepSentry; summary: FeedbackSummary }> {
    return learnRecent(this, recent, req);
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
   * wrong is a DS_MODEL error naming the file) and selects the compute backend. `files`: loadModelDir(dir)
   * when the caller started reading the directory already (`deepsentry score`: while the modules load).
   */
  static async load(dir: string, options: LoadOptions = {}, files?: ReturnType<typeof loadModelDir>): Promise<DeepSentry> {
    const { json, weights } = await (files ?? loadModelDir(dir));
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
      // A model saved before count relations had a horizon mined them per session, and judges them so.
      const savedScoring = (json.config as { scoring?: Record<string, unknown> } | undefined)?.scoring;
      if (savedScoring !== undefined && savedScoring.countTimeoutMs === undefined) config.scoring.countTimeoutMs = 0;
      // One saved before the count surprise weighed how many relations a session breaks fitted its threshold on the worst alone.
      if (savedScoring !== undefined && savedScoring.countBreadth === undefined) config.scoring.countBreadth = 0;
      // One saved before the threshold could be lifted into a gap was fitted without it (a refit, e.g. bench --reuse, does the same).
      const savedThreshold = (json.config as { threshold?: Record<string, unknown> } | undefined)?.threshold;
      if (savedThreshold !== undefined && savedThreshold.gap === undefined) config.threshold.gap = false;
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
    const m = new DeepSentry(config, logConfig, vocabulary, text, detector, extra.messages, vec.values, th, sequence, extra.counts ?? [], (json.metrics ?? {}) as Record<string, unknown>, json.dataHash, countModel);
    if (extra.knownNormal !== undefined) m.knownNormal = KnownNormal.fromJSON(extra.knownNormal, source);
    return m;
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


  /**
   * The live model scorer (lib/live/model_scorer.ts) over this model, in a worker thread (which loads the model
   * from its directory with the same backend options: the model must have been loaded from one) or in this
   * thread (sharing this model: closing that scorer disposes it).
   */
  openScorer(options: Omit<ModelScorerOptions, 'ownsKey'>, worker: boolean): Promise<LineScorer> {
    if (!worker) return Promise.resolve(new ModelScorer(this, options));
    if (this.directory === null) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'the model was not loaded from a directory (save it and DeepSentry.load it), so a worker thread cannot load it');
    return WorkerScorer.start({ module: MODEL_SCORER_MODULE, exportName: 'createModelScorer', modelDir: this.directory, options: { ...options, ...this.loadOptions } });
  }
}

/** This module's path: a worker thread builds the model scorer from it (`createModelScorer`, see lib/live/worker.ts). */
export const MODEL_SCORER_MODULE = __filename;

/** The ScorerFactory of lib/live for trained models: loads the model directory and wraps it in the live model scorer. */
export async function createModelScorer(modelDir: string, options: ModelScorerOptions & LoadOptions = {}): Promise<ModelScorer> {
  const { backend: _backend, threads: _threads, precision: _precision, ...rest } = options;
  const model = await DeepSentry.load(modelDir, pickLoadOptions(options));
  return new ModelScorer(model, rest);
}
