/**
 * Adam (Kingma & Ba, bias-corrected, ε = 1e-7 as tfjs) with global-norm gradient clipping, fused into one loop
 * per variable over its typed array. tfjs' optimizer runs ~10 elementwise tensor ops per variable per step,
 * and tfjs-backend-cpu's broadcasting elementwise kernels made that as slow as the whole forward and backward
 * pass of the detector (measured: 61 ms of a 133 ms step). On the native and CUDA backends the loop is the
 * addon's adamUpdateMany, one call for all variables (native/src/adam.h: the same formula, vectorised and
 * threaded, computed in double and stored as float32 exactly as this loop does, so both give the same bits);
 * on `cpu` (pure TypeScript, no addon) it runs here. Deterministic either way: a fixed order of operations.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NativeBinding } from '../backend/binding';
import { loadNative } from '../backend/native';
import { currentBackend } from '../backend/select';

export class Adam {
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private step = 0;
  constructor(
    readonly learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-7,
  ) {}

  /**
   * One update of `vars` from `grads` (keyed by variable name). Gradients are first scaled so that their
   * global L2 norm is at most clipNorm (0 = no clipping). Returns the norm before clipping.
   */
  apply(vars: tf.Variable[], grads: Record<string, tf.Tensor>, clipNorm: number): number {
    const g = vars.map((v) => grads[v.name]?.dataSync() as Float32Array | undefined);
    let sq = 0;
    for (const a of g) if (a) for (let i = 0; i < a.length; i++) sq += a[i] * a[i];
    const norm = Math.sqrt(sq);
    const scale = clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1;
    this.step++;
    const { beta1: b1, beta2: b2, epsilon: eps } = this;
    const lr = (this.learningRate * Math.sqrt(1 - b2 ** this.step)) / (1 - b1 ** this.step);
    const native = nativeAdam();
    const updates: { variable: tf.Variable; w: Float32Array; grad: Float32Array; m: Float32Array; v: Float32Array }[] = [];
    vars.forEach((variable, k) => {
      const grad = g[k];
      if (!grad) return;
      let m = this.m.get(variable.name);
      let v = this.v.get(variable.name);
      if (!m || !v) {
        m = new Float32Array(grad.length);
        v = new Float32Array(grad.length);
        this.m.set(variable.name, m);
        this.v.set(variable.name, v);
      }
      updates.push({ variable, w: (variable.dataSync() as Float32Array).slice(), grad, m, v });
    });
    const nonEmpty = updates.filter((u) => u.w.length > 0);
    if (native && nonEmpty.length > 0) {
      // every variable in one call: one job on the addon's thread pool
      const params = nonEmpty.map((u) => ({ size: u.w.length, weights: u.w, gradients: u.grad, m: u.m, v: u.v }));
      native.adamUpdateMany({ params, alpha: lr, beta1: b1, beta2: b2, epsilon: eps, gradScale: scale });
    } else if (!native) {
      for (const { w, grad, m, v } of updates) {
        for (let i = 0; i < w.length; i++) {
          const gi = grad[i] * scale;
          m[i] = b1 * m[i] + (1 - b1) * gi;
          v[i] = b2 * v[i] + (1 - b2) * gi * gi;
          w[i] -= (lr * m[i]) / (Math.sqrt(v[i]) + eps);
        }
      }
    }
    for (const { variable, w } of updates) variable.assign(tf.tensor(w, variable.shape, 'float32'));
    return norm;
  }
}

/** The addon when the active backend runs on it (native or CUDA), else null: `cpu` means no addon. */
function nativeAdam(): NativeBinding | null {
  const sel = currentBackend();
  return sel !== null && sel.backend !== 'cpu' ? loadNative() : null;
}
