/**
 * The detector: a bidirectional LSTM reads the first W−1 message vectors of a window (inside one session)
 * and a Dense layer predicts the W-th; the end of a session is an event with its own vector, so a session
 * that stops early (or runs on) deviates too. Each line's score is how badly its message was predicted; a
 * session's score is the maximum over its lines and its end event.
 *
 * Message ids follow lib/logs/windows.ts: 0 = padding before the first line, 1 = end of session, ≥ 2 = a
 * distinct masked message whose vector is row `id` of the vector table the caller passes. Inside the detector
 * every message vector is centred (minus the mean vector of the training messages: autoencoder latents share
 * a large common component — pairwise cosines ~0.99 on HDFS — that would hide their differences), then
 * L2-normalised, and two coordinates are appended: [v̂, 0, 0] for messages,
 * [0…, 1, 0] for the end event and [0…, 0, 1] for padding — so the end event is as far from every message as
 * two messages with orthogonal vectors, and padding is told apart from content.
 *
 * Objectives: `regression` (the prediction error is the chosen distance between predicted and actual
 * vectors — the seed design) or `softmax` (the predicted vector scores every KNOWN message vector by dot
 * product and is trained with cross-entropy on the actual one: next-message prediction as in DeepLog, but over
 * vectors, so a message never seen in training still gets a score). Scores (`ScoreMode`):
 *   distance — distance(predicted, actual)                          (meaningful for regression)
 *   rank     — how many known messages the prediction prefers to the actual one (DeepLog's top-k)
 *   nll      — −log of the actual message's share of a softmax over known messages ∪ {actual}
 *   surprise — nll + rarityWeight · (−log of the message's frequency among the training targets): how
 *              unexpected the message is here AND how rare it is at all (never seen = rarest)
 * where "prefers" uses logit(k) = −distance(pred, k) for regression and pred·k for softmax.
 *
 * Why `surprise` is the default (measured on hdfs-dev, trained on the first half of the blocks in time order,
 * scored on the second, no labels used): nll alone reaches block ROC-AUC 0.89, nll + rarity 0.998. Training is
 * unsupervised, so anomalous sessions in the training data teach the sequence model that their rare messages do
 * follow (with a small probability) in their context; their marginal rarity is the evidence it lacks.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../errors';
import { fusedBiLstm, softmaxCrossEntropy, vectorDistance } from '../backend/ops';
import type { LstmLayerWeights } from '../backend/ops';
import { DISTANCE_METRICS, DistanceMetric } from '../backend/op_names';
import { distance } from '../backend/shared';
import type { BiLstmDense, NativeBinding } from '../backend/binding';
import { activeNativeBinding } from '../backend/select';
import { NamedWeight, ParamSet, sameStamp } from './params';
import { TrainOptions, TrainResult, checkTrainOptions, runTraining, splitItems } from './train';

/** Reserved ids (lib/logs/windows.ts). */
export { PAD_MESSAGE, END_MESSAGE } from '../logs/windows';
import { PAD_MESSAGE, END_MESSAGE, forEachWindow } from '../logs/windows';

export type DetectorObjective = 'regression' | 'softmax';
export type ScoreMode = 'distance' | 'rank' | 'nll' | 'surprise';
export const SCORE_MODES: readonly ScoreMode[] = ['distance', 'rank', 'nll', 'surprise'];
/** How the training loss weighs a distinct window seen n times: n, √n, 1 + ln n, or 1. */
export type WindowWeighting = 'count' | 'sqrt' | 'log' | 'uniform';

export interface DetectorConfig {
  /** message vector dimension (the text model's latentDim) */
  vectorDim: number;
  /** W: the first W−1 messages of a window predict the W-th */
  window: number;
  hiddenSize: number;
  objective: DetectorObjective;
  /** distance for the regression loss and the `distance` score */
  distance: DistanceMetric;
  /** the score scoreSessions reports by default */
  score: ScoreMode;
  /** weight of the rarity term in the `surprise` score */
  rarityWeight: number;
  /**
   * the softmax temperature of the rank/nll/surprise scores: logits are divided by it before the softmax
   * (1 = as trained; > 1 flattens an overconfident prediction)
   */
  temperature?: number;
  weighting: WindowWeighting;
  seed: number;
}

export const DEFAULT_DETECTOR_CONFIG: Omit<DetectorConfig, 'vectorDim'> = {
  window: 10,
  hiddenSize: 64,
  objective: 'softmax',
  distance: 'euclidean',
  score: 'surprise',
  rarityWeight: 1,
  temperature: 1,
  weighting: 'count',
  seed: 42,
};

export const DEFAULT_DETECTOR_TRAIN: TrainOptions = {
  epochs: 40,
  batchSize: 128,
  learningRate: 1e-2,
  clipNorm: 5,
  validationSplit: 0.1,
  patience: 4,
  minDelta: 1e-4,
};

/** The windows of a set of sessions, deduplicated: distinct id windows with how often each occurs. */
export interface WindowSet {
  /** W ids per distinct window, flat */
  ids: Int32Array;
  counts: Float64Array;
  size: number;
}

