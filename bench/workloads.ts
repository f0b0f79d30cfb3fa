/**
 * The reference workloads of the benchmark: their shapes, their FLOP counts, and the
 * deterministic parameters and batches every implementation (native and tfjs peers) starts from, so that
 * all of them compute the same function on the same numbers.
 *
 * Keep the reference shapes exactly as they are: results in bench/results/ are only comparable over time
 * if the shapes never change. Tests use the same code with tiny shapes.
 */
import { mulberry32 } from '../lib/backend/reference';
import { DeepSentryError } from '../lib/errors';
import type { LstmWeights } from '../lib/backend/binding';

/** W1, the anomaly detector: BiLSTM over a window, Dense(2H→out) on [h_fw_final, h_bw_final], MSE. */
export interface W1Shape {
  /** windows per batch */
  batch: number;
  /** steps per window (vectors read) */
  steps: number;
  /** size of each input vector */
  input: number;
  /** hidden size per direction */
  hidden: number;
  /** size of the predicted vector (Dense output) */
  out: number;
}

/** W2, the text autoencoder: Embedding → encoder LSTM → decoder LSTM (teacher forced) → Dense(H→V), CE. */
export interface W2Shape {
  /** sentences per batch */
  batch: number;
  /** tokens per sentence (encoder steps = decoder steps) */
  steps: number;
  vocab: number;
  embedding: number;
  hidden: number;
}

export const W1_REFERENCE: W1Shape = { batch: 256, steps: 10, input: 128, hidden: 128, out: 128 };
/** L1 is W1's forward with one window: latency, not throughput. */
export const L1_REFERENCE: W1Shape = { ...W1_REFERENCE, batch: 1 };
export const W2_REFERENCE: W2Shape = { batch: 128, steps: 24, vocab: 2000, embedding: 64, hidden: 128 };

/** Token ids reserved by the vocabulary (lib/logs): 0 pad, 1 go/eos, 2 unk. Sentences use ids ≥ 3. */
export const GO_TOKEN = 1;
const FIRST_WORD_TOKEN = 3;

// ---- FLOP counts ------------------------------------------------------------------------------------
//
// What we count (the same for every implementation, whatever it really executes):
//  * matrix products: 2·M·K·N (one multiply and one add per term);
//  * LSTM, per sequence, step and hidden unit: the products 2·(I+H)·4 (input and recurrent, all four gates),
//    plus 17 elementwise: 8 adds for the 4 gate pre-activations (input product + recurrent product + bias),
//    5 activations (σ i, σ f, tanh g, σ o, tanh c — one FLOP each, although a transcendental costs more),
//    4 for c = f·c + i·g and h = o·tanh(c);
//  * Dense: 2·M·K·N + M·N (bias); MSE: 3 per element (sub, square, sum);
//    softmax cross-entropy: 4 per logit (max, sub, exp, sum);
//  * backward ≈ 2× forward (each product has two gradient products of the same size: dX and dW), so a
//    training step counts 3× the forward FLOPs, plus the Adam update at 12 FLOPs per parameter;
//  * not counted: embedding gathers and scatters, data movement, the first step's product with h0 = 0.

export const LSTM_ELEMENTWISE_PER_UNIT = 17;
export const ADAM_FLOPS_PER_PARAM = 12;

/** Forward FLOPs of one LSTM direction over a [B, T, I] batch. */
export function lstmForwardFlops(batch: number, steps: number, input: number, hidden: number): number {
  return batch * steps * (2 * (input + hidden) * 4 * hidden + LSTM_ELEMENTWISE_PER_UNIT * hidden);
}

export function denseForwardFlops(rows: number, inSize: number, outSize: number): number {
  return 2 * rows * inSize * outSize + rows * outSize;
}

export function w1ParamCount(s: W1Shape): number {
  const lstm = s.input * 4 * s.hidden + s.hidden * 4 * s.hidden + 4 * s.hidden;
  return 2 * lstm + 2 * s.hidden * s.out + s.out;
}

export function w2ParamCount(s: W2Shape): number {
  const lstm = (i: number): number => i * 4 * s.hidden + s.hidden * 4 * s.hidden + 4 * s.hidden;
  return s.vocab * s.embedding + 2 * lstm(s.embedding) + s.hidden * s.vocab + s.vocab;
}

