/**
 * The public tfjs ops over DeepSentry's custom kernels. They check their arguments (sharp-style messages
 * naming the argument), fill defaults (zero initial state, full lengths), and run on whichever backend is
 * active: `deepsentry` (native) or `cpu` (TypeScript). All are differentiable (tf.grad / tf.variableGrads).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../errors';
import { DISTANCE_METRICS, DenseSoftmaxCrossEntropy, DistanceMetric, FusedBiLstm, FusedLstm, SoftmaxCrossEntropy, VectorDistance } from './op_names';
import { registerAllGradients } from './register_all_gradients';
import { registerAllKernels } from './register_all_kernels';

registerAllKernels();
registerAllGradients();

/** Weights of one LSTM direction (Keras layout, gate order i, f, c, o). */
export interface LstmLayerWeights {
  kernel: Tensor2D; // [I, 4H]
  recurrentKernel: Tensor2D; // [H, 4H]
  bias: Tensor1D; // [4H]
}

export interface FusedLstmOptions {
  h0?: Tensor2D; // [B,H], default zeros
  c0?: Tensor2D; // [B,H], default zeros
  /** [B] int32 valid steps per sequence, default all T */
  lengths?: Tensor1D | Int32Array | number[];
  /** run t = len-1 … 0 */
  reverse?: boolean;
}

export interface FusedLstmResult {
  y: Tensor3D; // [B,T,H], zero past each sequence's length
  h: Tensor2D; // [B,H] state after the last valid step
  c: Tensor2D;
}

function fail(code: 'DS_SHAPE_MISMATCH' | 'DS_INVALID_ARGUMENT', msg: string): never {
  throw new DeepSentryError(code, msg);
}

function checkWeights(op: string, w: LstmLayerWeights, I: number, what = 'weights'): number {
  if (!w || !(w.kernel instanceof tf.Tensor) || !(w.recurrentKernel instanceof tf.Tensor) || !(w.bias instanceof tf.Tensor)) {
    fail('DS_INVALID_ARGUMENT', `${op}: expected {kernel, recurrentKernel, bias} tensors for ${what}`);
  }
  const H = w.recurrentKernel.shape[0];
  const want = (name: string, t: Tensor, shape: number[]) => {
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      fail('DS_SHAPE_MISMATCH', `${op}: expected shape [${shape}] for ${what}.${name} but received [${t.shape}]`);
    }
  };
  want('kernel', w.kernel, [I, 4 * H]);
  want('recurrentKernel', w.recurrentKernel, [H, 4 * H]);
  want('bias', w.bias, [4 * H]);
  return H;
}

function lengthsTensor(op: string, lengths: FusedLstmOptions['lengths'], B: number, T: number): Tensor1D {
  if (lengths === undefined) return tf.fill([B], T, 'int32') as Tensor1D;
  const t = lengths instanceof tf.Tensor ? (lengths.dtype === 'int32' ? lengths : fail('DS_INVALID_ARGUMENT', `${op}: expected int32 lengths but received ${lengths.dtype}`)) : tf.tensor1d(Array.from(lengths), 'int32');
  if (t.shape.length !== 1 || t.shape[0] !== B) fail('DS_SHAPE_MISMATCH', `${op}: expected [${B}] for lengths but received [${t.shape}]`);
  return t as Tensor1D;
}

function state(op: string, name: string, t: Tensor2D | undefined, B: number, H: number): Tensor2D {
  if (t === undefined) return tf.zeros([B, H]);
  if (t.shape.length !== 2 || t.shape[0] !== B || t.shape[1] !== H) fail('DS_SHAPE_MISMATCH', `${op}: expected [${B},${H}] for ${name} but received [${t.shape}]`);
  return t;
}

