/**
 * Names and attributes of DeepSentry's custom tfjs kernels: the one place they are spelled. Each is a
 * kernel registered for both the `cpu` backend (pure TypeScript, the fallback) and the `deepsentry` backend
 * (native addon), called through `engine().runKernel(name, inputs, attrs)` by the wrappers in ops.ts.
 */

/** One LSTM layer over a padded batch. Inputs: {@link FusedLstmInputs}; outputs [y, h, c]. */
export const FusedLstm = 'DsFusedLstm';
/** Backward of FusedLstm. Outputs [dx, dh0, dc0, dKernel, dRecurrentKernel, dBias]. */
export const FusedLstmGrad = 'DsFusedLstmGrad';
/** Both directions of a bidirectional LSTM layer. Outputs [y (B,T,2H), hFw, cFw, hBw, cBw]. */
export const FusedBiLstm = 'DsFusedBiLstm';
/** Backward of FusedBiLstm. Outputs [dx, dh0Fw, dc0Fw, dh0Bw, dc0Bw, dKFw, dRFw, dBFw, dKBw, dRBw, dBBw]. */
export const FusedBiLstmGrad = 'DsFusedBiLstmGrad';
/** Per-row weighted sparse softmax cross-entropy: logits [N,V], labels int32 [N], weights [N] → loss [N]. */
export const SoftmaxCrossEntropy = 'DsSoftmaxCrossEntropy';
export const SoftmaxCrossEntropyGrad = 'DsSoftmaxCrossEntropyGrad';
/**
 * A Dense layer and SoftmaxCrossEntropy in one kernel: x [N,K], kernel [K,C], bias [C], labels int32 [N],
 * weights [N] → loss [N] = SoftmaxCrossEntropy(x·kernel + bias, labels, weights). The logits are never a
 * tensor. Gradient kernel: the same inputs and dy [N] → [dx, dKernel, dBias].
 */
export const DenseSoftmaxCrossEntropy = 'DsDenseSoftmaxCrossEntropy';
export const DenseSoftmaxCrossEntropyGrad = 'DsDenseSoftmaxCrossEntropyGrad';
export const DENSE_XENT_INPUTS = ['x', 'kernel', 'bias', 'labels', 'weights'] as const;
/** Row-wise distance between a [N,D] and b [N,D] → [N] (metric in attrs). */
export const VectorDistance = 'DsVectorDistance';
export const VectorDistanceGrad = 'DsVectorDistanceGrad';

/** The distances the detector and the scoring API understand. */
export type DistanceMetric = 'squared' | 'euclidean' | 'cosine';
export const DISTANCE_METRICS: readonly DistanceMetric[] = ['squared', 'euclidean', 'cosine'];

/** Inputs of FusedLstm (all required; the wrapper fills defaults). Layout as native/src/lstm.h. */
export interface FusedLstmInputs {
  x: unknown; // [B,T,I] float32
  kernel: unknown; // [I,4H]
  recurrentKernel: unknown; // [H,4H]
  bias: unknown; // [4H]
  h0: unknown; // [B,H]
  c0: unknown; // [B,H]
  lengths: unknown; // [B] int32, each in [0,T]
}

export interface FusedLstmAttrs {
  /** run t = len-1 … 0 */
  reverse: boolean;
  /** keep what backward needs (set by the wrapper when a gradient tape is recording) */
  training: boolean;
}

export interface FusedBiLstmAttrs {
  training: boolean;
  /** false: x and the initial states are data, their gradients are never asked for (FusedBiLstmOptions) */
  inputGradients: boolean;
}

/** FusedBiLstmGrad's attribute: false → the weight gradients only (the kernel's last six outputs). */
export interface FusedBiLstmGradAttrs {
  inputGradients: boolean;
}

export interface VectorDistanceAttrs {
  metric: DistanceMetric;
}

/** Names of FusedBiLstm's inputs, in the order the kernels read them. */
export const BILSTM_INPUTS = [
  'x',
  'kernelFw',
  'recurrentKernelFw',
  'biasFw',
  'kernelBw',
  'recurrentKernelBw',
  'biasBw',
  'h0Fw',
  'c0Fw',
  'h0Bw',
  'c0Bw',
  'lengths',
] as const;
export const LSTM_INPUTS = ['x', 'kernel', 'recurrentKernel', 'bias', 'h0', 'c0', 'lengths'] as const;

/**
 * Row scatter-add: out[indices[i], :] += x[i, :] for x [N, D], indices int32 [N] → [numRows, D]. The gradient
 * of an embedding lookup (tfjs-backend-cpu's UnsortedSegmentSum builds one mask per segment: ~100× slower).
 */
export const SegmentSumRows = 'DsSegmentSumRows';
export interface SegmentSumRowsAttrs {
  numRows: number;
}
