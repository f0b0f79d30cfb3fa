/**
 * The tfjs-layers peer: W1 and W2 built from @tensorflow/tfjs-layers (tf.layers.bidirectional(lstm), lstm,
 * embedding, dense), i.e. what a Keras-style tfjs user writes, run on tfjs-backend-wasm or -cpu. The ops
 * peer (bench/peers/tfjs.ts) is a hand-written LSTM in tfjs-core ops; this one is the library's own LSTM
 * layer (tfjs-layers' rnn loop: per step a slice, two matMuls, gate math), so it shows what the issue's
 * targets were first measured against.
 *
 * Same functions and the same seeded parameters as bench/native.ts (set with setWeights): Keras' gate order
 * i, f, c, o and weight layout [I,4H] / [H,4H] / [4H] are the native layout. Like for like: recurrent
 * activation 'sigmoid' (tfjs-layers defaults to hardSigmoid). Initializers are glorotUniform because the
 * default 'orthogonal' throws on tfjs-core alone (its chained ops are not registered in the CommonJS bundle); the values are overwritten anyway.
 *
 * Loss and scores are computed with tfjs ops outside the model (as in the ops peer), and training takes
 * the gradient of that loss with tf.variableGrads over the layers' variables (tfjs-core's gradient set,
 * registered by useTfjsBackend), then tf.train.adam with the bench's settings: TfjsPeerModel (tfjs.ts), the
 * same code as the ops peer's, so both peers are measured alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as Tfl from '@tensorflow/tfjs-layers';
import type { LstmWeights } from '../../lib/backend/binding';
import type { W1Impl, W2Impl } from '../impl';
import {
  decoderInputs,
  W1_PARAM_NAMES,
  W2_PARAM_NAMES,
  type W1Batch,
  type W1Params,
  type W1Shape,
  type W2Batch,
  type W2Params,
  type W2Shape,
} from '../workloads';
import { keepingGradients, TfjsPeerModel } from './tfjs';

// tfjs-layers registers tfjs-core's whole gradient set when it loads; DeepSentry's stay in place (see keepingGradients).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tfl: typeof Tfl = keepingGradients(() => require('@tensorflow/tfjs-layers') as typeof Tfl);

/** the tfjs-layers version, reported with the peer's backend info */
export const tfjsLayersVersion: string = tfl.version_layers;

/** an LSTM layer configured as the native one computes: sigmoid gates, tanh, no dropout */
function lstmLayer(hidden: number, extra: Partial<Parameters<typeof tfl.layers.lstm>[0]> = {}): Tfl.RNN {
  return tfl.layers.lstm({
    units: hidden,
    activation: 'tanh',
    recurrentActivation: 'sigmoid',
    kernelInitializer: 'glorotUniform',
    recurrentInitializer: 'glorotUniform',
    ...extra,
  }) as Tfl.RNN;
}

function lstmTensors(w: LstmWeights, input: number, hidden: number): tf.Tensor[] {
  return [tf.tensor2d(w.kernel, [input, 4 * hidden]), tf.tensor2d(w.recurrentKernel, [hidden, 4 * hidden]), tf.tensor1d(w.bias)];
}

/** setWeights copies the values: the temporary tensors are released right after */
function setWeights(layer: Tfl.layers.Layer, values: tf.Tensor[]): void {
  layer.setWeights(values);
  tf.dispose(values);
}

