/**
 * The math of DeepSentry's custom kernels on plain typed arrays, apart from tfjs plumbing (tfjs-backend-cpu's
 * `*Impl` convention). The LSTM functions wrap the float64 reference (reference.ts) and return float32: they
 * are the `cpu`-backend implementation of the fused ops, the fallback when the addon cannot load. Softmax
 * cross-entropy on given logits and vector distances have no native kernel (they are O(N·V) and O(N·D),
 * negligible next to the LSTMs), so both backends run these; the Dense layer fused with its softmax
 * cross-entropy (denseSoftmaxCrossEntropy*) is the `cpu` side of a native kernel.
 */
import { DeepSentryError } from '../errors';
import type { LstmGradients, LstmInputs } from './binding';
import { lstmBackwardRef, lstmForwardRef } from './reference';
import type { DistanceMetric } from './op_names';

type F32 = Float32Array;

/** One LSTM direction's checked inputs, flat (as the Fused* kernels read them from their tensors). */
export interface LstmImplInput {
  batch: number;
  steps: number;
  inputSize: number;
  hiddenSize: number;
  x: F32;
  kernel: F32;
  recurrentKernel: F32;
  bias: F32;
  h0: F32;
  c0: F32;
  lengths: Int32Array;
  reverse: boolean;
}

/**
 * The same inputs in the shape both LSTM implementations take: the addon's lstmForward/lstmBackward (with
 * their extra arguments) and the float64 reference (RefLstmInput accepts it as it is).
 */
export function lstmArgs(a: LstmImplInput): LstmInputs {
  return {
    batch: a.batch,
    steps: a.steps,
    inputSize: a.inputSize,
    hiddenSize: a.hiddenSize,
    x: a.x,
    // tensor storage never changes in place: the bf16 tier may keep its rounded copies (binding.ts LstmWeights)
    weights: { kernel: a.kernel, recurrentKernel: a.recurrentKernel, bias: a.bias, frozen: true },
    h0: a.h0,
    c0: a.c0,
    lengths: a.lengths,
    reverse: a.reverse,
  };
}

export function lstmForwardImpl(a: LstmImplInput): { y: F32; h: F32; c: F32 } {
  const f = lstmForwardRef(lstmArgs(a));
  return { y: Float32Array.from(f.y), h: Float32Array.from(f.h), c: Float32Array.from(f.c) };
}

/** The gradients of one direction, as the addon's lstmBackward returns them. */
export type LstmImplGrads = LstmGradients;

/** Backward in float64: the forward pass is recomputed (in float64) rather than kept, so nothing is stored. */
export function lstmBackwardImpl(a: LstmImplInput, dy: F32, dh: F32, dc: F32): LstmImplGrads {
  const inp = lstmArgs(a);
  const g = lstmBackwardRef(inp, lstmForwardRef(inp), { dy, dh, dc });
  return {
    dx: Float32Array.from(g.dx),
    dh0: Float32Array.from(g.dh0),
    dc0: Float32Array.from(g.dc0),
    dKernel: Float32Array.from(g.dKernel),
    dRecurrentKernel: Float32Array.from(g.dRecurrentKernel),
    dBias: Float32Array.from(g.dBias),
  };
}

/** Copies the [B,T,H] output of one direction into its half of a [B,T,2H] array (and back). */
export function interleaveHalf(src: F32, dst: F32, rows: number, H: number, half: 0 | 1): void {
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * H, (r + 1) * H), r * 2 * H + half * H);
}
export function extractHalf(src: F32, rows: number, H: number, half: 0 | 1): F32 {
  const out = new Float32Array(rows * H);
  for (let r = 0; r < rows; r++) out.set(src.subarray(r * 2 * H + half * H, r * 2 * H + half * H + H), r * H);
  return out;
}

// ---- softmax cross-entropy ------------------------------------------------------------------------

function checkLabels(labels: Int32Array, V: number): void {
  for (let n = 0; n < labels.length; n++) {
    const l = labels[n];
    if (l < 0 || l >= V) {
      throw new DeepSentryError('DS_OUT_OF_RANGE', `softmaxCrossEntropy: labels[${n}] = ${l} is outside [0, ${V}) (the number of classes)`);
    }
  }
}

/** The row's max and Σ exp(logits − max): logsumexp = max + log(sum), without overflow. One definition for loss and gradient. */
function rowExpSum(logits: F32, row: number, V: number): { mx: number; s: number } {
  let mx = -Infinity;
  for (let v = 0; v < V; v++) if (logits[row + v] > mx) mx = logits[row + v];
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[row + v] - mx);
  return { mx, s };
}

/** loss[n] = w[n]·(logsumexp(logits[n,:]) − logits[n, labels[n]]), accumulated in float64. */
export function softmaxCrossEntropyImpl(logits: F32, labels: Int32Array, weights: F32, N: number, V: number): F32 {
  checkLabels(labels, V);
  const out = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    const w = weights[n];
    if (w === 0) continue;
    const row = n * V;
    const { mx, s } = rowExpSum(logits, row, V);
    out[n] = w * (mx + Math.log(s) - logits[row + labels[n]]);
  }
  return out;
}

