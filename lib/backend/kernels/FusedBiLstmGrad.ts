/**
 * FusedBiLstmGrad: backward of FusedBiLstm. Inputs: FusedBiLstm's twelve, its output y [B,T,2H], and the
 * gradients dy [B,T,2H], dhFw, dcFw, dhBw, dcBw [B,H]. Outputs dx (both directions summed), dh0Fw, dc0Fw,
 * dh0Bw, dc0Bw, then dKernel, dRecurrentKernel, dBias of the forward and of the backward direction; with the
 * attribute inputGradients: false, only the last six (the input and states are data).
 */
import type { KernelConfig, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BiLstmGradients, BiLstmWeightGradients } from '../binding';
import { FusedBiLstmGrad, type FusedBiLstmGradAttrs } from '../op_names';
import { LstmImplInput, extractHalf, lstmBackwardImpl } from '../shared';
import { nativeBiLstmArgs, readBiLstmInputs } from './FusedBiLstm';
import { NATIVE_BACKEND_NAME, bindingOf, expectShape, f32, lstmWorkspaces, output } from './kernel_util';

export function gradInputs(backend: object, inputs: NamedTensorInfoMap, a: LstmImplInput) {
  const { batch: B, steps: T, hiddenSize: H } = a;
  const op = FusedBiLstmGrad;
  const state = (n: string) => f32(backend, expectShape(op, n, inputs[n], [B, H]), op, n);
  return {
    y: expectShape(op, 'y', inputs.y, [B, T, 2 * H]),
    dy: f32(backend, expectShape(op, 'dy', inputs.dy, [B, T, 2 * H]), op, 'dy'),
    dhFw: state('dhFw'),
    dcFw: state('dcFw'),
    dhBw: state('dhBw'),
    dcBw: state('dcBw'),
  };
}

/** The bidirectional gradients as the addon returns them (the float64 reference returns the same shape). */
export type BiGrads = BiLstmGradients;

/** With inputGradients (attribute, default true): dx, the four state gradients, then the six weight gradients; without, the six only. */
export function outputs(backend: object, a: LstmImplInput, g: BiGrads | BiLstmWeightGradients): TensorInfo[] {
  const { batch: B, steps: T, inputSize: I, hiddenSize: H } = a;
  const state = (v: Float32Array) => output(backend, [B, H], v);
  const weights = (w: BiGrads['forward']) => [output(backend, [I, 4 * H], w.dKernel), output(backend, [H, 4 * H], w.dRecurrentKernel), output(backend, [4 * H], w.dBias)];
  const ws = [...weights(g.forward), ...weights(g.backward)];
  if (!('dx' in g)) return ws;
  return [output(backend, [B, T, I], g.dx), state(g.dh0Fw), state(g.dc0Fw), state(g.dh0Bw), state(g.dc0Bw), ...ws];
}

function wantInputGradients(attrs: unknown): boolean {
  return (attrs as Partial<FusedBiLstmGradAttrs> | undefined)?.inputGradients !== false;
}

export const fusedBiLstmGradCpuConfig: KernelConfig = {
  kernelName: FusedBiLstmGrad,
  backendName: 'cpu',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { fw, bw } = readBiLstmInputs(FusedBiLstmGrad, backend, inputs);
    const g = gradInputs(backend, inputs, fw);
    const rows = fw.batch * fw.steps;
    const H = fw.hiddenSize;
    const gf = lstmBackwardImpl(fw, extractHalf(g.dy, rows, H, 0), g.dhFw, g.dcFw);
    const gb = lstmBackwardImpl(bw, extractHalf(g.dy, rows, H, 1), g.dhBw, g.dcBw);
    if (!wantInputGradients(attrs)) return outputs(backend, fw, { forward: gf, backward: gb });
    const dx = gf.dx;
    for (let i = 0; i < dx.length; i++) dx[i] += gb.dx[i];
    return outputs(backend, fw, {
      dx,
      dh0Fw: gf.dh0,
      dc0Fw: gf.dc0,
      dh0Bw: gb.dh0,
      dc0Bw: gb.dc0,
      forward: gf,
      backward: gb,
    });
  },
};

export const fusedBiLstmGradNativeConfig: KernelConfig = {
  kernelName: FusedBiLstmGrad,
  backendName: NATIVE_BACKEND_NAME,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { fw, bw } = readBiLstmInputs(FusedBiLstmGrad, backend, inputs);
    const g = gradInputs(backend, inputs, fw);
    const binding = bindingOf(backend);
    const args = nativeBiLstmArgs(fw, bw);
    let y = f32(backend, g.y, FusedBiLstmGrad, 'y');
    let workspace = lstmWorkspaces.get(g.y.dataId);
    if (!workspace) {
      const r = binding.bilstmForward({ ...args, training: true });
      y = r.y;
      workspace = r.workspace as Float32Array;
    }
    const upstream = { y, workspace, dy: g.dy, dhFw: g.dhFw, dcFw: g.dcFw, dhBw: g.dhBw, dcBw: g.dcBw };
    if (!wantInputGradients(attrs)) return outputs(backend, fw, binding.bilstmBackward({ ...args, ...upstream, inputGradients: false }));
    return outputs(backend, fw, binding.bilstmBackward({ ...args, ...upstream }));
  },
};
