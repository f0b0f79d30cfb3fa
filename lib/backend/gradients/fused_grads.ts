/**
 * Gradients of DeepSentry's custom kernels. Each runs its backward kernel once, eagerly (the kernel yields all
 * input gradients in one pass), and hands the results out; tensors not used are released by tfjs' backward
 * tidy.
 */
import { engine } from '@tensorflow/tfjs-core';
import type { GradConfig, NamedTensorMap, Tensor } from '@tensorflow/tfjs-core';
import { DeepSentryError } from '../../errors';
import {
  BILSTM_INPUTS,
  DENSE_XENT_INPUTS,
  DenseSoftmaxCrossEntropy,
  DenseSoftmaxCrossEntropyGrad,
  FusedBiLstm,
  FusedBiLstmGrad,
  FusedLstm,
  FusedLstmGrad,
  LSTM_INPUTS,
  SoftmaxCrossEntropy,
  SoftmaxCrossEntropyGrad,
  VectorDistance,
  VectorDistanceGrad,
} from '../op_names';

function named(names: readonly string[], tensors: Tensor[]): NamedTensorMap {
  const m: NamedTensorMap = {};
  names.forEach((n, i) => (m[n] = tensors[i]));
  return m;
}

export const fusedGradConfigs: GradConfig[] = [
  {
    kernelName: FusedLstm,
    inputsToSave: [...LSTM_INPUTS],
    outputsToSave: [true, false, false],
    gradFunc: (dys, saved, attrs) => {
      const [dy, dh, dc] = dys as Tensor[];
      const inputs = named(LSTM_INPUTS, saved.slice(0, LSTM_INPUTS.length));
      const y = saved[LSTM_INPUTS.length];
      const g = engine().runKernel(FusedLstmGrad, { ...inputs, y, dy, dh, dc }, { reverse: !!attrs.reverse }) as Tensor[];
      return {
        x: () => g[0],
        h0: () => g[1],
        c0: () => g[2],
        kernel: () => g[3],
        recurrentKernel: () => g[4],
        bias: () => g[5],
      };
    },
  },
  {
    kernelName: FusedBiLstm,
    inputsToSave: [...BILSTM_INPUTS],
    outputsToSave: [true, false, false, false, false],
    gradFunc: (dys, saved, attrs) => {
      const [dy, dhFw, dcFw, dhBw, dcBw] = dys as Tensor[];
      const inputs = named(BILSTM_INPUTS, saved.slice(0, BILSTM_INPUTS.length));
      const y = saved[BILSTM_INPUTS.length];
      const inputGradients = attrs.inputGradients !== false;
      const g = engine().runKernel(FusedBiLstmGrad, { ...inputs, y, dy, dhFw, dcFw, dhBw, dcBw }, { inputGradients }) as Tensor[];
      // weights only: the kernel returned the six weight gradients; x and the states were declared data
      const w = inputGradients ? 5 : 0;
      const notComputed = (name: string) => (): Tensor => {
        throw new DeepSentryError('DS_INVALID_ARGUMENT', `fusedBiLstm: the gradient of ${name} was asked for, but the layer was called with inputGradients: false (its input and states declared data)`);
      };
      const input = (name: string, i: number) => (inputGradients ? () => g[i] : notComputed(name));
      return {
        x: input('x', 0),
        h0Fw: input('h0Fw', 1),
        c0Fw: input('c0Fw', 2),
        h0Bw: input('h0Bw', 3),
        c0Bw: input('c0Bw', 4),
        kernelFw: () => g[w],
        recurrentKernelFw: () => g[w + 1],
        biasFw: () => g[w + 2],
        kernelBw: () => g[w + 3],
        recurrentKernelBw: () => g[w + 4],
        biasBw: () => g[w + 5],
      };
    },
  },
  {
    kernelName: SoftmaxCrossEntropy,
    inputsToSave: ['logits', 'labels', 'weights'],
    gradFunc: (dy, saved) => {
      const [logits, labels, weights] = saved;
      return { logits: () => engine().runKernel(SoftmaxCrossEntropyGrad, { logits, labels, weights, dy: dy as Tensor }, {}) as Tensor };
    },
  },
  {
    kernelName: DenseSoftmaxCrossEntropy,
    inputsToSave: [...DENSE_XENT_INPUTS],
    gradFunc: (dy, saved) => {
      const g = engine().runKernel(DenseSoftmaxCrossEntropyGrad, { ...named(DENSE_XENT_INPUTS, saved), dy: dy as Tensor }, {}) as Tensor[];
      return { x: () => g[0], kernel: () => g[1], bias: () => g[2] };
    },
  },
  {
    kernelName: VectorDistance,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const g = engine().runKernel(VectorDistanceGrad, { a, b, dy: dy as Tensor }, attrs) as Tensor[];
      return { a: () => g[0], b: () => g[1] };
    },
  },
];