/** What prepare() builds for the loss: deduplicated windows, their weights, feature and known tables. */
export interface DetectorBatchContext {
  windows: WindowSet;
  weights: Float64Array;
  table: tf.Tensor2D;
  knownT: tf.Tensor2D;
  /** message id → row of the known table (−1 when not known) */
  knownIndex: Int32Array;
  dispose(): void;
}

/** Scores of windows: one entry per window for each score. */
export interface WindowScores {
  distance: Float32Array;
  rank: Float32Array;
  nll: Float32Array;
  surprise: Float32Array;
}

/** Per-session result of scoreSessions. */
export interface SessionScores {
  /** per line of the session, then one more for the end event when the session ended */
  lineScores: Float32Array[];
  /** max of each session's line scores (end event included) */
  sessionScores: Float32Array;
}

function checkConfig(c: DetectorConfig): void {
  for (const k of ['vectorDim', 'window', 'hiddenSize'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected positive integer for detector.${k} but received ${String(c[k])}`);
  }
  if (c.window < 2) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected an integer >= 2 for detector.window but received ${c.window}`);
  if (!DISTANCE_METRICS.includes(c.distance)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected one of ${DISTANCE_METRICS.join(', ')} for detector.distance but received ${String(c.distance)}`);
  if (!['regression', 'softmax'].includes(c.objective)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected regression or softmax for detector.objective but received ${String(c.objective)}`);
  if (!SCORE_MODES.includes(c.score)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected one of ${SCORE_MODES.join(', ')} for detector.score but received ${String(c.score)}`);
  if (!(typeof c.rarityWeight === 'number' && c.rarityWeight >= 0)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a non-negative number for detector.rarityWeight but received ${String(c.rarityWeight)}`);
  if (c.temperature !== undefined && !(typeof c.temperature === 'number' && c.temperature > 0 && Number.isFinite(c.temperature))) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive number for detector.temperature but received ${String(c.temperature)}`);
  if (!['count', 'sqrt', 'log', 'uniform'].includes(c.weighting)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected count, sqrt, log or uniform for detector.weighting but received ${String(c.weighting)}`);
}

/**
 * All windows of the sessions, each distinct id window once with its count. A session's end-event window is
 * included only when `ended` says the session really ended (default: all did).
 */
export function collectWindows(sessions: readonly ArrayLike<number>[], W: number, ended?: readonly boolean[]): WindowSet {
  const index = new Map<string, number>();
  const ids: number[] = [];
  const counts: number[] = [];
  const win = new Int32Array(W);
  sessions.forEach((s, si) => forEachWindow(s, W, win, ended ? ended[si] !== false : true, () => {
    const key = win.join(',');
    const i = index.get(key);
    if (i !== undefined) counts[i]++;
    else {
      index.set(key, counts.length);
      counts.push(1);
      for (let j = 0; j < W; j++) ids.push(win[j]);
    }
  }));
  return { ids: Int32Array.from(ids), counts: Float64Array.from(counts), size: W };
}

export class Detector {
  readonly config: DetectorConfig;
  readonly params: ParamSet;
  /** feature rows of every message seen in training (end event included) [K, vectorDim+2] */
  known: Float32Array = new Float32Array(0);
  /** −log frequency of each known message among the training targets [K] (the rarity of the surprise score) */
  rarity: Float32Array = new Float32Array(0);
  /** the rarity of a message never seen as a target in training */
  unseenRarity = 0;
  /** mean raw vector of the distinct training messages, subtracted before normalising [vectorDim] */
  center: Float32Array;
  training: TrainResult | null = null;
  /** the addon's copy of the weights for predict on the native backend, with the stamp of what it copied */
  private native: { binding: NativeBinding; stamp: readonly DataId[]; model: BiLstmDense } | null = null;

  constructor(config: Partial<DetectorConfig> & { vectorDim: number }) {
    this.config = { ...DEFAULT_DETECTOR_CONFIG, ...config };
    checkConfig(this.config);
    const { vectorDim, hiddenSize: H, seed } = this.config;
    const F = vectorDim + 2;
    this.center = new Float32Array(vectorDim);
    const p = (this.params = new ParamSet(seed));
    for (const dir of ['fw', 'bw']) {
      p.add(`bilstm_${dir}/kernel`, [F, 4 * H], { kind: 'glorotUniform' });
      p.add(`bilstm_${dir}/recurrent_kernel`, [H, 4 * H], { kind: 'glorotUniform' });
      p.add(`bilstm_${dir}/bias`, [4 * H], { kind: 'lstmBias' });
    }
    p.add('output/kernel', [2 * H, F], { kind: 'glorotUniform' });
    p.add('output/bias', [F], { kind: 'zeros' });
  }

  get featureDim(): number {
    return this.config.vectorDim + 2;
  }

  get knownCount(): number {
    return this.known.length / this.featureDim;
  }

