/**
 * The text autoencoder: embedding → encoder LSTM (optionally bidirectional) → latent vector z = tanh(W·h + b)
 * → decoder LSTM started from tanh(W'·z + b'), teacher-forced on [<eos>, t1 … tn] to reproduce [t1 … tn, <eos>],
 * softmax cross-entropy over the vocabulary. Trains on DISTINCT token sequences (masked messages repeat
 * millions of times but there are few of them). `encode` gives the message vectors the detector reads;
 * `reconstructionError` is a novelty score for messages never seen in training.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../errors';
import { denseSoftmaxCrossEntropy, fusedBiLstm, fusedLstm } from '../backend/ops';
import { activeNativeBinding } from '../backend/select';
import { LstmLayerWeights } from '../backend/ops';
import { NamedWeight, ParamSet, subSeed } from './params';
import { mulberry32 } from '../backend/reference';
import { TrainOptions, TrainResult, runTraining, splitItems, checkTrainOptions } from './train';

/** Token ids: lib/logs' Vocabulary defines them. */
import { EOS_ID, UNK_ID } from '../logs/vocabulary';
export { PAD_ID, EOS_ID, UNK_ID } from '../logs/vocabulary';

export interface TextModelConfig {
  /** number of token ids (the vocabulary size, specials included) */
  vocabSize: number;
  embeddingDim: number;
  /** hidden size of encoder and decoder LSTMs */
  hiddenSize: number;
  /** dimension of the message vectors */
  latentDim: number;
  /** bidirectional encoder (latent from both final states) */
  bidirectional: boolean;
  /**
   * standard deviation of the Gaussian noise added to the latent vector while training (seeded). Without
   * it the autoencoder is free to squeeze all messages onto one line of the latent space, a few thousandths
   * apart (measured on HDFS: pairwise cosines ±0.99) — decodable, but useless as a vector for the detector.
   * With it, messages must sit further apart than the noise, so they spread over the space.
   */
  latentNoise: number;
  /**
   * while training, this fraction of the decoder's teacher-forced input tokens is replaced by <unk> (seeded).
   * A teacher-forced LSTM decoder otherwise predicts most tokens from the previous ones and barely reads the
   * latent vector, which then carries almost nothing (measured: all HDFS messages on one line).
   */
  wordDropout: number;
  /** longest token sequence the model takes (longer ones are cut) */
  maxTokens: number;
  seed: number;
}

export const DEFAULT_TEXT_CONFIG: Omit<TextModelConfig, 'vocabSize'> = {
  embeddingDim: 32,
  hiddenSize: 64,
  latentDim: 128,
  bidirectional: false,
  latentNoise: 0.1,
  wordDropout: 0.5,
  maxTokens: 64,
  seed: 42,
};

/** Text-model training defaults: few distinct messages, so full-batch-ish steps and many epochs. */
export const DEFAULT_TEXT_TRAIN: TrainOptions = {
  epochs: 200,
  batchSize: 16,
  learningRate: 1e-2,
  clipNorm: 5,
  patience: 20,
  minDelta: 1e-3,
};

/**
 * Below this many distinct messages the default validation split is 0 (early stopping then watches the
 * training loss): held-out messages of a few dozen templates are templates the model never sees, so their
 * loss measures nothing but novelty and would stop training long before the known ones are learnt.
 */
export const TEXT_MIN_MESSAGES_FOR_VALIDATION = 500;

function checkConfig(c: TextModelConfig): void {
  for (const k of ['vocabSize', 'embeddingDim', 'hiddenSize', 'latentDim', 'maxTokens'] as const) {
    const v = c[k];
    if (!Number.isInteger(v) || v < 1) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected positive integer for text.${k} but received ${String(v)}`);
  }
  if (!(typeof c.wordDropout === 'number' && c.wordDropout >= 0 && c.wordDropout <= 1)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a number in [0, 1] for text.wordDropout but received ${String(c.wordDropout)}`);
  if (!(typeof c.latentNoise === 'number' && c.latentNoise >= 0)) throw new DeepSentryError('DS_INVALID_ARGUMENT', `Expected a non-negative number for text.latentNoise but received ${String(c.latentNoise)}`);
  if (c.vocabSize < 3) throw new DeepSentryError('DS_INVALID_ARGUMENT', `text.vocabSize must include <pad>, <eos>, <unk> (>= 3) but is ${c.vocabSize}`);
}

/** Padded batch of sequences: ids [B,T], lengths [B]. */
interface Packed {
  ids: Int32Array;
  lengths: Int32Array;
  B: number;
  T: number;
}

