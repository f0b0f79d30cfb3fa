/**
 * FusedLstm, FusedLstmGrad, FusedBiLstm, FusedBiLstmGrad for a CUDA backend (backend_cuda.ts): same inputs,
 * outputs and checks as the native kernels (FusedLstm.ts …), the work done by the layer's CudaLstm, whose
 * weights the backend's cache keeps on the device. Calls too small for the device (CudaBackend.useDevice) and
 * calls after a device failure in `auto` run the native CPU kernels instead, unchanged.
 *
 * A device forward run with training=true keeps its workspace beside its `y` (cudaWorkspaces), with the
 * CudaLstm and the upload generation it came from; the gradient uses it only when the same layer still holds
 * the same weights, and otherwise recomputes the forward on the device (as the native gradient does when a
 * forward kept no workspace). A CPU forward's workspace (lstmWorkspaces) sends its gradient to the CPU too.
 */
import type { KernelConfig, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { AcquiredLstm, CudaBackend } from '../backend_cuda';
import type { BiLstmForwardResult, BiLstmGradients, CudaLstm } from '../binding';
import { FusedBiLstm, FusedBiLstmAttrs, FusedBiLstmGrad, FusedLstm, FusedLstmAttrs, FusedLstmGrad } from '../op_names';
import type { LstmImplInput } from '../shared';
import { fusedBiLstmNativeConfig, outputs as biOutputs, readBiLstmInputs } from './FusedBiLstm';
import { fusedBiLstmGradNativeConfig, gradInputs as biGradInputs, outputs as biGradOutputs } from './FusedBiLstmGrad';
import { fusedLstmNativeConfig, outputs as lstmOutputs, readLstmInputs } from './FusedLstm';
import { fusedLstmGradNativeConfig, gradInputs as lstmGradInputs, outputs as lstmGradOutputs } from './FusedLstmGrad';
import { f32, lstmWorkspaces } from './kernel_util';

/** A device forward's workspace, valid for backward only on the same CudaLstm at the same upload generation. */
interface DeviceWorkspace {
  lstm: CudaLstm;
  generation: number;
  workspace: Float32Array;
}

/** Keyed by the dataId of the forward's `y` output (it lives as long as y does), like lstmWorkspaces. */
export const cudaWorkspaces = new WeakMap<object, DeviceWorkspace>();

function weightsOf(inputs: NamedTensorInfoMap, suffix: '' | 'Fw' | 'Bw') {
  return {
    kernel: inputs[`kernel${suffix}`] as TensorInfo,
    recurrentKernel: inputs[`recurrentKernel${suffix}`] as TensorInfo,
    bias: inputs[`bias${suffix}`] as TensorInfo,
  };
}

/** The per-call arguments of CudaLstm.forward/backward for one direction (weights live on the device). */
function callArgs(a: LstmImplInput) {
  return { batch: a.batch, steps: a.steps, x: a.x, h0: a.h0, c0: a.c0, lengths: a.lengths, reverse: a.reverse };
}

function biCallArgs(fw: LstmImplInput, bw: LstmImplInput) {
  return { batch: fw.batch, steps: fw.steps, x: fw.x, h0Fw: fw.h0, c0Fw: fw.c0, h0Bw: bw.h0, c0Bw: bw.c0, lengths: fw.lengths };
}

/** The saved workspace when it belongs to these device weights, else null. */
function savedWorkspace(y: TensorInfo, acq: AcquiredLstm): Float32Array | null {
  const s = cudaWorkspaces.get(y.dataId);
  return s && s.lstm === acq.lstm && s.generation === acq.generation ? s.workspace : null;
}

/**
 * Whether a gradient goes to the device: where its forward ran when that is known (a workspace was kept), else
 * by the size rule.
 */
function gradOnDevice(be: CudaBackend, y: TensorInfo, batch: number, hiddenSize: number): boolean {
  if (be.cudaFailure !== null) return false;
  if (cudaWorkspaces.has(y.dataId)) return true;
  if (lstmWorkspaces.has(y.dataId)) return false;
  return be.useDevice(batch, hiddenSize);
}

export function cudaKernelConfigs(backendName: string): KernelConfig[] {
  const lstm: KernelFunc = (args) => {
    const be = args.backend as CudaBackend;
    const at = args.attrs as unknown as FusedLstmAttrs;
    const a = readLstmInputs(FusedLstm, be, args.inputs, !!at.reverse);
    return be.run(
      be.useDevice(a.batch, a.hiddenSize) && a.steps > 0,
      () => {
        const acq = be.cache.acquire(a.inputSize, a.hiddenSize, weightsOf(args.inputs, ''), undefined, be.precision);
        const r = acq.lstm.forward({ ...callArgs(a), training: !!at.training });
        const outs = lstmOutputs(be, a, r.y, r.h, r.c);
        if (r.workspace) cudaWorkspaces.set(outs[0].dataId, { lstm: acq.lstm, generation: acq.generation, workspace: r.workspace });
        return outs;
      },
      () => fusedLstmNativeConfig.kernelFunc(args) as TensorInfo[],
    );
  };

  const lstmGrad: KernelFunc = (args) => {
    const be = args.backend as CudaBackend;
    const a = readLstmInputs(FusedLstmGrad, be, args.inputs, !!(args.attrs as unknown as FusedLstmAttrs).reverse);
    const g = lstmGradInputs(be, args.inputs, a);
    return be.run(
      gradOnDevice(be, g.y, a.batch, a.hiddenSize) && a.steps > 0,
      () => {
        const acq = be.cache.acquire(a.inputSize, a.hiddenSize, weightsOf(args.inputs, ''), undefined, be.precision);
        let y = f32(be, g.y, FusedLstmGrad, 'y');
        let workspace = savedWorkspace(g.y, acq);
        if (!workspace) {
          const r = acq.lstm.forward({ ...callArgs(a), training: true });
          y = r.y;
          workspace = r.workspace as Float32Array;
        }
        return lstmGradOutputs(be, a, acq.lstm.backward({ ...callArgs(a), y, workspace, dy: g.dy, dh: g.dh, dc: g.dc }));
      },
      () => fusedLstmGradNativeConfig.kernelFunc(args) as TensorInfo[],
    );
  };

  const bilstm: KernelFunc = (args) => {
    const be = args.backend as CudaBackend;
    const { fw, bw } = readBiLstmInputs(FusedBiLstm, be, args.inputs);
    const training = !!(args.attrs as unknown as FusedBiLstmAttrs).training;
    return be.run(
      be.useDevice(fw.batch, fw.hiddenSize) && fw.steps > 0,
      () => {
        const acq = be.cache.acquire(fw.inputSize, fw.hiddenSize, weightsOf(args.inputs, 'Fw'), weightsOf(args.inputs, 'Bw'), be.precision);
        const r = acq.lstm.forward({ ...biCallArgs(fw, bw), training }) as unknown as BiLstmForwardResult;
        const outs = biOutputs(be, fw, r.y, [r.hFw, r.cFw, r.hBw, r.cBw]);
        if (r.workspace) cudaWorkspaces.set(outs[0].dataId, { lstm: acq.lstm, generation: acq.generation, workspace: r.workspace });
        return outs;
      },
      () => fusedBiLstmNativeConfig.kernelFunc(args) as TensorInfo[],
    );
  };

  const bilstmGrad: KernelFunc = (args) => {
    const be = args.backend as CudaBackend;
    const { fw, bw } = readBiLstmInputs(FusedBiLstmGrad, be, args.inputs);
    const g = biGradInputs(be, args.inputs, fw);
    return be.run(
      gradOnDevice(be, g.y, fw.batch, fw.hiddenSize) && fw.steps > 0,
      () => {
        const acq = be.cache.acquire(fw.inputSize, fw.hiddenSize, weightsOf(args.inputs, 'Fw'), weightsOf(args.inputs, 'Bw'), be.precision);
        let y = f32(be, g.y, FusedBiLstmGrad, 'y');
        let workspace = savedWorkspace(g.y, acq);
        if (!workspace) {
          const r = acq.lstm.forward({ ...biCallArgs(fw, bw), training: true }) as unknown as BiLstmForwardResult;
          y = r.y;
          workspace = r.workspace as Float32Array;
        }
        const r = acq.lstm.backward({
          ...biCallArgs(fw, bw), y, workspace, dy: g.dy, dhFw: g.dhFw, dcFw: g.dcFw, dhBw: g.dhBw, dcBw: g.dcBw,
        }) as unknown as BiLstmGradients;
        return biGradOutputs(be, fw, r);
      },
      () => fusedBiLstmGradNativeConfig.kernelFunc(args) as TensorInfo[],
    );
  };

  return [
    { kernelName: FusedLstm, backendName, kernelFunc: lstm },
    { kernelName: FusedLstmGrad, backendName, kernelFunc: lstmGrad },
    { kernelName: FusedBiLstm, backendName, kernelFunc: bilstm },
    { kernelName: FusedBiLstmGrad, backendName, kernelFunc: bilstmGrad },
  ];
}