/** dLogits[n,v] = dy[n]·w[n]·(softmax[n,v] − [v = labels[n]]). */
export function softmaxCrossEntropyGradImpl(logits: F32, labels: Int32Array, weights: F32, dy: F32, N: number, V: number): F32 {
  checkLabels(labels, V);
  const out = new Float32Array(N * V);
  for (let n = 0; n < N; n++) {
    const scale = dy[n] * weights[n];
    if (scale === 0) continue;
    const row = n * V;
    const { mx, s } = rowExpSum(logits, row, V);
    for (let v = 0; v < V; v++) out[row + v] = (scale * Math.exp(logits[row + v] - mx)) / s;
    out[row + labels[n]] -= scale;
  }
  return out;
}

/** logits [N,C] = x [N,K]·kernel [K,C] + bias, each sum in float64, stored as float32. */
function denseLogits(x: F32, kernel: F32, bias: F32, N: number, K: number, C: number): F32 {
  const out = new Float32Array(N * C);
  const row = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) row[c] = bias[c];
    for (let k = 0; k < K; k++) {
      const xv = x[n * K + k];
      const kr = k * C;
      for (let c = 0; c < C; c++) row[c] += xv * kernel[kr + c];
    }
    out.set(row, n * C);
  }
  return out;
}

/** DenseSoftmaxCrossEntropy's loss [N]: softmaxCrossEntropyImpl of x·kernel + bias. */
export function denseSoftmaxCrossEntropyImpl(x: F32, kernel: F32, bias: F32, labels: Int32Array, weights: F32, N: number, K: number, C: number): F32 {
  return softmaxCrossEntropyImpl(denseLogits(x, kernel, bias, N, K, C), labels, weights, N, C);
}

/** Its gradient: dLogits = softmaxCrossEntropyGradImpl, then dx = dLogits·kernelᵀ, dKernel = xᵀ·dLogits, dBias = Σ_rows dLogits. */
export function denseSoftmaxCrossEntropyGradImpl(
  x: F32, kernel: F32, bias: F32, labels: Int32Array, weights: F32, dy: F32, N: number, K: number, C: number,
): { dx: F32; dKernel: F32; dBias: F32 } {
  const dl = softmaxCrossEntropyGradImpl(denseLogits(x, kernel, bias, N, K, C), labels, weights, dy, N, C);
  const dx = new Float32Array(N * K);
  const dKernel = new Float64Array(K * C);
  const dBias = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const r = n * C;
    for (let c = 0; c < C; c++) dBias[c] += dl[r + c];
    for (let k = 0; k < K; k++) {
      const xv = x[n * K + k];
      const kr = k * C;
      let s = 0;
      for (let c = 0; c < C; c++) {
        s += dl[r + c] * kernel[kr + c];
        dKernel[kr + c] += xv * dl[r + c];
      }
      dx[n * K + k] = s;
    }
  }
  return { dx, dKernel: Float32Array.from(dKernel), dBias: Float32Array.from(dBias) };
}

// ---- vector distances -----------------------------------------------------------------------------

/** Keeps euclidean and cosine differentiable at 0 (and identical in scoring and in training). */
export const DISTANCE_EPS = 1e-12;

/**
 * The distance between two D-vectors a[ao…ao+D) and b[bo…bo+D), in float64:
 * squared ‖a−b‖², euclidean √(‖a−b‖²+ε), cosine 1 − a·b/(√(‖a‖²+ε)·√(‖b‖²+ε)).
 */
export function distance(metric: DistanceMetric, a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, D: number): number {
  if (metric === 'cosine') {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let d = 0; d < D; d++) {
      const x = a[ao + d];
      const y = b[bo + d];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    return 1 - ab / (Math.sqrt(aa + DISTANCE_EPS) * Math.sqrt(bb + DISTANCE_EPS));
  }
  let s = 0;
  for (let d = 0; d < D; d++) {
    const e = a[ao + d] - b[bo + d];
    s += e * e;
  }
  return metric === 'squared' ? s : Math.sqrt(s + DISTANCE_EPS);
}

export function vectorDistanceImpl(a: F32, b: F32, N: number, D: number, metric: DistanceMetric): F32 {
  const out = new Float32Array(N);
  for (let n = 0; n < N; n++) out[n] = distance(metric, a, n * D, b, n * D, D);
  return out;
}

export function vectorDistanceGradImpl(a: F32, b: F32, dy: F32, N: number, D: number, metric: DistanceMetric): { da: F32; db: F32 } {
  const da = new Float32Array(N * D);
  const db = new Float32Array(N * D);
  for (let n = 0; n < N; n++) {
    const o = n * D;
    const g = dy[n];
    if (metric === 'cosine') {
      let ab = 0;
      let aa = 0;
      let bb = 0;
      for (let d = 0; d < D; d++) {
        ab += a[o + d] * b[o + d];
        aa += a[o + d] * a[o + d];
        bb += b[o + d] * b[o + d];
      }
      const na = Math.sqrt(aa + DISTANCE_EPS);
      const nb = Math.sqrt(bb + DISTANCE_EPS);
      const cos = ab / (na * nb);
      for (let d = 0; d < D; d++) {
        da[o + d] = -g * (b[o + d] / (na * nb) - (cos * a[o + d]) / (na * na));
        db[o + d] = -g * (a[o + d] / (na * nb) - (cos * b[o + d]) / (nb * nb));
      }
      continue;
    }
    let s = 0;
    for (let d = 0; d < D; d++) {
      const e = a[o + d] - b[o + d];
      s += e * e;
    }
    const scale = metric === 'squared' ? 2 * g : g / Math.sqrt(s + DISTANCE_EPS);
    for (let d = 0; d < D; d++) {
      const e = scale * (a[o + d] - b[o + d]);
      da[o + d] = e;
      db[o + d] = -e;
    }
  }
  return { da, db };
}
