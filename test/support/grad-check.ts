/**
 * Central finite-difference check of tfjs gradients: perturbs a few entries of each variable by ±eps and
 * compares (L(+)-L(-))/2eps with tf.variableGrads. Returns the worst relative error
 * |num - grad| / max(1e-2, |num| + |grad|).
 */
import * as tf from '@tensorflow/tfjs-core';

export function checkGrads(f: () => tf.Scalar, vars: tf.Variable[], eps = 1e-2, probes = 4): number {
  const { grads } = tf.variableGrads(f, vars);
  let worst = 0;
  for (const v of vars) {
    const g = grads[v.name].dataSync();
    const base = v.dataSync().slice();
    const idxs = new Set<number>();
    for (let k = 0; k < probes; k++) idxs.add(Math.floor((k * (v.size - 1)) / Math.max(1, probes - 1)));
    for (const idx of idxs) {
      const p = base.slice();
      p[idx] += eps;
      v.assign(tf.tensor(p, v.shape));
      const lp = f().dataSync()[0];
      p[idx] -= 2 * eps;
      v.assign(tf.tensor(p, v.shape));
      const lm = f().dataSync()[0];
      v.assign(tf.tensor(base, v.shape));
      const num = (lp - lm) / (2 * eps);
      worst = Math.max(worst, Math.abs(num - g[idx]) / Math.max(1e-2, Math.abs(num) + Math.abs(g[idx])));
    }
  }
  return worst;
}
