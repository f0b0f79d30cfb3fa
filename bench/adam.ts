/**
 * Adam over Float32Arrays, step for step the arithmetic of tfjs-core's AdamOptimizer (so the native training
 * step and the tfjs peers apply the same update): m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * w ← w − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε).
 */
import type { NamedArrays } from './workloads';

export interface AdamConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** The optimizer of every training benchmark; ε = 1e-7 is tfjs' float32 backend epsilon (its default). */
export const BENCH_ADAM: AdamConfig = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

export class Adam {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private step = 0;

  /** params: the arrays updated in place, in the order gradients will be given. */
  constructor(
    private readonly params: NamedArrays,
    private readonly cfg: AdamConfig = BENCH_ADAM,
  ) {
    this.m = params.map(([, p]) => new Float32Array(p.length));
    this.v = params.map(([, p]) => new Float32Array(p.length));
  }

  /** grads[i] is the gradient of params[i] (same length). */
  apply(grads: Float32Array[]): void {
    const { learningRate: lr, beta1: b1, beta2: b2, epsilon: eps } = this.cfg;
    this.step++;
    const c1 = 1 - Math.pow(b1, this.step);
    const c2 = 1 - Math.pow(b2, this.step);
    for (let k = 0; k < this.params.length; k++) {
      const w = this.params[k][1];
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const mi = b1 * m[i] + (1 - b1) * gi;
        const vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
      }
    }
  }
}