export class TextAutoencoder {
  readonly config: TextModelConfig;
  readonly params: ParamSet;
  /** metrics of the last fit (saved in model.json) */
  training: (TrainResult & { refitEpochs: number | null }) | null = null;
  /** training steps taken: seeds the latent noise */
  private noiseStep = 0;

  constructor(config: Partial<TextModelConfig> & { vocabSize: number }) {
    this.config = { ...DEFAULT_TEXT_CONFIG, ...config };
    checkConfig(this.config);
    const { vocabSize: V, embeddingDim: E, hiddenSize: H, latentDim: D, bidirectional, seed } = this.config;
    const p = (this.params = new ParamSet(seed));
    p.add('embedding', [V, E], { kind: 'uniform', limit: 0.1 });
    const lstm = (prefix: string, I: number) => {
      p.add(`${prefix}/kernel`, [I, 4 * H], { kind: 'glorotUniform' });
      p.add(`${prefix}/recurrent_kernel`, [H, 4 * H], { kind: 'glorotUniform' });
      p.add(`${prefix}/bias`, [4 * H], { kind: 'lstmBias' });
    };
    lstm('encoder_fw', E);
    if (bidirectional) lstm('encoder_bw', E);
    p.add('latent/kernel', [bidirectional ? 2 * H : H, D], { kind: 'glorotUniform' });
    p.add('latent/bias', [D], { kind: 'zeros' });
    p.add('decoder_init/kernel', [D, H], { kind: 'glorotUniform' });
    p.add('decoder_init/bias', [H], { kind: 'zeros' });
    // The decoder reads the embedding of the previous token plus a projection of z at every step (a sum
    // rather than a concatenation: the gradient of a concat, a split, cost 40% of a step on tfjs-cpu).
    p.add('decoder_cond/kernel', [D, E], { kind: 'glorotUniform' });
    lstm('decoder', E);
    p.add('output/kernel', [H, V], { kind: 'glorotUniform' });
    p.add('output/bias', [V], { kind: 'zeros' });
  }

  private lstm(prefix: string): LstmLayerWeights {
    return {
      kernel: this.params.get(`${prefix}/kernel`) as tf.Tensor2D,
      recurrentKernel: this.params.get(`${prefix}/recurrent_kernel`) as tf.Tensor2D,
      bias: this.params.get(`${prefix}/bias`) as tf.Tensor1D,
    };
  }

  /** Checks ids and cuts sequences to maxTokens. */
  private pack(seqs: readonly ArrayLike<number>[], extra = 0): Packed {
    const { vocabSize: V, maxTokens } = this.config;
    const B = seqs.length;
    let T = 1;
    for (const s of seqs) T = Math.max(T, Math.min(s.length, maxTokens) + extra);
    const ids = new Int32Array(B * T);
    const lengths = new Int32Array(B);
    seqs.forEach((s, b) => {
      const n = Math.min(s.length, maxTokens);
      for (let t = 0; t < n; t++) {
        const id = s[t];
        if (!Number.isInteger(id) || id < 0 || id >= V) {
          throw new DeepSentryError('DS_OUT_OF_RANGE', `token id ${id} at position ${t} of sequence ${b} is outside the vocabulary [0, ${V})`);
        }
        ids[b * T + t] = id;
      }
      lengths[b] = n;
    });
    return { ids, lengths, B, T };
  }

  /** The latent vectors z [B,D] of a packed batch (differentiable). */
  private latent(p: Packed): tf.Tensor2D {
    const emb = this.params.get('embedding');
    const x = tf.gather(emb, tf.tensor2d(p.ids, [p.B, p.T], 'int32')) as tf.Tensor3D;
    const lengths = tf.tensor1d(p.lengths, 'int32');
    let h: tf.Tensor2D;
    if (this.config.bidirectional) {
      const r = fusedBiLstm(x, this.lstm('encoder_fw'), this.lstm('encoder_bw'), { lengths });
      h = tf.concat([r.hFw, r.hBw], 1);
    } else {
      h = fusedLstm(x, this.lstm('encoder_fw'), { lengths }).h;
    }
    return tf.tanh(tf.add(tf.matMul(h, this.params.get('latent/kernel')), this.params.get('latent/bias'))) as tf.Tensor2D;
  }

