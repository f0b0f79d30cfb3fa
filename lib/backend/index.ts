/** DeepSentry's tfjs backend: backend selection, the fused ops, and the `deepsentry` backend class. */
export { useBackend, currentBackend, probeNative, BACKEND_CHOICES } from './select';
export type { BackendChoice, BackendSelection } from './select';
export { decideBackend, cudaUnusableReason } from './select';
export type { BackendKind, BackendDecision, MachineProbe } from './select';
export { CudaBackend, CUDA_BACKEND_NAME, CUDA_MIN_WORK, cudaWorthIt } from './backend_cuda';
export { fusedLstm, fusedBiLstm, softmaxCrossEntropy, denseSoftmaxCrossEntropy, vectorDistance } from './ops';
export type { LstmLayerWeights, FusedLstmOptions, FusedLstmResult, FusedBiLstmOptions, FusedBiLstmResult } from './ops';
export { NativeBackend, NATIVE_BACKEND_NAME, registerNativeBackend } from './backend_native';
export * as opNames from './op_names';
export type { DistanceMetric } from './op_names';
