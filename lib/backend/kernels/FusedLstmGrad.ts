/**
 * FusedLstmGrad: backward of FusedLstm. Inputs: FusedLstm's seven, its output y, and the gradients dy [B,T,H],
 * dh [B,H], dc [B,H]; attrs {reverse}. Outputs dx, dh0, dc0, dKernel, dRecurrentKernel, dBias.
 */
import type { KernelConfig, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { FusedLstmGrad, FusedLstmAttrs } from '../op_names';
import { LstmImplGrads, LstmImplInput, lstmArgs, lstmBackwardImpl } from '../shared';
import { readLstmInputs } from './FusedLstm';
import { NATIVE_BACKEND_NAME, bindingOf, expectShape, f32, lstmWorkspaces, output } from './kernel_util';

export function gradInputs(backend: object, inputs: NamedTensorInfoMap, a: LstmImplInput) {
  const { batch: B, steps: T, hiddenSize: H } = a;
  const op = FusedLstmGrad;
  const y = expectShape(op, 'y', inputs.y, [B, T, H]);
  return {
    y,
    dy: f32(backend, expectShape(op, 'dy', inputs.dy, [B, T, H]), op, 'dy'),
    dh: f32(backend, expectShape(op, 'dh', inputs.dh, [B, H]), op, 'dh'),
    dc: f32(backend, expectShape(op, 'dc', inputs.dc, [B, H]), op, 'dc'),
  };
}

export function outputs(backend: object, a: LstmImplInput, g: LstmImplGrads): TensorInfo[] {
  const { batch: B, steps: T, inputSize: I, hiddenSize: H } = a;
  return [
    output(backend, [B, T, I], g.dx),
    output(backend, [B, H], g.dh0),
    output(backend, [B, H], g.dc0),
    output(backend, [I, 4 * H], g.dKernel),
    output(backend, [H, 4 * H], g.dRecurrentKernel),
    output(backend, [4 * H], g.dBias),
  ];
}

export const fusedLstmGradCpuConfig: KernelConfig = {
  kernelName: FusedLstmGrad,
  backendName: 'cpu',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const a = readLstmInputs(FusedLstmGrad, backend, inputs, !!(attrs as unknown as FusedLstmAttrs).reverse);
    const g = gradInputs(backend, inputs, a);
    return outputs(backend, a, lstmBackwardImpl(a, g.dy, g.dh, g.dc));
  },
};

export const fusedLstmGradNativeConfig: KernelConfig = {
  kernelName: FusedLstmGrad,
  backendName: NATIVE_BACKEND_NAME,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const a = readLstmInputs(FusedLstmGrad, backend, inputs, !!(attrs as unknown as FusedLstmAttrs).reverse);
    const g = gradInputs(backend, inputs, a);
    const binding = bindingOf(backend);
    const args = lstmArgs(a);
    let y = f32(backend, g.y, FusedLstmGrad, 'y');
    let workspace = lstmWorkspaces.get(g.y.dataId);
    if (!workspace) {
      // The forward ran without training=true (e.g. a gradient of a forward recorded outside a tape):
      // recompute it with the workspace.
      const r = binding.lstmForward({ ...args, training: true });
      y = r.y;
      workspace = r.workspace as Float32Array;
    }
    const r = binding.lstmBackward({ ...args, y, workspace, dy: g.dy, dh: g.dh, dc: g.dc });
    return outputs(backend, a, r);
  },
};
