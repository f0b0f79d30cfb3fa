/**
 * FusedLstm: one LSTM layer over a padded batch, for the `cpu` backend (float64 reference math) and the
 * `deepsentry` backend (native kernel). Inputs x [B,T,I], kernel [I,4H], recurrentKernel [H,4H], bias [4H],
 * h0 [B,H], c0 [B,H], lengths int32 [B]; outputs y [B,T,H], h [B,H], c [B,H].
 */
import type { KernelConfig, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { FusedLstm, FusedLstmAttrs } from '../op_names';
import { LstmImplInput, lstmArgs, lstmForwardImpl } from '../shared';
import { NATIVE_BACKEND_NAME, bindingOf, checkLengths, expectRank, expectShape, f32, i32, keepWorkspace, output, spareWorkspace } from './kernel_util';

/** Reads and checks the seven inputs of FusedLstm / FusedLstmGrad. */
export function readLstmInputs(op: string, backend: object, inputs: NamedTensorInfoMap, reverse: boolean): LstmImplInput {
  const x = expectRank(op, 'x', inputs.x, 3);
  const [B, T, I] = x.shape;
  const k = expectRank(op, 'kernel', inputs.kernel, 2);
  const H = k.shape[1] / 4;
  expectShape(op, 'kernel', k, [I, 4 * H]);
  expectShape(op, 'recurrentKernel', inputs.recurrentKernel, [H, 4 * H]);
  expectShape(op, 'bias', inputs.bias, [4 * H]);
  expectShape(op, 'h0', inputs.h0, [B, H]);
  expectShape(op, 'c0', inputs.c0, [B, H]);
  expectShape(op, 'lengths', inputs.lengths, [B]);
  const lengths = i32(backend, inputs.lengths as TensorInfo, op, 'lengths');
  checkLengths(op, lengths, T);
  return {
    batch: B,
    steps: T,
    inputSize: I,
    hiddenSize: H,
    x: f32(backend, x, op, 'x'),
    kernel: f32(backend, k, op, 'kernel'),
    recurrentKernel: f32(backend, inputs.recurrentKernel as TensorInfo, op, 'recurrentKernel'),
    bias: f32(backend, inputs.bias as TensorInfo, op, 'bias'),
    h0: f32(backend, inputs.h0 as TensorInfo, op, 'h0'),
    c0: f32(backend, inputs.c0 as TensorInfo, op, 'c0'),
    lengths,
    reverse,
  };
}

export function outputs(backend: object, a: LstmImplInput, y: Float32Array, h: Float32Array, c: Float32Array): TensorInfo[] {
  const { batch: B, steps: T, hiddenSize: H } = a;
  return [output(backend, [B, T, H], y), output(backend, [B, H], h), output(backend, [B, H], c)];
}

export const fusedLstmCpuConfig: KernelConfig = {
  kernelName: FusedLstm,
  backendName: 'cpu',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const a = readLstmInputs(FusedLstm, backend, inputs, !!(attrs as unknown as FusedLstmAttrs).reverse);
    const r = lstmForwardImpl(a);
    return outputs(backend, a, r.y, r.h, r.c);
  },
};

export const fusedLstmNativeConfig: KernelConfig = {
  kernelName: FusedLstm,
  backendName: NATIVE_BACKEND_NAME,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const at = attrs as unknown as FusedLstmAttrs;
    const a = readLstmInputs(FusedLstm, backend, inputs, !!at.reverse);
    const training = !!at.training;
    const shape = `lstm ${a.batch} ${a.steps} ${a.inputSize} ${a.hiddenSize}`;
    const r = bindingOf(backend).lstmForward({ ...lstmArgs(a), training, into: training ? { workspace: spareWorkspace(shape) } : undefined });
    const outs = outputs(backend, a, r.y, r.h, r.c);
    if (r.workspace) keepWorkspace(outs[0], r.workspace, shape);
    return outs;
  },
};