  /** The detector's feature table [numIds, vectorDim+2] from a message vector table [numIds, vectorDim]. */
  features(vectors: Float32Array): Float32Array {
    const D = this.config.vectorDim;
    const F = D + 2;
    if (vectors.length % D !== 0) {
      throw new DeepSentryError('DS_SHAPE_MISMATCH', `message vectors: length ${vectors.length} is not a multiple of the vector dimension ${D}`);
    }
    const n = Math.max(2, vectors.length / D);
    const out = new Float32Array(n * F);
    out[PAD_MESSAGE * F + D + 1] = 1;
    out[END_MESSAGE * F + D] = 1;
    const c = this.center;
    for (let m = 2; m < n; m++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += (vectors[m * D + d] - c[d]) ** 2;
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let d = 0; d < D; d++) out[m * F + d] = (vectors[m * D + d] - c[d]) * inv;
    }
    return out;
  }

  /** Mean vector of the distinct messages in `sessions` (each counted once). */
  private trainingCenter(vectors: Float32Array, sessions: readonly ArrayLike<number>[]): Float32Array {
    const D = this.config.vectorDim;
    const rows = vectors.length / D;
    const seen = new Uint8Array(Math.max(rows, 2));
    const c = new Float64Array(D);
    let n = 0;
    for (const s of sessions) {
      for (let i = 0; i < s.length; i++) {
        const id = s[i];
        if (!(Number.isInteger(id) && id >= 2 && id < rows)) {
          throw new DeepSentryError('DS_OUT_OF_RANGE', `detector training sessions: message id ${id} has no row in the vector table (${rows} rows; ids 0 and 1 are reserved)`);
        }
        if (seen[id]) continue;
        seen[id] = 1;
        n++;
        for (let d = 0; d < D; d++) c[d] += vectors[id * D + d];
      }
    }
    return Float32Array.from(c, (v) => (n > 0 ? v / n : 0));
  }

  private checkIds(ids: Int32Array, rows: number, what: string): void {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= rows) {
        throw new DeepSentryError('DS_OUT_OF_RANGE', `${what}: message id ${ids[i]} has no row in the vector table (${rows} rows)`);
      }
    }
  }

  private bilstm(dir: 'fw' | 'bw'): LstmLayerWeights {
    return {
      kernel: this.params.get(`bilstm_${dir}/kernel`) as tf.Tensor2D,
      recurrentKernel: this.params.get(`bilstm_${dir}/recurrent_kernel`) as tf.Tensor2D,
      bias: this.params.get(`bilstm_${dir}/bias`) as tf.Tensor1D,
    };
  }

  /** Predicted feature vectors [B, vectorDim+2] for windows (W ids each; the last id, the target, is not read). */
  private predictTensor(table: tf.Tensor2D, windowIds: Int32Array, B: number): tf.Tensor2D {
    const W = this.config.window;
    const F = this.featureDim;
    // The feature table is a constant (no gradient): copy rows directly instead of a tfjs gather.
    const x = gatherWindows(table.dataSync() as Float32Array, windowIds, B, W, F, new Float32Array(B * (W - 1) * F));
    // the windows' vectors are data: the backward pass computes the weight gradients only
    const r = fusedBiLstm(tf.tensor3d(x, [B, W - 1, F]), this.bilstm('fw'), this.bilstm('bw'), { inputGradients: false });
    // [hFw, hBw]·K = hFw·K[:H] + hBw·K[H:], without a concat (whose gradient, a split, is slow on tfjs-cpu).
    const H = this.config.hiddenSize;
    const k = this.params.get('output/kernel');
    const kFw = tf.slice(k, [0, 0], [H, F]);
    const kBw = tf.slice(k, [H, 0], [H, F]);
    return tf.add(tf.add(tf.matMul(r.hFw, kFw), tf.matMul(r.hBw, kBw)), this.params.get('output/bias')) as tf.Tensor2D;
  }

  /** Weighted mean training loss of windows. */
  private lossOf(table: tf.Tensor2D, knownT: tf.Tensor2D, knownIndex: Int32Array, ws: WindowSet, items: number[], weights: Float64Array): tf.Scalar {
    const W = ws.size;
    const B = items.length;
    const ids = new Int32Array(B * W);
    const w = new Float32Array(B);
    let total = 0;
    items.forEach((it, b) => {
      ids.set(ws.ids.subarray(it * W, it * W + W), b * W);
      w[b] = weights[it];
      total += weights[it];
    });
    const pred = this.predictTensor(table, ids, B);
    const targets = new Int32Array(B);
    for (let b = 0; b < B; b++) targets[b] = ids[b * W + W - 1];
    let per: tf.Tensor1D;
    if (this.config.objective === 'softmax') {
      const labels = Int32Array.from(targets, (t) => knownIndex[t]);
      const logits = tf.matMul(pred, knownT, false, true) as tf.Tensor2D;
      per = softmaxCrossEntropy(logits, tf.tensor1d(labels, 'int32'), tf.tensor1d(w));
    } else {
      const actual = tf.gather(table, tf.tensor1d(targets, 'int32')) as tf.Tensor2D;
      per = tf.mul(vectorDistance(pred, actual, this.config.distance), tf.tensor1d(w));
    }
    return tf.div(tf.sum(per), total) as tf.Scalar;
  }

  /**
   * Sets the centre and the known set from training sessions and builds what the loss needs: the feature
   * table, the deduplicated windows and their weights. `ended[i] = false` marks a session that was still open
   * when the input stopped (e.g. closed by the end of a file rather than by an idle timeout): its end is not an
   * event, so it gets no end-event window. On HDFS, blocks created late in the log have not been deleted yet
   * when the log stops; scoring their "end" would flag a third of them (measured).
   * The caller disposes the returned context.
   */
  prepare(vectors: Float32Array, sessions: readonly ArrayLike<number>[], ended?: readonly boolean[]): DetectorBatchContext {
    if (sessions.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'the detector needs at least one session to train on');
    if (ended && ended.length !== sessions.length) {
      throw new DeepSentryError('DS_SHAPE_MISMATCH', `ended has ${ended.length} entries for ${sessions.length} sessions`);
    }
    this.center = this.trainingCenter(vectors, sessions);
    const feats = this.features(vectors);
    const F = this.featureDim;
    const rows = feats.length / F;
    const ws = collectWindows(sessions, this.config.window, ended);
    this.checkIds(ws.ids, rows, 'detector training sessions');
    // Known set: every id that is a target in training, and the end event.
    const knownIndex = new Int32Array(rows).fill(-1);
    const knownIds: number[] = [END_MESSAGE];
    knownIndex[END_MESSAGE] = 0;
    for (let i = 0; i < ws.counts.length; i++) {
      const t = ws.ids[i * ws.size + ws.size - 1];
      if (knownIndex[t] < 0) {
        knownIndex[t] = knownIds.length;
        knownIds.push(t);
      }
    }
    this.known = new Float32Array(knownIds.length * F);
    knownIds.forEach((id, k) => this.known.set(feats.subarray(id * F, id * F + F), k * F));
    // Rarity: −log((n + ½)/(N + 1)) over target occurrences (every line once, and every real session end).
    const n = new Float64Array(knownIds.length);
    let total = 0;
    for (let i = 0; i < ws.counts.length; i++) {
      n[knownIndex[ws.ids[i * ws.size + ws.size - 1]]] += ws.counts[i];
      total += ws.counts[i];
    }
    this.rarity = Float32Array.from(n, (c) => -Math.log((c + 0.5) / (total + 1)));
    this.unseenRarity = -Math.log(0.5 / (total + 1));
    const weights = this.weigh(ws.counts);
    const table = tf.tensor2d(feats, [rows, F]);
    const knownT = tf.tensor2d(this.known, [knownIds.length, F]);
    return {
      windows: ws,
      weights,
      table,
      knownT,
      knownIndex,
      dispose: () => {
        table.dispose();
        knownT.dispose();
      },
    };
  }

  /**
   * Weighted mean loss over distinct windows `items` of a prepared context (all by default): what training
   * minimises, differentiable through tf.variableGrads (benchmarks time exactly this).
   */
  loss(ctx: DetectorBatchContext, items?: number[]): tf.Scalar {
    const all = items ?? Array.from({ length: ctx.windows.counts.length }, (_, i) => i);
    return this.lossOf(ctx.table, ctx.knownT, ctx.knownIndex, ctx.windows, all, ctx.weights);
  }

  /**
   * Trains on sessions of message ids (each a sequence of ids ≥ 2 indexing `vectors`, a [numIds, vectorDim]
   * table whose rows 0 and 1 are ignored). Windows are deduplicated and weighted by `config.weighting`; the
   * validation split holds out sessions. `ended`: see prepare().
   */
  async fit(vectors: Float32Array, sessions: readonly ArrayLike<number>[], options: TrainOptions & { ended?: readonly boolean[] } = {}): Promise<TrainResult> {
    const o = { ...DEFAULT_DETECTOR_TRAIN, seed: this.config.seed, ...options };
    checkTrainOptions(o);
    if (options.ended && options.ended.length !== sessions.length) {
      throw new DeepSentryError('DS_SHAPE_MISMATCH', `ended has ${options.ended.length} entries for ${sessions.length} sessions`);
    }
    // Validation holds out whole SESSIONS: their windows, weighted by count, estimate the loss on new
    // sessions. (Holding out distinct windows instead measures mostly the rare ones: it stopped training
    // after two epochs on HDFS.)
    const split = splitItems(sessions.length, o.validationSplit ?? 0, o.seed ?? 42);
    const pick = <T>(a: readonly T[] | undefined, idx: number[]) => (a ? idx.map((i) => a[i]) : undefined);
    const ctx = this.prepare(vectors, split.train.map((i) => sessions[i]), pick(options.ended, split.train));
    const val = split.val.length > 0 ? this.heldOutContext(ctx, split.val.map((i) => sessions[i]), pick(options.ended, split.val)) : null;
    return this.runOn(ctx, val, o);
  }

  /** Runs the training loop on a prepared context (validated on `val` when given) and disposes the context. */
  private async runOn(ctx: DetectorBatchContext, val: DetectorBatchContext | null, o: TrainOptions): Promise<TrainResult> {
    const all = (c: DetectorBatchContext) => Array.from({ length: c.windows.counts.length }, (_, i) => i);
    try {
      this.training = await runTraining(
        {
          model: 'detector',
          unit: 'windows',
          params: this.params,
          train: all(ctx),
          val: val && val.windows.counts.length > 0 ? all(val) : [],
          batchLoss: (items) => this.loss(ctx, items),
          evalLoss: (items) => {
            const v = val as DetectorBatchContext;
            let sum = 0;
            let wsum = 0;
            for (let s = 0; s < items.length; s += 1024) {
              const chunk = items.slice(s, s + 1024);
              const cw = chunk.reduce((acc, i) => acc + v.weights[i], 0);
              sum += tf.tidy(() => this.loss(v, chunk).dataSync()[0]) * cw;
              wsum += cw;
            }
            return sum / wsum;
          },
        },
        o,
      );
    } finally {
      ctx.dispose();
    }
    return this.training;
  }

  /** Row of the known table holding feature row `f` of `feats` (the match scoring uses), or −1. */
  private knownRow(feats: Float32Array, id: number): number {
    const F = this.featureDim;
    for (let k = 0; k < this.knownCount; k++) if (distance('squared', this.known, k * F, feats, id * F, F) < 1e-10) return k;
    return -1;
  }

  /**
   * Feedback that sessions are normal, before fineTune: every target of `sessions` (their lines, and their
   * ends where `ended`) counts as seen `times` more times in training. A target the detector never saw becomes known
   * (a class of the softmax), and the rarity of each target is recomputed with its new count — the counts are
   * recovered from the saved rarities (prepare: rarity = −ln((n + ½)/(N + 1)), unseen = −ln(½/(N + 1))).
   * The centre stays: every saved feature row keeps its meaning. Returns how many targets became known.
   */
  learnTargets(vectors: Float32Array, sessions: readonly ArrayLike<number>[], ended?: readonly boolean[], times = 1): number {
    if (!(Number.isInteger(times) && times >= 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a positive integer for the times each target counts but received ${String(times)}`);
    if (this.knownCount === 0) throw new DeepSentryError('DS_MODEL', 'the detector is not trained (no known messages)');
    const feats = this.features(vectors);
    const F = this.featureDim;
    const ws = collectWindows(sessions, this.config.window, ended);
    this.checkIds(ws.ids, feats.length / F, 'feedback sessions');
    const total = 0.5 * Math.exp(this.unseenRarity); // N + 1
    const n = Array.from(this.rarity, (r) => total * Math.exp(-r) - 0.5);
    let added = 0;
    let extra = 0;
    for (let i = 0; i < ws.counts.length; i++) {
      const t = ws.ids[i * ws.size + ws.size - 1];
      let k = this.knownRow(feats, t);
      if (k < 0) {
        k = this.knownCount;
        const known = new Float32Array((k + 1) * F);
        known.set(this.known);
        known.set(feats.subarray(t * F, t * F + F), k * F);
        this.known = known;
        n.push(0);
        added++;
      }
      n[k] += times * ws.counts[i];
      extra += times * ws.counts[i];
    }
    const N1 = total + extra;
    this.rarity = Float32Array.from(n, (c) => -Math.log((c + 0.5) / N1));
    this.unseenRarity = -Math.log(0.5 / N1);
    return added;
  }

  /**
   * Continues training from the current weights on `sessions` (feedback: sessions learnt as normal mixed with a
   * replay of normal ones), keeping the centre, the known set and the rarities (learnTargets updates those
   * first). Windows whose target is not known are left out. No validation split unless options ask for one.
   */
  async fineTune(vectors: Float32Array, sessions: readonly ArrayLike<number>[], options: TrainOptions & { ended?: readonly boolean[] } = {}): Promise<TrainResult> {
    if (this.knownCount === 0) throw new DeepSentryError('DS_MODEL', 'the detector is not trained (no known messages)');
    const o = { ...DEFAULT_DETECTOR_TRAIN, validationSplit: 0, seed: this.config.seed, ...options };
    checkTrainOptions(o);
    if (sessions.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'fine-tuning the detector needs at least one session');
    const feats = this.features(vectors);
    const F = this.featureDim;
    const rows = feats.length / F;
    const knownIndex = new Int32Array(rows).fill(-1);
    for (let id = 1; id < rows; id++) if (id !== PAD_MESSAGE) knownIndex[id] = this.knownRow(feats, id);
    const table = tf.tensor2d(feats, [rows, F]);
    const knownT = tf.tensor2d(this.known, [this.knownCount, F]);
    const base: DetectorBatchContext = { windows: { ids: new Int32Array(0), counts: new Float64Array(0), size: this.config.window }, weights: new Float64Array(0), table, knownT, knownIndex, dispose: () => undefined };
    const split = splitItems(sessions.length, o.validationSplit ?? 0, o.seed ?? 42);
    const pick = <T>(a: readonly T[] | undefined, idx: number[]) => (a ? idx.map((i) => a[i]) : undefined);
    const ctx = { ...this.heldOutContext(base, split.train.map((i) => sessions[i]), pick(options.ended, split.train)), dispose: () => { table.dispose(); knownT.dispose(); } };
    if (ctx.windows.counts.length === 0) {
      ctx.dispose();
      throw new DeepSentryError('DS_INVALID_ARGUMENT', 'fine-tuning the detector: none of the sessions has a window whose target the detector knows');
    }
    const val = split.val.length > 0 ? this.heldOutContext(ctx, split.val.map((i) => sessions[i]), pick(options.ended, split.val)) : null;
    return this.runOn(ctx, val, o);
  }

  /**
   * The windows of held-out sessions against a training context (same feature table and known set).
   * Windows whose target the training sessions never saw are left out: the softmax objective has no class
   * for them (they are what the scores flag).
   */
  private heldOutContext(ctx: DetectorBatchContext, sessions: readonly ArrayLike<number>[], ended?: readonly boolean[]): DetectorBatchContext {
    const W = this.config.window;
    const rows = ctx.knownIndex.length;
    const raw = collectWindows(sessions, W, ended);
    this.checkIds(raw.ids, rows, 'detector validation sessions');
    const ids: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < raw.counts.length; i++) {
      if (ctx.knownIndex[raw.ids[i * W + W - 1]] < 0) continue;
      for (let j = 0; j < W; j++) ids.push(raw.ids[i * W + j]);
      counts.push(raw.counts[i]);
    }
    const windows: WindowSet = { ids: Int32Array.from(ids), counts: Float64Array.from(counts), size: W };
    return { windows, weights: this.weigh(windows.counts), table: ctx.table, knownT: ctx.knownT, knownIndex: ctx.knownIndex, dispose: () => undefined };
  }

  private weigh(counts: Float64Array): Float64Array {
    return Float64Array.from(counts, (c) => {
      switch (this.config.weighting) {
        case 'count':
          return c;
        case 'sqrt':
          return Math.sqrt(c);
        case 'log':
          return 1 + Math.log(c);
        default:
          return 1;
      }
    });
  }

  /**
   * The softmax temperature that best predicts `sessions` (temperature scaling, Guo et al. 2017): the T > 0
   * minimising the mean −log share of each window's actual message in a softmax of logits / T, over every
   * window of the sessions (the end events where `ended`). Fitted on sessions the detector was not trained on,
   * it measures how overconfident the trained detector is. Searched on ln T in [ln 0.25, ln 16] (golden
   * section after a coarse grid).
   */
  fitTemperature(vectors: Float32Array, sessions: readonly ArrayLike<number>[], ended?: readonly boolean[]): number {
    if (this.knownCount === 0) throw new DeepSentryError('DS_MODEL', 'the detector is not trained (no known messages)');
    const ws = collectWindows(sessions, this.config.window, ended);
    const n = ws.counts.length;
    if (n === 0) return 1;
    const W = this.config.window;
    const F = this.featureDim;
    const K = this.knownCount;
    const pred = this.predict(vectors, ws.ids, n);
    const feats = this.features(vectors);
    const softmax = this.config.objective === 'softmax';
    const metric = this.config.distance;
    // Raw logits (T = 1) of each window: K known messages, then the actual one; own is the actual one's.
    const logits = new Float64Array(n * (K + 1));
    for (let i = 0; i < n; i++) {
      const a = ws.ids[i * W + W - 1] * F;
      for (let k = 0; k <= K; k++) {
        const [b, bo] = k < K ? [this.known, k * F] : [feats, a];
        let l = 0;
        if (softmax) for (let d = 0; d < F; d++) l += pred[i * F + d] * b[bo + d];
        else l = -distance(metric, pred, i * F, b, bo, F);
        logits[i * (K + 1) + k] = l;
      }
    }
    const known = new Uint8Array(n);
    for (let i = 0; i < n; i++) known[i] = this.knownRow(feats, ws.ids[i * W + W - 1]) >= 0 ? 1 : 0;
    let total = 0;
    for (let i = 0; i < n; i++) total += ws.counts[i];
    const meanNll = (lnT: number): number => {
      const inv = Math.exp(-lnT);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const o = i * (K + 1);
        const own = logits[o + K] * inv;
        let mx = own;
        for (let k = 0; k < K; k++) mx = Math.max(mx, logits[o + k] * inv);
        let z = known[i] ? 0 : Math.exp(own - mx);
        for (let k = 0; k < K; k++) z += Math.exp(logits[o + k] * inv - mx);
        sum += ws.counts[i] * (mx + Math.log(z) - own);
      }
      return sum / total;
    };
    const lo = Math.log(0.25);
    const hi = Math.log(16);
    const steps = 12;
    let best = 0;
    let bestV = Infinity;
    for (let s = 0; s <= steps; s++) {
      const x = lo + ((hi - lo) * s) / steps;
      const v = meanNll(x);
      if (v < bestV) [best, bestV] = [x, v];
    }
    let a = Math.max(lo, best - (hi - lo) / steps);
    let b = Math.min(hi, best + (hi - lo) / steps);
    const g = (Math.sqrt(5) - 1) / 2;
    for (let it = 0; it < 30; it++) {
      const c = b - g * (b - a);
      const d = a + g * (b - a);
      if (meanNll(c) < meanNll(d)) b = d;
      else a = c;
    }
    return Math.exp((a + b) / 2);
  }

  /**
   * Predicted feature vectors [count, vectorDim+2] for `count` windows of W ids (flat). On the native CPU
   * backend each batch is one BiLstmDense call of the addon (the BiLSTM's final states and the output layer,
   * at the addon's precision tier); elsewhere (tfjs cpu, CUDA) the same function through tfjs ops. The two
   * differ in the last bits: the addon computes [hFw, hBw]·K as one product, predictTensor as hFw·K[:H] +
   * hBw·K[H:].
   */
  predict(vectors: Float32Array, windows: Int32Array, count: number, batchSize = 1024): Float32Array {
    const feats = this.features(vectors);
    const F = this.featureDim;
    const W = this.config.window;
    if (windows.length !== count * W) throw new DeepSentryError('DS_SHAPE_MISMATCH', `predict: ${count} windows of ${W} ids need ${count * W} ids but received ${windows.length}`);
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `predict: expected a positive integer batch size but received ${String(batchSize)}`);
    this.checkIds(windows, feats.length / F, 'predict');
    const out = new Float32Array(count * F);
    const native = activeNativeBinding();
    if (native) {
      const model = this.nativeModel(native);
      const T = W - 1;
      const x = new Float32Array(Math.min(batchSize, count) * T * F);
      for (let s = 0; s < count; s += batchSize) {
        const B = Math.min(batchSize, count - s);
        const xb = gatherWindows(feats, windows.subarray(s * W, (s + B) * W), B, W, F, x.subarray(0, B * T * F));
        model.forward({ batch: B, steps: T, x: xb, pred: out.subarray(s * F, (s + B) * F) });
      }
      return out;
    }
    const table = tf.tensor2d(feats, [feats.length / F, F]);
    try {
      for (let s = 0; s < count; s += batchSize) {
        const B = Math.min(batchSize, count - s);
        // tidy returns the tensor, not its dataSync() array: tidy walks whatever it returns looking for
        // tensors, element by element for a typed array (40% of live scoring time before this).
        const t = tf.tidy(() => this.predictTensor(table, windows.subarray(s * W, (s + B) * W), B));
        try {
          out.set(t.dataSync(), s * F);
        } finally {
          t.dispose();
        }
      }
    } finally {
      table.dispose();
    }
    return out;
  }

  /** All three scores of `count` windows (flat W ids each; the last id is the actual message). */
  scoreWindows(vectors: Float32Array, windows: Int32Array, count: number): WindowScores {
    if (this.knownCount === 0) throw new DeepSentryError('DS_MODEL', 'the detector is not trained (no known messages)');
    const pred = this.predict(vectors, windows, count);
    const feats = this.features(vectors);
    const F = this.featureDim;
    const W = this.config.window;
    const K = this.knownCount;
    const known = this.known;
    const metric = this.config.distance;
    const softmax = this.config.objective === 'softmax';
    const invT = 1 / (this.config.temperature ?? 1);
    const logit = (a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number) => {
      if (!softmax) return -distance(metric, a, ao, b, bo, F) * invT;
      let s = 0;
      for (let d = 0; d < F; d++) s += a[ao + d] * b[bo + d];
      return s * invT;
    };
    const res: WindowScores = { distance: new Float32Array(count), rank: new Float32Array(count), nll: new Float32Array(count), surprise: new Float32Array(count) };
    const alpha = this.config.rarityWeight;
    const logits = new Float64Array(K + 1);
    for (let i = 0; i < count; i++) {
      const a = windows[i * W + W - 1] * F;
      const po = i * F;
      res.distance[i] = distance(metric, pred, po, feats, a, F);
      const own = logit(pred, po, feats, a);
      let rank = 0;
      let isKnown = false;
      let rarity = this.unseenRarity;
      let mx = own;
      for (let k = 0; k < K; k++) {
        const l = logit(pred, po, known, k * F);
        logits[k] = l;
        if (l > own) rank++;
        if (l > mx) mx = l;
        if (!isKnown && distance('squared', known, k * F, feats, a, F) < 1e-10) {
          isKnown = true;
          rarity = this.rarity[k];
        }
      }
      let sum = isKnown ? 0 : Math.exp(own - mx);
      for (let k = 0; k < K; k++) sum += Math.exp(logits[k] - mx);
      res.rank[i] = rank;
      res.nll[i] = mx + Math.log(sum) - own;
      res.surprise[i] = res.nll[i] + alpha * rarity;
    }
    return res;
  }

  /**
   * Scores sessions: every line (the window ending at it) and, for sessions that ended (`ended`, default
   * all), the end event, with `mode` (default config.score). Identical windows are scored once.
   */
  scoreSessions(vectors: Float32Array, sessions: readonly ArrayLike<number>[], mode: ScoreMode = this.config.score, ended?: readonly boolean[]): SessionScores {
    if (ended && ended.length !== sessions.length) throw new DeepSentryError('DS_SHAPE_MISMATCH', `ended has ${ended.length} entries for ${sessions.length} sessions`);
    if (!SCORE_MODES.includes(mode)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected one of ${SCORE_MODES.join(', ')} for score mode but received ${String(mode)}`);
    const W = this.config.window;
    const ws = collectWindows(sessions, W, ended);
    const scores = this.scoreWindows(vectors, ws.ids, ws.counts.length)[mode];
    const index = new Map<string, number>();
    for (let i = 0; i < ws.counts.length; i++) index.set(ws.ids.subarray(i * W, i * W + W).join(','), i);
    const win = new Int32Array(W);
    const lineScores: Float32Array[] = [];
    const sessionScores = new Float32Array(sessions.length);
    sessions.forEach((s, si) => {
      const end = ended ? ended[si] !== false : true;
      const out = new Float32Array(s.length + (end ? 1 : 0));
      let mx = -Infinity;
      forEachWindow(s, W, win, end, (t) => {
        out[t] = scores[index.get(win.join(',')) as number];
        if (out[t] > mx) mx = out[t];
      });
      lineScores.push(out);
      sessionScores[si] = mx;
    });
    return { lineScores, sessionScores };
  }

  weights(): NamedWeight[] {
    const w = this.params.snapshot().map((x) => ({ ...x, name: `detector/${x.name}` }));
    w.push({ name: 'detector/known', shape: [this.knownCount, this.featureDim], values: this.known.slice() });
    w.push({ name: 'detector/center', shape: [this.config.vectorDim], values: this.center.slice() });
    w.push({ name: 'detector/rarity', shape: [this.knownCount + 1], values: Float32Array.from([...this.rarity, this.unseenRarity]) });
    return w;
  }

  static fromWeights(config: DetectorConfig, weights: NamedWeight[], source = 'model'): Detector {
    const d = new Detector(config);
    const mine = weights.filter((w) => w.name.startsWith('detector/')).map((w) => ({ ...w, name: w.name.slice(9) }));
    d.params.restore(mine.filter((w) => !['known', 'center', 'rarity'].includes(w.name)), source);
    const known = mine.find((w) => w.name === 'known');
    if (!known || known.shape.length !== 2 || known.shape[1] !== d.featureDim) {
      throw new DeepSentryError('DS_MODEL', `${source}: weight detector/known is missing or not [K, ${d.featureDim}]`);
    }
    d.known = known.values.slice();
    const center = mine.find((w) => w.name === 'center');
    if (!center || center.values.length !== d.config.vectorDim) throw new DeepSentryError('DS_MODEL', `${source}: weight detector/center is missing or not [${d.config.vectorDim}]`);
    d.center = center.values.slice();
    const rarity = mine.find((w) => w.name === 'rarity');
    if (!rarity || rarity.values.length !== d.knownCount + 1) throw new DeepSentryError('DS_MODEL', `${source}: weight detector/rarity is missing or not [${d.knownCount + 1}]`);
    d.rarity = rarity.values.slice(0, d.knownCount);
    d.unseenRarity = rarity.values[d.knownCount];
    return d;
  }

  /**
   * The addon's BiLstmDense over the current weights. It holds copies, so it is kept only while the weights
   * are the ones it copied (ParamSet.stamp: any write — a training step, fine-tuning, restore — gives a new
   * stamp) and rebuilt otherwise.
   */
  private nativeModel(binding: NativeBinding): BiLstmDense {
    const stamp = this.params.stamp();
    if (this.native && this.native.binding === binding && sameStamp(this.native.stamp, stamp)) return this.native.model;
    const values = (name: string) => this.params.get(name).dataSync() as Float32Array;
    const lstm = (dir: 'fw' | 'bw') => ({
      kernel: values(`bilstm_${dir}/kernel`),
      recurrentKernel: values(`bilstm_${dir}/recurrent_kernel`),
      bias: values(`bilstm_${dir}/bias`),
    });
    const F = this.featureDim;
    const model = new binding.BiLstmDense({
      inputSize: F,
      hiddenSize: this.config.hiddenSize,
      outputSize: F,
      forward: lstm('fw'),
      backward: lstm('bw'),
      dense: { kernel: values('output/kernel'), bias: values('output/bias') },
    });
    this.native = { binding, stamp, model };
    return model;
  }

  dispose(): void {
    this.native = null;
    this.params.dispose();
  }
}

/**
 * The feature rows of the first W−1 ids of each of B windows (W ids each, flat) into x [B, W−1, F]: the
 * detector's input, gathered in JS (the table is a constant, no gradient flows to it).
 */
function gatherWindows(rows: Float32Array, windowIds: Int32Array, B: number, W: number, F: number, x: Float32Array): Float32Array {
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < W - 1; j++) {
      const id = windowIds[b * W + j];
      x.set(rows.subarray(id * F, id * F + F), (b * (W - 1) + j) * F);
    }
  }
  return x;
}
