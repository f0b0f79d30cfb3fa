/**
 * Gradients of DeepSentry's custom kernels. Each runs its backward kernel once, eagerly (the kernel yields all
 * input gradients in one pass), and hands the results out; tensors not used are released by tfjs' backward
 * tidy.
 */
import { engine } from '@tensorflow/tfjs-core';
import type { GradConfig, NamedTensorMap, Tensor } from '@tensorflow/tfjs-core';
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
    gradFunc: (dys, saved) => {
      const [dy, dhFw, dcFw, dhBw, dcBw] = dys as Tensor[];
      const inputs = named(BILSTM_INPUTS, saved.slice(0, BILSTM_INPUTS.length));
      const y = saved[BILSTM_INPUTS.length];
      const g = engine().runKernel(FusedBiLstmGrad, { ...inputs, y, dy, dhFw, dcFw, dhBw, dcBw }, {}) as Tensor[];
      return {
        x: () => g[0],
        h0Fw: () => g[1],
        c0Fw: () => g[2],
        h0Bw: () => g[3],
        c0Bw: () => g[4],
        kernelFw: () => g[5],
        recurrentKernelFw: () => g[6],
        biasFw: () => g[7],
        kernelBw: () => g[8],
        recurrentKernelBw: () => g[9],
        biasBw: () => g[10],
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
