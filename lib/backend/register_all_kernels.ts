/**
 * The one list of DeepSentry's kernels, and the kernel table of the `deepsentry` backend: every
 * tfjs-backend-cpu kernel re-registered for it (same typed-array storage, so no copies), then the native
 * overrides and the custom fused ops on top. Idempotent.
 */
import { getKernel, getKernelsForBackend, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { batchMatMulNativeConfig } from './kernels/BatchMatMul';
import { denseSoftmaxCrossEntropyConfigs } from './kernels/DenseSoftmaxCrossEntropy';
import { fusedBiLstmCpuConfig, fusedBiLstmNativeConfig } from './kernels/FusedBiLstm';
import { fusedBiLstmGradCpuConfig, fusedBiLstmGradNativeConfig } from './kernels/FusedBiLstmGrad';
import { fusedLstmCpuConfig, fusedLstmNativeConfig } from './kernels/FusedLstm';
import { fusedLstmGradCpuConfig, fusedLstmGradNativeConfig } from './kernels/FusedLstmGrad';
import { NATIVE_BACKEND_NAME } from './kernels/kernel_util';
import { segmentSumRowsConfigs } from './kernels/SegmentSumRows';
import { softmaxCrossEntropyConfigs } from './kernels/SoftmaxCrossEntropy';
import { vectorDistanceConfigs } from './kernels/VectorDistance';

const kernelConfigs: KernelConfig[] = [
  fusedLstmCpuConfig,
  fusedLstmNativeConfig,
  fusedLstmGradCpuConfig,
  fusedLstmGradNativeConfig,
  fusedBiLstmCpuConfig,
  fusedBiLstmNativeConfig,
  fusedBiLstmGradCpuConfig,
  fusedBiLstmGradNativeConfig,
  batchMatMulNativeConfig,
  ...softmaxCrossEntropyConfigs,
  ...denseSoftmaxCrossEntropyConfigs,
  ...segmentSumRowsConfigs,
  ...vectorDistanceConfigs,
];

let done = false;

export function registerAllKernels(): void {
  if (done) return;
  done = true;
  for (const cpu of getKernelsForBackend('cpu')) {
    if (getKernel(cpu.kernelName, NATIVE_BACKEND_NAME) == null) registerKernel({ ...cpu, backendName: NATIVE_BACKEND_NAME });
  }
  for (const k of kernelConfigs) {
    if (getKernel(k.kernelName, k.backendName) != null) unregisterKernel(k.kernelName, k.backendName);
    registerKernel(k);
  }
}