function input3d(op: string, x: Tensor3D): [number, number, number] {
  if (!(x instanceof tf.Tensor) || x.rank !== 3 || x.dtype !== 'float32') {
    fail('DS_INVALID_ARGUMENT', `${op}: expected a float32 tensor [batch, steps, inputSize] for x but received ${x instanceof tf.Tensor ? `${x.dtype} [${x.shape}]` : typeof x}`);
  }
  return x.shape as [number, number, number];
}

/** Whether a gradient tape is recording: the native forward then keeps what backward needs. */
function recording(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

/** One LSTM layer (the FusedLstm kernel). */
export function fusedLstm(x: Tensor3D, weights: LstmLayerWeights, options: FusedLstmOptions = {}): FusedLstmResult {
  const op = 'fusedLstm';
  const [B, T, I] = input3d(op, x);
  const H = checkWeights(op, weights, I);
  const inputs = {
    x,
    kernel: weights.kernel,
    recurrentKernel: weights.recurrentKernel,
    bias: weights.bias,
    h0: state(op, 'h0', options.h0, B, H),
    c0: state(op, 'c0', options.c0, B, H),
    lengths: lengthsTensor(op, options.lengths, B, T),
  };
  const [y, h, c] = tf.engine().runKernel(FusedLstm, inputs, { reverse: !!options.reverse, training: recording() }) as Tensor[];
  return { y: y as Tensor3D, h: h as Tensor2D, c: c as Tensor2D };
}

export interface FusedBiLstmOptions {
  h0Fw?: Tensor2D;
  c0Fw?: Tensor2D;
  h0Bw?: Tensor2D;
  c0Bw?: Tensor2D;
  lengths?: Tensor1D | Int32Array | number[];
  /**
   * false: x and the initial states are data (no gradient flows into them), so the backward pass computes
   * the weight gradients only — it skips dx = dG·kernelᵀ and the last step's dh product. Asking for the
   * gradient of x or of an initial state is then an error. Default true.
   */
  inputGradients?: boolean;
}

export interface FusedBiLstmResult {
  y: Tensor3D; // [B,T,2H]: forward direction then backward direction
  hFw: Tensor2D; // forward state after step len-1
  cFw: Tensor2D;
  hBw: Tensor2D; // backward state after step 0
  cBw: Tensor2D;
}

/** A bidirectional LSTM layer (the FusedBiLstm kernel): both directions over the same x. */
export function fusedBiLstm(x: Tensor3D, forward: LstmLayerWeights, backward: LstmLayerWeights, options: FusedBiLstmOptions = {}): FusedBiLstmResult {
  const op = 'fusedBiLstm';
  const [B, T, I] = input3d(op, x);
  const H = checkWeights(op, forward, I, 'forward');
  if (checkWeights(op, backward, I, 'backward') !== H) fail('DS_SHAPE_MISMATCH', `${op}: the two directions have different hidden sizes`);
  const inputs = {
    x,
    kernelFw: forward.kernel,
    recurrentKernelFw: forward.recurrentKernel,
    biasFw: forward.bias,
    kernelBw: backward.kernel,
    recurrentKernelBw: backward.recurrentKernel,
    biasBw: backward.bias,
    h0Fw: state(op, 'h0Fw', options.h0Fw, B, H),
    c0Fw: state(op, 'c0Fw', options.c0Fw, B, H),
    h0Bw: state(op, 'h0Bw', options.h0Bw, B, H),
    c0Bw: state(op, 'c0Bw', options.c0Bw, B, H),
    lengths: lengthsTensor(op, options.lengths, B, T),
  };
  const attrs = { training: recording(), inputGradients: options.inputGradients !== false };
  const [y, hFw, cFw, hBw, cBw] = tf.engine().runKernel(FusedBiLstm, inputs, attrs) as Tensor[];
  return { y: y as Tensor3D, hFw: hFw as Tensor2D, cFw: cFw as Tensor2D, hBw: hBw as Tensor2D, cBw: cBw as Tensor2D };
}

/**
 * Per-row sparse softmax cross-entropy: w[n]·(logsumexp(logits[n]) − logits[n, labels[n]]) → [N].
 * weights default to 1; a 0 weight masks the row (padding).
 */
export function softmaxCrossEntropy(logits: Tensor2D, labels: Tensor1D, weights?: Tensor1D): Tensor1D {
  const op = 'softmaxCrossEntropy';
  if (!(logits instanceof tf.Tensor) || logits.rank !== 2) fail('DS_INVALID_ARGUMENT', `${op}: expected a [N, classes] tensor for logits`);
  const N = logits.shape[0];
  if (labels.dtype !== 'int32' || labels.rank !== 1 || labels.shape[0] !== N) fail('DS_SHAPE_MISMATCH', `${op}: expected int32 [${N}] for labels but received ${labels.dtype} [${labels.shape}]`);
  const w = weights ?? tf.ones([N]);
  if (w.rank !== 1 || w.shape[0] !== N) fail('DS_SHAPE_MISMATCH', `${op}: expected [${N}] for weights but received [${w.shape}]`);
  return tf.engine().runKernel(SoftmaxCrossEntropy, { logits, labels, weights: w }, {}) as Tensor1D;
}

/**
 * A Dense layer and the per-row softmax cross-entropy of its output in one kernel:
 * softmaxCrossEntropy(x·kernel + bias, labels, weights), without the [N, classes] logits ever being a tensor
 * (on the native backend they exist one block of rows at a time). x [N, K], kernel [K, classes], bias [classes].
 */
export function denseSoftmaxCrossEntropy(x: Tensor2D, kernel: Tensor2D, bias: Tensor1D, labels: Tensor1D, weights?: Tensor1D): Tensor1D {
  const op = 'denseSoftmaxCrossEntropy';
  if (!(x instanceof tf.Tensor) || x.rank !== 2) fail('DS_INVALID_ARGUMENT', `${op}: expected a [N, K] tensor for x`);
  const [N, K] = x.shape;
  if (!(kernel instanceof tf.Tensor) || kernel.rank !== 2 || kernel.shape[0] !== K) fail('DS_SHAPE_MISMATCH', `${op}: expected a [${K}, classes] tensor for kernel but received [${kernel?.shape}]`);
  const C = kernel.shape[1];
  if (!(bias instanceof tf.Tensor) || bias.rank !== 1 || bias.shape[0] !== C) fail('DS_SHAPE_MISMATCH', `${op}: expected [${C}] for bias but received [${bias?.shape}]`);
  if (labels.dtype !== 'int32' || labels.rank !== 1 || labels.shape[0] !== N) fail('DS_SHAPE_MISMATCH', `${op}: expected int32 [${N}] for labels but received ${labels.dtype} [${labels.shape}]`);
  const w = weights ?? tf.ones([N]);
  if (w.rank !== 1 || w.shape[0] !== N) fail('DS_SHAPE_MISMATCH', `${op}: expected [${N}] for weights but received [${w.shape}]`);
  return tf.engine().runKernel(DenseSoftmaxCrossEntropy, { x, kernel, bias, labels, weights: w }, {}) as Tensor1D;
}

/** Row-wise distance between a [N,D] and b [N,D] (see shared.ts `distance` for the definitions). */
export function vectorDistance(a: Tensor2D, b: Tensor2D, metric: DistanceMetric): Tensor1D {
  const op = 'vectorDistance';
  if (!DISTANCE_METRICS.includes(metric)) fail('DS_INVALID_ARGUMENT', `${op}: expected one of ${DISTANCE_METRICS.join(', ')} for metric but received ${String(metric)}`);
  if (a.rank !== 2 || b.rank !== 2 || a.shape[0] !== b.shape[0] || a.shape[1] !== b.shape[1]) {
    fail('DS_SHAPE_MISMATCH', `${op}: expected a and b of the same [N, D] shape but received [${a.shape}] and [${b.shape}]`);
  }
  return tf.engine().runKernel(VectorDistance, { a, b }, { metric }) as Tensor1D;
}