/** the tf.Variables behind a layer's trainable weights, in the layer's order (kernel, recurrent kernel, bias) */
function variablesOf(layer: Tfl.layers.Layer): tf.Variable[] {
  return layer.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** W1 as a tfjs-layers model: Input [T, I] → Bidirectional(LSTM H, final state, concat) → Dense(2H→out). */
export class LayersW1 extends TfjsPeerModel implements W1Impl {
  private readonly model: Tfl.LayersModel;
  private readonly x: tf.Tensor3D;
  private readonly target: tf.Tensor2D;

  constructor(
    private readonly s: W1Shape,
    params: W1Params,
    batch: W1Batch,
  ) {
    super();
    const input = tfl.input({ shape: [s.steps, s.input] });
    // returnSequences false: the forward layer's state after step T−1 and the backward layer's after step 0,
    // concatenated [h_fw, h_bw] — what native feeds the Dense layer
    const bi = tfl.layers.bidirectional({ layer: lstmLayer(s.hidden), mergeMode: 'concat' });
    const dense = tfl.layers.dense({ units: s.out, kernelInitializer: 'glorotUniform' });
    const output = dense.apply(bi.apply(input)) as Tfl.SymbolicTensor;
    this.model = tfl.model({ inputs: input, outputs: output });
    setWeights(bi, [...lstmTensors(params.forward, s.input, s.hidden), ...lstmTensors(params.backward, s.input, s.hidden)]);
    setWeights(dense, [tf.tensor2d(params.dense.kernel, [2 * s.hidden, s.out]), tf.tensor1d(params.dense.bias)]);
    this.x = tf.tensor3d(batch.x, [s.batch, s.steps, s.input]);
    this.target = tf.tensor2d(batch.target, [s.batch, s.out]);
    this.setTrained([...variablesOf(bi), ...variablesOf(dense)], W1_PARAM_NAMES);
  }

  forward(): { pred: Float32Array; scores: Float32Array } {
    return tf.tidy(() => {
      // predict as a user calls it, in one batch (its default batchSize 32 would split the batch of 256)
      const pred = this.model.predict(this.x, { batchSize: this.s.batch }) as tf.Tensor2D;
      const scores = tf.mean(tf.squaredDifference(pred, this.target), 1);
      return { pred: pred.dataSync() as Float32Array, scores: scores.dataSync() as Float32Array };
    });
  }

  protected loss(): tf.Scalar {
    const pred = this.model.apply(this.x, { training: true }) as tf.Tensor2D;
    return tf.mean(tf.squaredDifference(pred, this.target)) as tf.Scalar;
  }

  dispose(): void {
    this.model.dispose();
    this.disposeOptimizer();
    tf.dispose([this.x, this.target]);
  }
}

/**
 * W2 as tfjs-layers models sharing their layers: Embedding(V→E) → encoder LSTM H (returnState) →
 * decoder LSTM H over the teacher-forced inputs from the encoder's [h, c] (returnSequences) → Dense(H→V)
 * on every step; softmax cross-entropy outside the model. The encoder model (tokens → final h) is the
 * batched encoding. With `frozenEmbedding` the Embedding layer is not trainable: tfjs-wasm has no
 * UnsortedSegmentSum, the gradient of its gather.
 */
export class LayersW2 extends TfjsPeerModel implements W2Impl {
  private readonly encoder: Tfl.LayersModel;
  private readonly autoencoder: Tfl.LayersModel;
  private readonly tokens: tf.Tensor2D;
  private readonly din: tf.Tensor2D;
  private readonly labels: tf.Tensor3D;

  constructor(
    private readonly s: W2Shape,
    params: W2Params,
    batch: W2Batch,
    readonly frozenEmbedding: boolean,
  ) {
    super();
    const tokIn = tfl.input({ shape: [s.steps], dtype: 'int32' });
    const decIn = tfl.input({ shape: [s.steps], dtype: 'int32' });
    const emb = tfl.layers.embedding({ inputDim: s.vocab, outputDim: s.embedding, embeddingsInitializer: 'glorotUniform', trainable: !frozenEmbedding });
    const enc = lstmLayer(s.hidden, { returnState: true });
    const dec = lstmLayer(s.hidden, { returnSequences: true });
    const dense = tfl.layers.dense({ units: s.vocab, kernelInitializer: 'glorotUniform' });
    const [, h, c] = enc.apply(emb.apply(tokIn)) as Tfl.SymbolicTensor[];
    const y = dec.apply(emb.apply(decIn), { initialState: [h, c] }) as Tfl.SymbolicTensor;
    const logits = dense.apply(y) as Tfl.SymbolicTensor;
    this.encoder = tfl.model({ inputs: tokIn, outputs: h });
    this.autoencoder = tfl.model({ inputs: [tokIn, decIn], outputs: logits });
    setWeights(emb, [tf.tensor2d(params.embedding, [s.vocab, s.embedding])]);
    setWeights(enc, lstmTensors(params.encoder, s.embedding, s.hidden));
    setWeights(dec, lstmTensors(params.decoder, s.embedding, s.hidden));
    setWeights(dense, [tf.tensor2d(params.dense.kernel, [s.hidden, s.vocab]), tf.tensor1d(params.dense.bias)]);
    this.tokens = tf.tensor2d(batch.tokens, [s.batch, s.steps], 'int32');
    this.din = tf.tensor2d(decoderInputs(batch.tokens, s.batch, s.steps), [s.batch, s.steps], 'int32');
    this.labels = tf.oneHot(this.tokens, s.vocab) as tf.Tensor3D;
    const all = [...emb.weights.map((w) => w.read() as tf.Variable), ...variablesOf(enc), ...variablesOf(dec), ...variablesOf(dense)];
    this.setTrained(all, W2_PARAM_NAMES, frozenEmbedding ? ['embedding'] : []);
  }

  encode(): Float32Array {
    return tf.tidy(() => (this.encoder.predict(this.tokens, { batchSize: this.s.batch }) as tf.Tensor).dataSync() as Float32Array);
  }

  /** mean softmax cross-entropy (one-hot × log-softmax: a gather's gradient needs UnsortedSegmentSum) */
  protected loss(): tf.Scalar {
    const logits = this.autoencoder.apply([this.tokens, this.din], { training: true }) as tf.Tensor3D;
    return tf.neg(tf.mean(tf.sum(tf.mul(this.labels, tf.logSoftmax(logits)), -1))) as tf.Scalar;
  }

  dispose(): void {
    // the encoder model's layers are all in the autoencoder: disposing that releases every weight
    this.autoencoder.dispose();
    this.disposeOptimizer();
    tf.dispose([this.tokens, this.din, this.labels]);
  }
}
