/**
 * What every implementation of a workload offers the harness (native kernels, tfjs peers). Each one is
 * built on one fixed batch and fixed starting parameters (bench/workloads.ts); the benchmark times these
 * methods, and the agreement check compares their outputs across implementations before any timing.
 */
import type { NamedArrays } from './workloads';

export interface W1Impl {
  /** predictions [B, out] and per-window anomaly scores (mean squared error vs the target) [B] */
  forward(): { pred: Float32Array; scores: Float32Array };
  /**
   * The same, written into arrays the implementation allocated once (returned, and overwritten by the next
   * call): what a scoring loop that keeps its output buffers does. The forward workloads time this one where
   * an implementation has it (native, and onnxruntime with pre-allocated output tensors).
   */
  forwardInto?(): { pred: Float32Array; scores: Float32Array };
  /** the loss (mean of the scores) and its gradient for every parameter, W1_PARAM_NAMES order; no update */
  gradients(): { loss: number; grads: NamedArrays };
  /** one training step: forward, backward, Adam update; returns the loss before the update */
  trainStep(): number;
  dispose(): void;
}

export interface W2Impl {
  /** true when the embedding is not trained (tfjs-wasm: no UnsortedSegmentSum for its gradient) */
  readonly frozenEmbedding: boolean;
  /** the encoder's final hidden state [B, H] of every sentence (batched encoding) */
  encode(): Float32Array;
  /** mean softmax cross-entropy of reconstructing the batch */
  lossValue(): number;
  /** loss and gradients (W2_PARAM_NAMES order; without the embedding when it is frozen); no update */
  gradients(): { loss: number; grads: NamedArrays };
  /** one training step: forward, backward, Adam update; returns the loss before the update */
  trainStep(): number;
  dispose(): void;
}
