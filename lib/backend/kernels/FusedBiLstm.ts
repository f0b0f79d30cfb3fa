/**
 * FusedBiLstm: both directions of a bidirectional LSTM layer (forward t = 0…len-1, backward t = len-1…0) over
 * one input. Inputs (op_names.BILSTM_INPUTS): x [B,T,I], per direction kernel/recurrentKernel/bias, h0/c0
 * [B,H] per direction, lengths int32 [B]. Outputs y [B,T,2H] (forward in [...,0:H], backward in [...,H:2H]),
 * hFw, cFw, hBw, cBw [B,H].
 */
import type { KernelConfig, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { FusedBiLstm, FusedBiLstmAttrs } from '../op_names';
import { LstmImplInput, interleaveHalf, lstmForwardImpl } from '../shared';
import { readLstmInputs } from './FusedLstm';
import { NATIVE_BACKEND_NAME, bindingOf, keepWorkspace, output, spareWorkspace } from './kernel_util';

/** The two directions of a FusedBiLstm / FusedBiLstmGrad call as single-layer inputs (checked). */
export function readBiLstmInputs(op: string, backend: object, inputs: NamedTensorInfoMap): { fw: LstmImplInput; bw: LstmImplInput } {
  const common = { x: inputs.x, lengths: inputs.lengths };
  const fw = readLstmInputs(op, backend, { ...common, kernel: inputs.kernelFw, recurrentKernel: inputs.recurrentKernelFw, bias: inputs.biasFw, h0: inputs.h0Fw, c0: inputs.c0Fw }, false);
  const bw = readLstmInputs(op, backend, { ...common, kernel: inputs.kernelBw, recurrentKernel: inputs.recurrentKernelBw, bias: inputs.biasBw, h0: inputs.h0Bw, c0: inputs.c0Bw }, true);
  return { fw, bw };
}

export function nativeBiLstmArgs(fw: LstmImplInput, bw: LstmImplInput) {
  return {
    batch: fw.batch,
    steps: fw.steps,
    inputSize: fw.inputSize,
    hiddenSize: fw.hiddenSize,
    x: fw.x,
    // tensor storage never changes in place: the bf16 tier may keep its rounded copies (binding.ts LstmWeights)
    forward: { kernel: fw.kernel, recurrentKernel: fw.recurrentKernel, bias: fw.bias, frozen: true },
    backward: { kernel: bw.kernel, recurrentKernel: bw.recurrentKernel, bias: bw.bias, frozen: true },
    h0Fw: fw.h0,
    c0Fw: fw.c0,
    h0Bw: bw.h0,
    c0Bw: bw.c0,
    lengths: fw.lengths,
  };
}

export function outputs(backend: object, a: LstmImplInput, y: Float32Array, s: Float32Array[]): TensorInfo[] {
  const { batch: B, steps: T, hiddenSize: H } = a;
  return [output(backend, [B, T, 2 * H], y), ...s.map((v) => output(backend, [B, H], v))];
}

export const fusedBiLstmCpuConfig: KernelConfig = {
  kernelName: FusedBiLstm,
  backendName: 'cpu',
  kernelFunc: ({ inputs, backend }) => {
    const { fw, bw } = readBiLstmInputs(FusedBiLstm, backend, inputs);
    const rf = lstmForwardImpl(fw);
    const rb = lstmForwardImpl(bw);
    const rows = fw.batch * fw.steps;
    const y = new Float32Array(rows * 2 * fw.hiddenSize);
    interleaveHalf(rf.y, y, rows, fw.hiddenSize, 0);
    interleaveHalf(rb.y, y, rows, fw.hiddenSize, 1);
    return outputs(backend, fw, y, [rf.h, rf.c, rb.h, rb.c]);
  },
};

export const fusedBiLstmNativeConfig: KernelConfig = {
  kernelName: FusedBiLstm,
  backendName: NATIVE_BACKEND_NAME,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { fw, bw } = readBiLstmInputs(FusedBiLstm, backend, inputs);
    const training = !!(attrs as unknown as FusedBiLstmAttrs).training;
    const shape = `bilstm ${fw.batch} ${fw.steps} ${fw.inputSize} ${fw.hiddenSize}`;
    const r = bindingOf(backend).bilstmForward({ ...nativeBiLstmArgs(fw, bw), training, into: training ? { workspace: spareWorkspace(shape) } : undefined });
    const outs = outputs(backend, fw, r.y, [r.hFw, r.cFw, r.hBw, r.cBw]);
    if (r.workspace) keepWorkspace(outs[0], r.workspace, shape);
    return outs;
  },
};
