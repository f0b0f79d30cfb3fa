/** The one list of gradients DeepSentry registers (idempotent; never overrides one registered by others). */
import { getGradient, registerGradient } from '@tensorflow/tfjs-core';
import { fusedGradConfigs } from './gradients/fused_grads';
import { mathGradConfigs } from './gradients/math_grads';

let done = false;

export function registerAllGradients(): void {
  if (done) return;
  done = true;
  for (const g of [...fusedGradConfigs, ...mathGradConfigs]) {
    // A program that also loaded tfjs' full gradient set keeps those for the standard kernels.
    if (getGradient(g.kernelName) == null) registerGradient(g);
  }
}