/** W1 forward (scores of a batch): 2 LSTM directions + Dense(2H→out) + MSE. */
export function w1ForwardFlops(s: W1Shape): number {
  return (
    2 * lstmForwardFlops(s.batch, s.steps, s.input, s.hidden) +
    denseForwardFlops(s.batch, 2 * s.hidden, s.out) +
    3 * s.batch * s.out
  );
}

/** W1 training step: 3× forward + Adam. */
export function w1TrainFlops(s: W1Shape): number {
  return 3 * w1ForwardFlops(s) + ADAM_FLOPS_PER_PARAM * w1ParamCount(s);
}

/** W2 encoder-only forward (batched encoding): one LSTM over the embedded tokens. */
export function w2EncodeFlops(s: W2Shape): number {
  return lstmForwardFlops(s.batch, s.steps, s.embedding, s.hidden);
}

/** W2 forward of a training step: encoder + decoder + Dense(H→V) on every decoder step + softmax CE. */
export function w2ForwardFlops(s: W2Shape): number {
  const rows = s.batch * s.steps;
  return 2 * lstmForwardFlops(s.batch, s.steps, s.embedding, s.hidden) + denseForwardFlops(rows, s.hidden, s.vocab) + 4 * rows * s.vocab;
}

export function w2TrainFlops(s: W2Shape): number {
  return 3 * w2ForwardFlops(s) + ADAM_FLOPS_PER_PARAM * w2ParamCount(s);
}

/** The formulas as text, printed with the results and stored in the JSON. */
export const FLOP_FORMULAS: Record<string, string> = {
  lstm: `per direction: B·T·(2·(I+H)·4H + ${LSTM_ELEMENTWISE_PER_UNIT}·H)  [products + gate adds, 5 activations as 1 FLOP each, cell/hidden update]`,
  W1_forward: '2·lstm(B,T,I,H) + 2·B·2H·out + B·out + 3·B·out  [BiLSTM, Dense, MSE]',
  W1_train: `3·W1_forward + ${ADAM_FLOPS_PER_PARAM}·params  [backward ≈ 2× forward; Adam]`,
  W2_encode: 'lstm(B,T,E,H)  [encoder only; the embedding gather is not counted]',
  W2_train: `3·(2·lstm(B,T,E,H) + 2·B·T·H·V + B·T·V + 4·B·T·V) + ${ADAM_FLOPS_PER_PARAM}·params  [encoder, decoder, Dense, softmax CE; Adam]`,
  L1: 'W1_forward with B = 1',
};

// ---- parameters and batches -------------------------------------------------------------------------

/** Weights of one Dense layer, Keras layout: kernel [in, out], bias [out]. */
export interface DenseWeights {
  kernel: Float32Array;
  bias: Float32Array;
}

export interface W1Params {
  forward: LstmWeights;
  backward: LstmWeights;
  dense: DenseWeights;
}

export interface W2Params {
  /** [vocab, embedding], shared by encoder and decoder inputs */
  embedding: Float32Array;
  encoder: LstmWeights;
  decoder: LstmWeights;
  /** Dense(H→V) producing the logits */
  dense: DenseWeights;
}

/** One W1 batch: windows x [B, T, I] and the vectors to predict, target [B, out]. */
export interface W1Batch {
  x: Float32Array;
  target: Float32Array;
}

/** One W2 batch: token ids [B, T], every sentence full length (ids in [3, vocab)). */
export interface W2Batch {
  tokens: Int32Array;
}

/** A named parameter array; every implementation lists its parameters (and gradients) in this order. */
export type NamedArrays = Array<[string, Float32Array]>;

export const W1_PARAM_NAMES = ['fw.kernel', 'fw.recurrentKernel', 'fw.bias', 'bw.kernel', 'bw.recurrentKernel', 'bw.bias', 'dense.kernel', 'dense.bias'] as const;

export function w1ParamList(p: W1Params): NamedArrays {
  const arrays = [p.forward.kernel, p.forward.recurrentKernel, p.forward.bias, p.backward.kernel, p.backward.recurrentKernel, p.backward.bias, p.dense.kernel, p.dense.bias];
  return arrays.map((a, i) => [W1_PARAM_NAMES[i], a]);
}

