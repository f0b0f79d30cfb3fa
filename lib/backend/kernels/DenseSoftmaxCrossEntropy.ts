/**
 * DenseSoftmaxCrossEntropy (a Dense layer and the per-row weighted sparse softmax cross-entropy of its output)
 * and its gradient kernel. Inputs x [N,K], kernel [K,C], bias [C] float32, labels [N] int32, weights [N]
 * float32; output loss [N]. Gradient kernel: the same inputs and dy [N] → [dx, dKernel, dBias].
 *
 * The native kernels are one addon call each (denseSoftmaxXent, native/src/train_ops.h): the [N,C] logits are
 * never a tensor, they exist one block of rows at a time inside the addon. The gradient recomputes them (one
 * product of N·K·C) rather than keeping [N,C] floats alive between forward and backward. The `cpu` kernels
 * run shared.ts' TypeScript. The CUDA backend has no device kernel for it and runs the native CPU one
 * (backend_cuda.ts registers every native kernel it does not override).
 */
import type { KernelConfig, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { DenseSoftmaxCrossEntropy, DenseSoftmaxCrossEntropyGrad } from '../op_names';
import { denseSoftmaxCrossEntropyGradImpl, denseSoftmaxCrossEntropyImpl } from '../shared';
import { NATIVE_BACKEND_NAME, bindingOf, expectRank, expectShape, f32, i32, output } from './kernel_util';

interface Read {
  N: number;
  K: number;
  C: number;
  x: Float32Array;
  kernel: Float32Array;
  bias: Float32Array;
  labels: Int32Array;
  weights: Float32Array;
}

function read(op: string, inputs: NamedTensorInfoMap, backend: object): Read {
  const x = expectRank(op, 'x', inputs.x, 2);
  const [N, K] = x.shape;
  const kernel = expectRank(op, 'kernel', inputs.kernel, 2);
  const C = kernel.shape[1];
  expectShape(op, 'kernel', kernel, [K, C]);
  return {
    N,
    K,
    C,
    x: f32(backend, x, op, 'x'),
    kernel: f32(backend, kernel, op, 'kernel'),
    bias: f32(backend, expectShape(op, 'bias', inputs.bias, [C]), op, 'bias'),
    labels: i32(backend, expectShape(op, 'labels', inputs.labels, [N]), op, 'labels'),
    weights: f32(backend, expectShape(op, 'weights', inputs.weights, [N]), op, 'weights'),
  };
}

function dyOf(op: string, inputs: NamedTensorInfoMap, backend: object, N: number): Float32Array {
  return f32(backend, expectShape(op, 'dy', inputs.dy, [N]), op, 'dy');
}

/** The addon refuses empty dimensions; an empty problem has an empty (or zero) answer. */
const empty = (r: Read) => r.N === 0 || r.K === 0 || r.C === 0;

const cpuForward: KernelFunc = ({ inputs, backend }) => {
  const r = read(DenseSoftmaxCrossEntropy, inputs, backend);
  return output(backend, [r.N], denseSoftmaxCrossEntropyImpl(r.x, r.kernel, r.bias, r.labels, r.weights, r.N, r.K, r.C));
};

const cpuBackward: KernelFunc = ({ inputs, backend }) => {
  const op = DenseSoftmaxCrossEntropyGrad;
  const r = read(op, inputs, backend);
  const g = denseSoftmaxCrossEntropyGradImpl(r.x, r.kernel, r.bias, r.labels, r.weights, dyOf(op, inputs, backend, r.N), r.N, r.K, r.C);
  return gradOutputs(backend, r, g);
};

function gradOutputs(backend: object, r: Read, g: { dx: Float32Array; dKernel: Float32Array; dBias: Float32Array }): TensorInfo[] {
  return [output(backend, [r.N, r.K], g.dx), output(backend, [r.K, r.C], g.dKernel), output(backend, [r.C], g.dBias)];
}

const nativeArgs = (r: Read) => ({ rows: r.N, inSize: r.K, classes: r.C, x: r.x, kernel: r.kernel, bias: r.bias, labels: r.labels, weights: r.weights });

const nativeForward: KernelFunc = (args) => {
  const r = read(DenseSoftmaxCrossEntropy, args.inputs, args.backend);
  if (empty(r)) return cpuForward(args);
  return output(args.backend, [r.N], bindingOf(args.backend).denseSoftmaxXent(nativeArgs(r)).loss);
};

const nativeBackward: KernelFunc = (args) => {
  const op = DenseSoftmaxCrossEntropyGrad;
  const r = read(op, args.inputs, args.backend);
  if (empty(r)) return cpuBackward(args);
  const dLoss = dyOf(op, args.inputs, args.backend, r.N);
  const g = bindingOf(args.backend).denseSoftmaxXent({ ...nativeArgs(r), gradient: true, dLoss });
  return gradOutputs(args.backend, r, { dx: g.dx as Float32Array, dKernel: g.dKernel as Float32Array, dBias: g.dBias as Float32Array });
};

export const denseSoftmaxCrossEntropyConfigs: KernelConfig[] = [
  { kernelName: DenseSoftmaxCrossEntropy, backendName: 'cpu', kernelFunc: cpuForward },
  { kernelName: DenseSoftmaxCrossEntropyGrad, backendName: 'cpu', kernelFunc: cpuBackward },
  { kernelName: DenseSoftmaxCrossEntropy, backendName: NATIVE_BACKEND_NAME, kernelFunc: nativeForward },
  { kernelName: DenseSoftmaxCrossEntropyGrad, backendName: NATIVE_BACKEND_NAME, kernelFunc: nativeBackward },
];
