/**
 * SoftmaxCrossEntropy (per-row, weighted, sparse labels) and its gradient kernel. Inputs logits [N,V]
 * float32, labels [N] int32, weights [N] float32 (0 masks a row, e.g. padding); output loss [N].
 * Gradient kernel: inputs logits, labels, weights, dy [N] → dLogits [N,V]. The same TypeScript runs on both
 * backends: the cost is O(N·V), small next to the matrix product producing the logits.
 */
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad } from '../op_names';
import { softmaxCrossEntropyGradImpl, softmaxCrossEntropyImpl } from '../shared';
import { NATIVE_BACKEND_NAME, expectRank, expectShape, f32, i32, output } from './kernel_util';

const forward: KernelFunc = ({ inputs, backend }) => {
  const op = SoftmaxCrossEntropy;
  const logits = expectRank(op, 'logits', inputs.logits, 2);
  const [N, V] = logits.shape;
  const labels = i32(backend, expectShape(op, 'labels', inputs.labels, [N]), op, 'labels');
  const weights = f32(backend, expectShape(op, 'weights', inputs.weights, [N]), op, 'weights');
  return output(backend, [N], softmaxCrossEntropyImpl(f32(backend, logits, op, 'logits'), labels, weights, N, V));
};

const backward: KernelFunc = ({ inputs, backend }) => {
  const op = SoftmaxCrossEntropyGrad;
  const logits = expectRank(op, 'logits', inputs.logits, 2);
  const [N, V] = logits.shape;
  const labels = i32(backend, expectShape(op, 'labels', inputs.labels, [N]), op, 'labels');
  const weights = f32(backend, expectShape(op, 'weights', inputs.weights, [N]), op, 'weights');
  const dy = f32(backend, expectShape(op, 'dy', inputs.dy, [N]), op, 'dy');
  return output(backend, [N, V], softmaxCrossEntropyGradImpl(f32(backend, logits, op, 'logits'), labels, weights, dy, N, V));
};

export const softmaxCrossEntropyConfigs: KernelConfig[] = ['cpu', NATIVE_BACKEND_NAME].flatMap((backendName) => [
  { kernelName: SoftmaxCrossEntropy, backendName, kernelFunc: forward },
  { kernelName: SoftmaxCrossEntropyGrad, backendName, kernelFunc: backward },
]);
