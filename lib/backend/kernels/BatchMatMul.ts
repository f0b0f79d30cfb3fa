/**
 * BatchMatMul on the native sgemm (tf.matMul and the gradients of every Dense layer land here). Cases the
 * addon does not cover — non-float32 data, empty operands, outer batch shapes that are neither equal nor
 * one of them all-ones — run tfjs-backend-cpu's kernel on the same storage.
 */
import { BatchMatMul, broadcast_util, getKernel, util } from '@tensorflow/tfjs-core';
import type { BatchMatMulAttrs, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { NATIVE_BACKEND_NAME, bindingOf, f32, output } from './kernel_util';

export const batchMatMulNativeConfig: KernelConfig = {
  kernelName: BatchMatMul,
  backendName: NATIVE_BACKEND_NAME,
  kernelFunc: (args) => {
    const { inputs, attrs, backend } = args;
    const a = inputs.a as TensorInfo;
    const b = inputs.b as TensorInfo;
    const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = util.sizeFromShape(outerA);
    const batchB = util.sizeFromShape(outerB);
    const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
    const native =
      a.dtype === 'float32' && b.dtype === 'float32' && ra >= 2 && rb >= 2 && K === Kb && M * N * K > 0 &&
      (sameOuter || batchA === 1 || batchB === 1);
    if (!native) return cpuKernel()(args);
    const outShape = [...broadcast_util.assertAndGetBroadcastShape(outerA, outerB), M, N];
    const values = bindingOf(backend).matMul({
      a: f32(backend, a, BatchMatMul, 'a'),
      b: f32(backend, b, BatchMatMul, 'b'),
      m: M,
      k: K,
      n: N,
      batchA,
      batchB,
      transposeA: !!transposeA,
      transposeB: !!transposeB,
    });
    return output(backend, outShape, values);
  },
};

function cpuKernel() {
  const k = getKernel(BatchMatMul, 'cpu');
  if (!k) throw new Error('tfjs-backend-cpu is not loaded: its BatchMatMul kernel is missing');
  return k.kernelFunc;
}