  /** Per-sequence mean token cross-entropy [B] (and its weights) for a list of sequences. */
  private tokenLosses(seqs: readonly ArrayLike<number>[], noise = false): { perSeq: tf.Tensor1D; tokens: number } {
    const p = this.pack(seqs);
    let z = this.latent(p);
    // Seeded per training step: same seed, same noise and dropout, same weights.
    const step = noise ? this.noiseStep++ : 0;
    if (noise && this.config.latentNoise > 0) {
      z = tf.add(z, tf.randomNormal(z.shape, 0, this.config.latentNoise, 'float32', subSeed(this.config.seed, `noise${step}`))) as tf.Tensor2D;
    }
    const drop = noise && this.config.wordDropout > 0 ? mulberry32(subSeed(this.config.seed, `drop${step}`)) : null;
    const { hiddenSize: H } = this.config;
    const T1 = p.T + 1;
    // Decoder input [<eos>, t1 … tn] and target [t1 … tn, <eos>], both of length n+1.
    const inIds = new Int32Array(p.B * T1);
    const target = new Int32Array(p.B * T1);
    const weights = new Float32Array(p.B * T1);
    const decLengths = new Int32Array(p.B);
    for (let b = 0; b < p.B; b++) {
      const n = p.lengths[b];
      inIds[b * T1] = EOS_ID;
      for (let t = 0; t < n; t++) {
        inIds[b * T1 + t + 1] = drop && drop() < this.config.wordDropout ? UNK_ID : p.ids[b * p.T + t];
        target[b * T1 + t] = p.ids[b * p.T + t];
      }
      target[b * T1 + n] = EOS_ID;
      for (let t = 0; t <= n; t++) weights[b * T1 + t] = 1 / (n + 1);
      decLengths[b] = n + 1;
    }
    const h0 = tf.tanh(tf.add(tf.matMul(z, this.params.get('decoder_init/kernel')), this.params.get('decoder_init/bias'))) as tf.Tensor2D;
    const emb = tf.gather(this.params.get('embedding'), tf.tensor2d(inIds, [p.B, T1], 'int32'));
    const cond = tf.matMul(z, this.params.get('decoder_cond/kernel'));
    const dx = tf.add(emb, tf.reshape(cond, [p.B, 1, this.config.embeddingDim])) as tf.Tensor3D;
    const y = fusedLstm(dx, this.lstm('decoder'), { h0, lengths: decLengths }).y;
    // The output layer and its loss in one kernel: the [B·T1, V] logits are never a tensor.
    const ce = denseSoftmaxCrossEntropy(
      tf.reshape(y, [p.B * T1, H]) as tf.Tensor2D,
      this.params.get('output/kernel') as tf.Tensor2D,
      this.params.get('output/bias') as tf.Tensor1D,
      tf.tensor1d(target, 'int32'),
      tf.tensor1d(weights),
    );
    // weights are 1/(n+1) per token: summing each row of T1 gives the per-sequence mean.
    const perSeq = tf.sum(tf.reshape(ce, [p.B, T1]), 1) as tf.Tensor1D;
    return { perSeq, tokens: p.B };
  }

  /**
   * Mean over sequences of the per-sequence mean token cross-entropy; `training` adds the latent noise (the
   * training loss), without it this is the validation / novelty loss.
   */
  loss(seqs: readonly ArrayLike<number>[], training = false): tf.Scalar {
    return tf.mean(this.tokenLosses(seqs, training).perSeq) as tf.Scalar;
  }