export const W2_PARAM_NAMES = ['embedding', 'enc.kernel', 'enc.recurrentKernel', 'enc.bias', 'dec.kernel', 'dec.recurrentKernel', 'dec.bias', 'dense.kernel', 'dense.bias'] as const;

export function w2ParamList(p: W2Params): NamedArrays {
  const arrays = [p.embedding, p.encoder.kernel, p.encoder.recurrentKernel, p.encoder.bias, p.decoder.kernel, p.decoder.recurrentKernel, p.decoder.bias, p.dense.kernel, p.dense.bias];
  return arrays.map((a, i) => [W2_PARAM_NAMES[i], a]);
}

function uniform(rand: () => number, n: number, limit: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rand() - 1) * limit;
  return a;
}

/** Glorot-uniform limit sqrt(6 / (fanIn + fanOut)), as Keras / tfjs-layers initialise kernels. */
function glorot(rand: () => number, fanIn: number, fanOut: number): Float32Array {
  return uniform(rand, fanIn * fanOut, Math.sqrt(6 / (fanIn + fanOut)));
}

/** LSTM weights as tfjs-layers initialises them with glorotUniform and unitForgetBias (forget bias 1). */
export function initLstm(rand: () => number, input: number, hidden: number): LstmWeights {
  const bias = new Float32Array(4 * hidden);
  bias.fill(1, hidden, 2 * hidden);
  return { kernel: glorot(rand, input, 4 * hidden), recurrentKernel: glorot(rand, hidden, 4 * hidden), bias };
}

export function initW1Params(s: W1Shape, seed: number): W1Params {
  const rand = mulberry32(seed);
  return {
    forward: initLstm(rand, s.input, s.hidden),
    backward: initLstm(rand, s.input, s.hidden),
    dense: { kernel: glorot(rand, 2 * s.hidden, s.out), bias: new Float32Array(s.out) },
  };
}

export function initW2Params(s: W2Shape, seed: number): W2Params {
  const rand = mulberry32(seed);
  return {
    // Keras' Embedding default: uniform(-0.05, 0.05)
    embedding: uniform(rand, s.vocab * s.embedding, 0.05),
    encoder: initLstm(rand, s.embedding, s.hidden),
    decoder: initLstm(rand, s.embedding, s.hidden),
    dense: { kernel: glorot(rand, s.hidden, s.vocab), bias: new Float32Array(s.vocab) },
  };
}

export function makeW1Batch(s: W1Shape, seed: number): W1Batch {
  const rand = mulberry32(seed);
  return { x: uniform(rand, s.batch * s.steps * s.input, 1), target: uniform(rand, s.batch * s.out, 1) };
}

export function makeW2Batch(s: W2Shape, seed: number): W2Batch {
  if (s.vocab <= FIRST_WORD_TOKEN) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', `makeW2Batch: expected vocab > ${FIRST_WORD_TOKEN} (ids 0-2 are reserved) but received ${s.vocab}`);
  }
  const rand = mulberry32(seed);
  const tokens = new Int32Array(s.batch * s.steps);
  for (let i = 0; i < tokens.length; i++) tokens[i] = FIRST_WORD_TOKEN + Math.floor(rand() * (s.vocab - FIRST_WORD_TOKEN));
  return { tokens };
}

/** Decoder input of teacher forcing: <go> then the sentence shifted right by one, [B, T]. */
export function decoderInputs(tokens: Int32Array, batch: number, steps: number): Int32Array {
  const din = new Int32Array(batch * steps);
  for (let b = 0; b < batch; b++) {
    din[b * steps] = GO_TOKEN;
    for (let t = 1; t < steps; t++) din[b * steps + t] = tokens[b * steps + t - 1];
  }
  return din;
}

/** Deep copy, so that an implementation's optimizer never changes the shared starting point. */
export function cloneArrays<T>(value: T): T {
  if (value instanceof Float32Array) return value.slice() as T;
  if (Array.isArray(value)) return value.map((v) => cloneArrays(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = cloneArrays(v);
    return out as T;
  }
  return value;
}
