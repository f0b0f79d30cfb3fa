/**
 * The benchmarks' Adam: tfjs-core's AdamOptimizer arithmetic (m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * w ← w − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε)), its settings shared by the native rows and the
 * tfjs peers.
 */
import type { NativeBinding } from '../lib/backend/binding';
import type { NamedArrays } from './workloads';

export interface AdamConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** The optimizer of every training benchmark; ε = 1e-7 is tfjs' float32 backend epsilon (its default). */
export const BENCH_ADAM: AdamConfig = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

/**
 * The native rows' optimizer: the addon's adamUpdateMany (native/src/adam.h) with tfjs' convention, so that a
 * native training step is native end to end and applies the update the tfjs peers' AdamOptimizer applies.
 */
export class Adam {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private step = 0;

  /** params: the arrays updated in place, in the order gradients will be given. */
  constructor(
    private readonly nb: NativeBinding,
    private readonly params: NamedArrays,
    private readonly cfg: AdamConfig = BENCH_ADAM,
  ) {
    this.m = params.map(([, p]) => new Float32Array(p.length));
    this.v = params.map(([, p]) => new Float32Array(p.length));
  }

  /** grads[i] is the gradient of params[i] (same length). */
  apply(grads: Float32Array[]): void {
    const { learningRate: lr, beta1, beta2, epsilon } = this.cfg;
    this.step++;
    // tfjs: w − lr·(m/(1−β1^t)) / (√(v/(1−β2^t)) + ε) = w − α·m / (√v·vScale + ε)
    const alpha = lr / (1 - Math.pow(beta1, this.step));
    const vScale = 1 / Math.sqrt(1 - Math.pow(beta2, this.step));
    // every array in one call: one job on the addon's thread pool
    const params = this.params.map(([, w], k) => ({ size: w.length, weights: w, gradients: grads[k], m: this.m[k], v: this.v[k] }));
    this.nb.adamUpdateMany({ params, alpha, beta1, beta2, epsilon, vScale });
  }
}