  /**
   * Trains on `seqs` (token ids without <eos>; pass distinct messages). With a validation split, early
   * stopping picks the number of epochs on held-out messages and the model is then retrained from its
   * initial weights on ALL messages for that many epochs (`refit`, default on): with a few dozen distinct
   * messages, a held-out message would otherwise never be learnt and would look novel forever.
   */
  async fit(seqs: readonly ArrayLike<number>[], options: TrainOptions & { refit?: boolean } = {}): Promise<TrainResult & { refitEpochs: number | null }> {
    const auto = seqs.length >= TEXT_MIN_MESSAGES_FOR_VALIDATION ? 0.1 : 0;
    const o = { ...DEFAULT_TEXT_TRAIN, validationSplit: auto, seed: this.config.seed, ...options };
    checkTrainOptions(o);
    if (seqs.length === 0) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'the text model needs at least one message to train on');
    this.pack(seqs); // validates every id up front
    const initial = this.params.snapshot();
    this.noiseStep = 0;
    const split = splitItems(seqs.length, o.validationSplit ?? 0, o.seed ?? 42);
    const spec = (train: number[], val: number[]) => ({
      model: 'text',
      unit: 'messages',
      params: this.params,
      train,
      val,
      batchLoss: (items: number[]) => this.loss(items.map((i) => seqs[i]), true),
      evalLoss: (items: number[]) => tf.tidy(() => this.loss(items.map((i) => seqs[i])).dataSync()[0]),
    });
    let result = await runTraining(spec(split.train, split.val), o);
    let refitEpochs: number | null = null;
    if (split.val.length > 0 && options.refit !== false) {
      refitEpochs = Math.max(1, result.bestEpoch);
      this.params.restore(initial, 'text initial weights');
      this.noiseStep = 0;
      const all = Array.from({ length: seqs.length }, (_, i) => i);
      const second = await runTraining(spec(all, []), { ...o, epochs: refitEpochs, validationSplit: 0 });
      result = { ...second, bestValLoss: result.bestValLoss, bestEpoch: result.bestEpoch, stoppedEarly: result.stoppedEarly, seconds: result.seconds + second.seconds, history: [...result.history, ...second.history] };
    }
    this.training = { ...result, refitEpochs };
    return this.training;
  }

  /**
   * Message vectors [n, latentDim] (row-major) for token sequences, in batches. On the native backend the
   * encoder runs the addon's fused encoding kernel (tokens + embedding in, final state out, no per-step
   * storage); elsewhere the same math runs through the tfjs ops.
   */
  encode(seqs: readonly ArrayLike<number>[], batchSize = 512): Float32Array {
    const D = this.config.latentDim;
    // Identical sequences are encoded once.
    const index = new Map<string, number>();
    const distinct: ArrayLike<number>[] = [];
    const slot = seqs.map((s) => {
      const key = Array.prototype.join.call(s, ',');
      let i = index.get(key);
      if (i === undefined) {
        i = distinct.length;
        index.set(key, i);
        distinct.push(s);
      }
      return i;
    });
    const vecs = new Float32Array(distinct.length * D);
    for (let s = 0; s < distinct.length; s += batchSize) {
      const chunk = distinct.slice(s, s + batchSize);
      const p = this.pack(chunk);
      const h = this.nativeEncoderState(p);
      const z = tf.tidy(() => {
        if (h) {
          const ht = tf.tensor2d(h, [p.B, h.length / p.B]);
          return tf.tanh(tf.add(tf.matMul(ht, this.params.get('latent/kernel')), this.params.get('latent/bias')));
        }
        return this.latent(p);
      });
      vecs.set(z.dataSync(), s * D);
      z.dispose();
    }
    const out = new Float32Array(seqs.length * D);
    slot.forEach((i, r) => out.set(vecs.subarray(i * D, (i + 1) * D), r * D));
    return out;
  }

  /** The encoder's final state through binding.lstmEncode when the native backend is active, else null. */
  private nativeEncoderState(p: Packed): Float32Array | null {
    const binding = activeNativeBinding();
    if (!binding) return null;
    const w = (prefix: string) => ({
      kernel: this.params.get(`${prefix}/kernel`).dataSync() as Float32Array,
      recurrentKernel: this.params.get(`${prefix}/recurrent_kernel`).dataSync() as Float32Array,
      bias: this.params.get(`${prefix}/bias`).dataSync() as Float32Array,
    });
    const { embeddingDim: E, hiddenSize: H, vocabSize: V } = this.config;
    const r = binding.lstmEncode({
      batch: p.B,
      steps: p.T,
      inputSize: E,
      hiddenSize: H,
      tokens: p.ids,
      embedding: this.params.get('embedding').dataSync() as Float32Array,
      vocabSize: V,
      weights: w('encoder_fw'),
      ...(this.config.bidirectional ? { backwardWeights: w('encoder_bw') } : {}),
      lengths: p.lengths,
    });
    return r.h;
  }

  /** Per-message reconstruction loss (mean token cross-entropy): high for messages unlike the training ones. */
  reconstructionError(seqs: readonly ArrayLike<number>[], batchSize = 512): Float32Array {
    const out = new Float32Array(seqs.length);
    for (let s = 0; s < seqs.length; s += batchSize) {
      const v = tf.tidy(() => this.tokenLosses(seqs.slice(s, s + batchSize)).perSeq.dataSync());
      out.set(v, s);
    }
    return out;
  }

  weights(): NamedWeight[] {
    return this.params.snapshot().map((w) => ({ ...w, name: `text/${w.name}` }));
  }

  /** Rebuilds a model from its config and weights (names prefixed `text/`, as `weights()` gives). */
  static fromWeights(config: TextModelConfig, weights: NamedWeight[], source = 'model'): TextAutoencoder {
    const m = new TextAutoencoder(config);
    m.params.restore(
      weights.filter((w) => w.name.startsWith('text/')).map((w) => ({ ...w, name: w.name.slice(5) })),
      source,
    );
    return m;
  }

  dispose(): void {
    this.params.dispose();
  }
}
